"""Lucene calls under two-phase impact search: an ``IndexSearcher``, weighted term queries, a rescore.

The first phase is ``IndexSearcher.search(heavy, window)`` (Lucene's exact top-k with dynamic
pruning over the heavy tokens); the second is ``QueryRescorer.rescore(searcher, first, light, 1.0, k)``,
which scores the light tokens on those candidates only and adds them to the first-phase score, so a
returned score is the full query's. Both queries are built by Anserini's ``BagOfWordsQueryGenerator``
from the integer weights :class:`~indexes.lucene.LuceneImpactIndex` sends, as pyserini's
``LuceneImpactSearcher`` builds them. Ties fall to the lower Lucene document number.

Example:
    >>> searcher = impact_searcher(index_dir)
    >>> found = top_documents(searcher, index.two_phase_queries(queries, TwoPhase(0.5)), k=10, window=50)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes import _jvm
from indexes.base import Hits

FIELD = "contents"  # Anserini's indexed field (Constants.CONTENTS)


def open_searcher(index_dir: str | Path, similarity: Any) -> Any:
    """A Lucene ``IndexSearcher`` over the index in ``index_dir`` scoring with ``similarity``."""
    _jvm.pyserini()  # starts the JVM
    from jnius import cast

    reader = _jvm.autoclass("org.apache.lucene.index.DirectoryReader").open(
        _jvm.autoclass("org.apache.lucene.store.FSDirectory").open(
            _jvm.autoclass("java.io.File")(str(index_dir)).toPath()
        )
    )
    searcher = _jvm.autoclass("org.apache.lucene.search.IndexSearcher")(
        cast("org.apache.lucene.index.IndexReader", reader)
    )
    searcher.setSimilarity(similarity)
    return searcher


def impact_searcher(index_dir: str | Path) -> Any:
    """An ``IndexSearcher`` scoring as ``LuceneImpactSearcher`` does (Anserini's ``ImpactSimilarity``)."""
    _jvm.pyserini()
    return open_searcher(index_dir, _jvm.autoclass("io.anserini.search.similarity.ImpactSimilarity")())


def weighted_query(terms: Sequence[tuple[str, int]]) -> Any:
    """A Lucene query of boosted terms (one per ``(term, weight)``), as Anserini builds impact queries."""
    _jvm.pyserini()
    generator = _jvm.autoclass("io.anserini.search.query.BagOfWordsQueryGenerator")()
    java_map, java_float = _jvm.autoclass("java.util.HashMap"), _jvm.autoclass("java.lang.Float")
    weights = java_map()
    for term, weight in terms:
        weights.put(term, java_float(float(weight)))
    return generator.buildQuery(FIELD, weights)


def rescored(searcher: Any, heavy: Any, light: Any | None, k: int, window: int) -> Any:
    """Lucene's ``TopDocs`` of one two-phase search: ``heavy`` (a query) finds ``window`` candidates
    and ``light`` rescores them, adding its score (one phase when ``light`` is None)."""
    top = searcher.search(heavy, int(window if light is not None else k))
    if light is not None:
        rescorer = _jvm.autoclass("org.apache.lucene.search.QueryRescorer")
        top = rescorer.rescore(searcher, top, light, 1.0, int(k))
    return top


def top_documents(
    searcher: Any, queries: Sequence[tuple[Any, Any | None]], k: int, window: int
) -> list[list[tuple[str, float]]]:
    """Every (heavy, light) query's top ``k`` (collection id, full score) by :func:`rescored`."""
    stored = searcher.storedFields()
    out = []
    for heavy, light in queries:
        hits = rescored(searcher, heavy, light, k, window).scoreDocs[: int(k)]
        out.append([(stored.document(hit.doc).get("id"), float(hit.score)) for hit in hits])
    return out


def as_hits(found: Sequence[Sequence[tuple[str, float]]], k: int, scale: float) -> Hits:
    """:class:`~indexes.base.Hits` from (id, score) rows, scores divided by ``scale``."""
    scores = np.full((len(found), int(k)), -np.inf, dtype=np.float32)
    for i, row in enumerate(found):
        scores[i, : len(row)] = np.asarray([score for _, score in row], dtype=np.float32) / np.float32(scale)
    return Hits(ids=[[doc_id for doc_id, _ in row] for row in found], scores=scores)
