"""Score a retriever on a BEIR-layout data set, the way BEIR does.

Documents are encoded as ``title + " " + text``, each query retrieves its top ``top_k`` documents,
documents whose id equals the query id are dropped (BEIR's ``ignore_identical_ids``), and the
metrics come from pytrec_eval over every judged query of the split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import DEFAULT_METRICS, check_metrics, drop_self_hits, mean_scores, per_query_scores
from retrieval.base import RetrieverProtocol, query_weights_of
from retrieval.corpus import BeirDataset, iter_corpus, open_beir

logger = logging.getLogger(__name__)


def held_out_queries(qrels: dict[str, dict[str, int]], queries: dict[str, str], skip: int) -> list[str]:
    """Queries with a relevant document after the first ``skip`` of them, in qrels-file order.

    That is the order in which training (``trainers.data.from_beir``) takes them, so a model trained with
    ``data.max_queries=skip`` on a split never saw these: model selection without a dev split.
    """
    with_positive = [q for q in qrels if q in queries and any(r > 0 for r in qrels[q].values())]
    held_out = with_positive[skip:]
    if not held_out:
        raise ValueError(
            f"skip_queries={skip} leaves none of the {len(with_positive)} queries with a relevant document"
        )
    return held_out


def check_covers_corpus(retriever: RetrieverProtocol, data: BeirDataset) -> None:
    """Raise a ValueError unless every document of the data set's corpus is in the retriever's index."""
    indexed = set(retriever.index.ids)
    corpus = data.root / "corpus.jsonl"
    missing = [doc["_id"] for doc in iter_corpus(corpus) if doc["_id"] not in indexed]
    if missing:
        raise ValueError(
            f"the {retriever.index_spec} index of {retriever.name!r} lacks {len(missing)} document(s) of "
            f"{corpus} (first: {missing[0]!r}); it was built from another corpus: index this data set "
            "(winnow index --corpus ...) or evaluate with build=True"
        )


def evaluate(
    retriever: RetrieverProtocol,
    dataset: str | Path | BeirDataset,
    split: str = "test",
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    top_k: int = 1000,
    batch_size: int = 64,
    build: bool | None = None,
    model_name: str | None = None,
    skip_queries: int = 0,
    query_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Index the data set's corpus, search its ``split`` queries, and score them.

    ``build``: ``True`` encodes and indexes the corpus; ``False`` scores the retriever as it is (a loaded
    one: :func:`retrieval.load_retriever`), after checking that its index holds every corpus document;
    ``None`` (the default) builds when the index is empty and checks otherwise.
    With ``skip_queries`` only the :func:`held_out_queries` are searched and scored; with ``query_ids``
    only those (judged queries of ``split``).

    Raises:
        ValueError: ``top_k`` or ``batch_size`` below 1, a metric cut-off above ``top_k``, bad data
            (:meth:`retrieval.corpus.BeirDataset.judged`), all before the corpus is encoded.

    Returns:
        ``{"dataset", "split", "model", "metrics": {name: value}, "seconds", "n_queries", "n_documents",
        "index", "per_query": {name: {query_id: value}}}``; ``seconds`` covers indexing and search. The
        per-query scores are what ``winnow eval compare`` tests for significance.
    """
    if top_k < 1 or batch_size < 1 or skip_queries < 0:
        raise ValueError(
            f"top_k={top_k}, batch_size={batch_size}, skip_queries={skip_queries}: expected "
            "top_k >= 1, batch_size >= 1, skip_queries >= 0"
        )
    metrics = check_metrics(metrics, top_k)
    data = dataset if isinstance(dataset, BeirDataset) else open_beir(dataset)
    queries, qrels = data.judged(split)
    if query_ids is not None:
        if skip_queries:
            raise ValueError("give skip_queries or query_ids, not both")
        unknown = [q for q in query_ids if q not in queries]
        if unknown:
            raise ValueError(
                f"{data.root / 'qrels' / (split + '.tsv')}: {len(unknown)} of the query_ids are not judged "
                f"queries of split {split!r} (first: {unknown[0]!r})"
            )
        query_ids = list(query_ids)
        qrels = {q: qrels[q] for q in query_ids}
    elif skip_queries:
        query_ids = held_out_queries(qrels, queries, skip_queries)
        qrels = {q: qrels[q] for q in query_ids}
    else:
        query_ids = list(queries)
    if not query_ids:
        raise ValueError(f"{data.qrels_path(split)}: no query to score (query_ids is empty)")
    if build is None:
        build = len(retriever.index) == 0
    if not build:
        check_covers_corpus(retriever, data)
    start = time.perf_counter()
    if build:
        retriever.build(data.root / "corpus.jsonl", batch_size=batch_size)
    index_seconds = time.perf_counter() - start
    hits = retriever.search([queries[q] for q in query_ids], k=top_k + 1, batch_size=batch_size)
    seconds = time.perf_counter() - start
    run = drop_self_hits(hits.as_run(query_ids))
    per_query = per_query_scores(qrels, run, metrics)
    scores = mean_scores(per_query)
    logger.info("%s/%s: %s", data.name, split, ", ".join(f"{m}={v:.4f}" for m, v in scores.items()))
    return {
        "dataset": data.name,
        "split": split,
        "model": model_name or retriever.name,
        "index": retriever.index_spec,
        "metrics": scores,
        "n_queries": len(query_ids),
        **({"skip_queries": skip_queries} if skip_queries else {}),
        "n_documents": len(retriever.index),
        **({"system": retriever.describe()} if hasattr(retriever, "describe") else {}),
        **({"query_weights": weights} if (weights := query_weights_of(retriever)) != "model" else {}),
        "seconds": round(seconds, 3),
        "index_seconds": round(index_seconds, 3),
        "per_query": per_query,
    }
