"""Two-phase sparse search: the query split, the window, its parameters, and Lucene's two phases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from indexes.inverted import InvertedIndex
from indexes.two_phase import TwoPhase
from tests.test_inverted_index import random_sparse

VOCAB = [f"tok{i}" for i in range(300)]


def test_split_puts_tokens_at_or_above_the_ratio_of_the_largest_weight_first() -> None:
    q = sparse.csr_matrix(np.array([[4.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 3.0, 1.5]]))
    heavy, light = TwoPhase(prune_ratio=0.5).split(q)
    assert heavy.toarray().tolist() == [[4.0, 2.0, 0, 0], [0, 0, 0, 0], [0, 0, 3.0, 1.5]]
    assert light.toarray().tolist() == [[0, 0, 1.0, 0], [0, 0, 0, 0], [0.5, 0, 0, 0]]
    everything, nothing = TwoPhase(prune_ratio=0.0).split(q)
    assert (everything != q).nnz == 0 and nothing.nnz == 0
    assert TwoPhase(prune_ratio=1.0).split(q)[0].nnz == 2  # only each query's largest weight


def test_window_is_k_times_the_expansion_rate_capped_and_never_below_k() -> None:
    assert TwoPhase().window(10) == 50
    assert TwoPhase(expansion_rate=2.5).window(3) == 8
    assert TwoPhase(expansion_rate=5, max_window_size=20).window(10) == 20
    assert TwoPhase(max_window_size=4).window(10) == 10


def test_parameters_are_checked_by_name_before_any_work() -> None:
    assert TwoPhase.from_params({}) is None
    setting = TwoPhase.from_params({"prune_ratio": 0.3, "expansion_rate": 8})
    assert setting == TwoPhase(0.3, 8.0) and TwoPhase.from_params(setting.params()) == setting
    with pytest.raises(ValueError, match="unknown search parameter.*nprobe"):
        TwoPhase.from_params({"prune_ratio": 0.3, "nprobe": 8})
    with pytest.raises(ValueError, match="expansion_rate given without prune_ratio"):
        TwoPhase.from_params({"expansion_rate": 8})
    with pytest.raises(ValueError, match=r"prune_ratio must be in \[0, 1\]; got 1.5"):
        TwoPhase(prune_ratio=1.5)
    with pytest.raises(ValueError, match="expansion_rate must be a finite number, at least 1; got 0.5"):
        TwoPhase(expansion_rate=0.5)
    with pytest.raises(ValueError, match="expansion_rate must be a finite number, at least 1; got inf"):
        TwoPhase(expansion_rate=float("inf"))
    with pytest.raises(ValueError, match="max_window_size must be a whole number, at least 1; got 2.5"):
        TwoPhase.from_params({"prune_ratio": 0.5, "max_window_size": 2.5})
    with pytest.raises(ValueError, match="k must be at least 1; got 0"):
        TwoPhase().window(0)


@pytest.mark.lucene
def test_lucene_two_phase_scores_candidates_with_the_whole_query(tmp_path) -> None:
    pytest.importorskip("pyserini")
    from indexes.factory import index_factory, load_index
    from indexes.inverted import quantize_queries

    docs, queries = random_sparse(800, 300, 0.04, seed=3), random_sparse(25, 300, 0.05, seed=5)
    ids = [f"doc{i}" for i in range(docs.shape[0])]
    lucene = index_factory("lucene", 300, vocabulary=VOCAB, search_params={"prune_ratio": 0.5})
    lucene.threads = 1  # one input file: Lucene numbers documents in the order added
    lucene.add(docs, ids)
    embedded = InvertedIndex(300, impact_scale=100, query_scale=100)
    embedded.add(docs, ids)
    exact = embedded.search(queries, k=10)

    two = lucene.search(queries, k=10)  # the index's default: two phases, window 50
    impacts = sparse.csr_matrix(np.rint(docs.toarray() * 100))
    full = (quantize_queries(queries, 300, 100) @ impacts.T).toarray()
    row_of = {d: i for i, d in enumerate(ids)}
    for i, found in enumerate(two.ids):  # every returned score is the whole query's
        np.testing.assert_allclose(two.scores[i, : len(found)], full[i, [row_of[d] for d in found]] / 1e4)
    heavy, _ = TwoPhase(0.5).split(queries)
    assert (quantize_queries(heavy, 300, 100).nnz) < quantize_queries(queries, 300, 100).nnz
    assert sum(a == b for a, b in zip(two.ids, exact.ids, strict=True)) >= 15

    # a window as large as the collection rescores every document a heavy token matches
    window_all = lucene.search(queries, k=10, two_phase=TwoPhase(0.5, expansion_rate=100))
    reached = np.where((quantize_queries(heavy, 300, 100) @ docs.T).toarray() > 0, full, -1)
    want = -np.sort(-reached, axis=1)[:, :10] / 1e4
    np.testing.assert_allclose(window_all.scores, want, rtol=1e-6)
    one_phase = lucene.search(queries, k=10, two_phase=TwoPhase(0.0))
    assert one_phase.ids == exact.ids

    lucene.save(tmp_path / "lucene")
    loaded = load_index(tmp_path / "lucene")
    assert loaded.search_params == {"prune_ratio": 0.5, "expansion_rate": 5.0, "max_window_size": 10_000}
    assert loaded.search(queries, k=10).ids == two.ids


def test_only_indexes_with_search_parameters_take_them() -> None:
    from indexes.factory import index_factory

    with pytest.raises(ValueError, match="takes no search parameters"):
        index_factory("inverted", 300, search_params={"prune_ratio": 0.5})
    with pytest.raises(ValueError, match="unknown search parameter.*efSearch"):
        index_factory("lucene", 300, vocabulary=VOCAB, search_params={"efSearch": 64})
