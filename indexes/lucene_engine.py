"""Lucene's own ``IndexSearcher`` over the indexes pyserini builds, without Anserini's per-query layer.

pyserini's ``LuceneImpactSearcher`` and ``LuceneSearcher`` (what :class:`~indexes.lucene.LuceneImpactIndex`
and :class:`~indexes.lucene_bm25.LuceneBM25Index` search with) wrap every query in Anserini's search layer:
score-then-id sorting, a re-ranker cascade and stored-document loading, which on SciFact costs more
than Lucene's scoring itself, and more for impact queries than for BM25 (README, "Benchmarks").
This module asks Lucene directly, so that ``bench.sparse_search`` can compare the two kinds of
query *in the engine*: both queries are built by Anserini's ``BagOfWordsQueryGenerator`` (BM25 text
through Anserini's default English analyzer, as ``LuceneSearcher`` does; impact queries from the same
integer weights ``LuceneImpactIndex`` sends) and both run through ``IndexSearcher.search(query, k)``,
Lucene's exact top-k with dynamic pruning. Ties fall to the lower Lucene document number.
:func:`two_phase_ids` runs ``LuceneImpactIndex.two_phase_queries`` (two-phase search,
:mod:`indexes.lucene_rescore`) through the same searcher.

Example:
    >>> searcher = index_searcher(impact_index)
    >>> ids = search_ids(searcher, impact_queries(impact_index, encoder.encode_queries(texts)), k=10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexes import _jvm
from indexes.lucene import LuceneImpactIndex
from indexes.lucene_bm25 import LuceneBM25Index
from indexes.lucene_rescore import FIELD, impact_searcher, open_searcher, top_documents, weighted_query


def index_searcher(index: LuceneImpactIndex | LuceneBM25Index) -> Any:
    """A Lucene ``IndexSearcher`` over ``index`` with the similarity pyserini's searcher would use."""
    index.searcher()  # builds the index and starts the JVM
    if isinstance(index, LuceneImpactIndex):
        return impact_searcher(index.build())
    similarity = _jvm.autoclass("org.apache.lucene.search.similarities.BM25Similarity")(index.k1, index.b)
    return open_searcher(index.build(), similarity)


def impact_queries(index: LuceneImpactIndex, queries: Any) -> list[Any]:
    """Lucene queries (a boosted term per query token) from the integer weights the impact index sends."""
    return [weighted_query(terms) for terms in index.query_terms(queries)]


def bm25_queries(texts: Sequence[str]) -> list[Any]:
    """Lucene queries from query text, analysed as ``LuceneSearcher`` analyses it."""
    generator = _jvm.autoclass("io.anserini.search.query.BagOfWordsQueryGenerator")()
    analyzer = _jvm.autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
    return [generator.buildQuery(FIELD, analyzer, text) for text in texts]


def two_phase_ids(searcher: Any, queries: Sequence[tuple[Any, Any]], k: int, window: int) -> list[list[str]]:
    """Top-``k`` document ids of every (heavy, light) query (``LuceneImpactIndex.two_phase_queries``)."""
    return [[doc_id for doc_id, _ in row] for row in top_documents(searcher, queries, k, window)]


def search_ids(searcher: Any, queries: Sequence[Any], k: int) -> list[list[str]]:
    """Top-``k`` document ids of every query, one ``IndexSearcher.search`` call each."""
    stored = searcher.storedFields()
    out = []
    for query in queries:
        hits = searcher.search(query, int(k)).scoreDocs
        out.append([stored.document(hit.doc).get("id") for hit in hits])
    return out


def search_only(searcher: Any, queries: Sequence[Any], k: int) -> None:
    """The engine's work alone: every query's top-``k`` (Lucene document numbers), nothing read back."""
    for query in queries:
        searcher.search(query, int(k))
