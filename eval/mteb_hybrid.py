"""A hybrid (or reranked) retriever scored by mteb, through mteb's own search protocol.

:class:`HybridSearchModel` is an mteb ``SearchProtocol``: ``index`` builds every member of a
:class:`~retrieval.hybrid_config.HybridConfig` on the task's corpus (members loaded from saved folders
are kept, after checking they index exactly that corpus), and ``search`` returns the fused (and, with a
cross-encoder, reranked) top ``k``, so mteb scores the same ranking ``winnow eval beir`` scores.

Example:
    >>> model = HybridSearchModel(HybridConfig.read("runs/scifact-hybrid.yaml"))
    >>> mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact"]))
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from retrieval.base import RetrieverProtocol
from retrieval.hybrid_config import HybridConfig
from retrieval.rerank import DEFAULT_RERANK_DEPTH, Reranker

logger = logging.getLogger(__name__)


class HybridSearchModel:
    """mteb ``SearchProtocol`` over a Winnow hybrid, optionally reranked by a cross-encoder.

    Args:
        config: the members and fusion settings.
        rerank: a cross-encoder (hub id or folder) over the fused top ``rerank_depth``; None: no reranker.
        rerank_depth: hits per query the cross-encoder scores.
        batch_size: texts per encoding batch.
        device: torch device of the encoders.
    """

    def __init__(
        self,
        config: HybridConfig,
        *,
        rerank: str | None = None,
        rerank_depth: int = DEFAULT_RERANK_DEPTH,
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        from mteb.models.model_meta import ModelMeta, ScoringFunction

        self.config = config
        self.rerank, self.rerank_depth = rerank, rerank_depth
        self.batch_size = batch_size
        self.device = device
        described = {**config.to_dict(), "rerank": rerank, "rerank_depth": rerank_depth if rerank else None}
        described.pop("tuning", None)
        revision = hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]
        kinds = "-".join(m.kind_label() for m in config.members)
        name = f"winnow/hybrid-{kinds}" + ("-reranked" if rerank else "")
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites=dict(
                name=name,
                revision=revision,
                model_type=["hybrid"],
                similarity_fn_name=ScoringFunction.CUSTOM,
            )
        )
        self._retriever: RetrieverProtocol | None = None

    def index(
        self,
        corpus: Any,
        *,
        task_metadata: Any = None,
        hf_split: Any = None,
        hf_subset: Any = None,
        encode_kwargs: Any = None,
        num_proc: Any = None,
        **kwargs: Any,
    ) -> None:
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
        docs = [
            {"_id": str(i), "title": t or "", "text": x or ""}
            for i, t, x in zip(corpus["id"], titles, corpus["text"], strict=True)
        ]
        hybrid = self.config.build(device=self.device)
        wanted = {d["_id"] for d in docs}
        for spec, member in zip(self.config.members, hybrid.members, strict=True):
            if len(member.index) and set(member.index.ids) != wanted:
                raise ValueError(
                    f"hybrid member {spec} indexes {len(member.index)} documents, not the task's corpus of "
                    f"{len(wanted)}: index the task's corpus with it, or give the member as KIND=MODEL"
                )
        retriever: RetrieverProtocol = hybrid
        if self.rerank:
            retriever = Reranker(hybrid, self.rerank, depth=self.rerank_depth, device=self.device)
        retriever.build(docs, batch_size=self.batch_size)
        self._retriever = retriever

    def search(
        self,
        queries: Any,
        *,
        task_metadata: Any = None,
        hf_split: Any = None,
        hf_subset: Any = None,
        top_k: int = 1000,
        encode_kwargs: Any = None,
        top_ranked: Any = None,
        num_proc: Any = None,
        **kwargs: Any,
    ) -> dict[str, dict[str, float]]:
        if self._retriever is None:
            raise RuntimeError("search() before index()")
        hits = self._retriever.search(list(queries["text"]), k=top_k, batch_size=self.batch_size)
        return hits.as_run([str(q) for q in queries["id"]])
