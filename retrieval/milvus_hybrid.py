"""``MilvusHybrid``: a dense and a sparse encoder sharing one Milvus collection, fused by Milvus's ranker.

Where :class:`~retrieval.hybrid.Hybrid` searches each member's own index and fuses in numpy, this
retriever writes both vectors of every document into one collection
(:class:`~indexes.milvus_hybrid.MilvusHybridIndex`) and lets Milvus search both fields and fuse them
in one ``hybrid_search`` call: the layout a Milvus deployment serves. With RRF it returns what
``Hybrid`` returns for the same two members, depth and ``rrf_k``.

``winnow index --member dense=MODEL --member sparse=MODEL --index milvus`` builds one; the folder
reopens with :func:`retrieval.load_retriever`.

Example:
    >>> from retrieval import load_encoder
    >>> hybrid = MilvusHybrid(load_encoder("sentence-transformers/all-MiniLM-L6-v2"),
    ...                       load_encoder("runs/models/sparse"), fusion="rrf", depth=1000)
    >>> hybrid.build("data/beir/scifact")
    >>> hits = hybrid.search(["vitamin D and bone fractures"], k=10)
    >>> hybrid.save("runs/scifact-milvus-hybrid")
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from indexes.base import Hits
from indexes.io import meta_value, read_meta
from indexes.milvus_hybrid import KIND, MilvusHybridIndex
from retrieval.base import query_texts, register_loader
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.embed import embed_corpus
from retrieval.encoders import Encoder, index_metric, load_encoder
from retrieval.hybrid_config import HybridConfig
from retrieval.retriever import encoder_reference

logger = logging.getLogger(__name__)


class MilvusHybrid:
    """A dense and a sparse encoder over one :class:`~indexes.milvus_hybrid.MilvusHybridIndex`.

    Args:
        dense: the dense encoder.
        sparse: the sparse encoder (an inference-free one needs no model for its queries).
        index: the collection (default: a new Milvus Lite one with the settings below).
        fusion: ``rrf`` or ``weighted`` (Milvus's rankers).
        rrf_k, weights, depth: the rankers' settings (:class:`~indexes.milvus_hybrid.MilvusHybridIndex`).
        uri: a Milvus server (``None``: Milvus Lite inside the saved folder).
        collection: the collection's name.
    """

    kind = KIND

    def __init__(
        self,
        dense: Encoder,
        sparse: Encoder,
        index: MilvusHybridIndex | None = None,
        *,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        weights: Sequence[float] | None = None,
        depth: int = 1000,
        uri: str | None = None,
        collection: str = "winnow_hybrid",
    ) -> None:
        if dense.kind != "dense" or sparse.kind != "sparse":
            raise ValueError(
                f"a Milvus hybrid takes a dense and a sparse encoder; got {dense.kind} and {sparse.kind}"
            )
        self.dense, self.sparse = dense, sparse
        self.index = index or MilvusHybridIndex(
            dense.dim,
            sparse.dim,
            metric=index_metric(dense.similarity),
            fusion=fusion,
            rrf_k=rrf_k,
            weights=weights,
            depth=depth,
            uri=uri,
            collection=collection,
        )

    @classmethod
    def from_config(
        cls,
        config: HybridConfig,
        uri: str | None = None,
        device: str | None = None,
        max_length: int | None = None,
        *,
        collection: str = "winnow_hybrid",
    ) -> MilvusHybrid:
        """The hybrid a config (``--member dense=M --member sparse=S``) describes, in one collection:
        ``rrf`` as Milvus's ``RRFRanker``, ``convex`` as its ``WeightedRanker`` (Milvus's own arctan
        normalisation whatever ``normalize`` says, so not equal to Winnow's convex fusion)."""
        members = config.members
        if sorted(str(m.kind) for m in members) != ["dense", "sparse"] or any(
            m.folder is not None or m.index for m in members
        ):
            raise ValueError(
                "--index milvus with members takes one dense=MODEL and one sparse=MODEL (no @INDEX_SPEC, no "
                f"saved folders); got {', '.join(str(m) for m in members)}"
            )
        depths = [config.depth] * 2 if isinstance(config.depth, int) else list(config.depth)
        if len(set(depths)) > 1:
            raise ValueError(f"--index milvus searches both fields to one depth; got depths {depths}")
        order = [0, 1] if members[0].kind == "dense" else [1, 0]
        weights = [config.weights[i] for i in order] if config.weights else None
        if config.fusion == "convex":
            logger.warning("Milvus's WeightedRanker normalises scores with arctan, not %s", config.normalize)
        dense, sparse = (
            load_encoder(str(members[i].model), device=device, max_length=max_length) for i in order
        )
        return cls(
            dense,
            sparse,
            fusion="rrf" if config.fusion == "rrf" else "weighted",
            rrf_k=config.rrf_k,
            weights=weights,
            depth=depths[0],
            uri=uri,
            collection=collection,
        )

    @property
    def name(self) -> str:
        return f"milvus-hybrid-{self.index.fusion}(dense:{self.dense.name}+sparse:{self.sparse.name})"

    @property
    def index_spec(self) -> str:
        return f"milvus-hybrid:{self.index.fusion}(depth={self.index.depth})"

    def describe(self) -> dict[str, Any]:
        """The members and the ranker, as result files record them."""
        return {
            "members": [
                {"kind": "dense", "model": self.dense.name, "index": "milvus"},
                {"kind": "sparse", "model": self.sparse.name, "index": "milvus"},
            ],
            "fusion": f"milvus-{self.index.fusion}",
            "rrf_k": self.index.rrf_k,
            "weights": self.index.weights,
            "depth": [self.index.depth, self.index.depth],
        }

    def build(
        self,
        corpus: CorpusSource | Sequence[Document],
        batch_size: int = 64,
        chunk_size: int = 4096,
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ) -> MilvusHybrid:
        """Encode ``corpus`` with both encoders (dense vectors resumable through ``cache_dir``) and insert
        each document's two vectors together."""
        if not isinstance(corpus, str | Path):
            corpus = list(corpus)
        dense = embed_corpus(
            self.dense,
            corpus,
            out_dir=cache_dir,
            batch_size=batch_size,
            chunk_size=chunk_size,
            progress=progress,
        )
        docs = iter_corpus(corpus)
        for ids, vectors in dense.chunks(chunk_size):
            chunk = list(itertools.islice(docs, len(ids)))
            if [d["_id"] for d in chunk] != ids:
                raise ValueError("the corpus changed while it was being encoded; run again")
            sparse = self.sparse.encode_documents([document_text(d) for d in chunk], batch_size=batch_size)
            self.index.add(vectors, sparse, ids)
        return self

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """The fused top ``k`` documents for each query (a list of texts or ``{id: text}``)."""
        texts = query_texts(queries)
        dense = self.dense.encode_queries(texts, batch_size=batch_size)
        sparse = self.sparse.encode_queries(texts, batch_size=batch_size)
        return self.index.search(dense, sparse, k)

    def save(self, directory: str | Path) -> Path:
        """The collection's folder, with both encoders recorded in ``meta.json``."""
        return self.index.save(
            directory,
            extra_meta={"encoders": [encoder_reference(self.dense), encoder_reference(self.sparse)]},
        )

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> MilvusHybrid:
        """Open a folder written by :meth:`save`; the encoders come from its ``meta.json``."""
        meta = read_meta(directory, kinds=(KIND,))
        encoders = meta_value(directory, meta, "encoders", list)
        if len(encoders) != 2:
            raise ValueError(f"{Path(directory) / 'meta.json'}: 'encoders' holds {encoders}; expected two")
        dense, sparse = (load_encoder(str(name), device=device) for name in encoders)
        return cls(dense, sparse, MilvusHybridIndex.load(directory))


register_loader([KIND], MilvusHybrid.load)
