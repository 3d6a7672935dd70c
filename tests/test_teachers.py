"""Per-query min-max normalisation, weighted aggregation and the score cache."""

from __future__ import annotations

import numpy as np
import pytest

from trainers.teachers import Ensemble, minmax_per_query


class Fixed:
    """A teacher with given scores, counting its calls."""

    def __init__(self, name: str, scores: list[list[float]]) -> None:
        self.name, self.scores, self.calls = name, scores, 0

    def score(self, queries, candidates):
        self.calls += 1
        return [np.asarray(s, dtype=np.float32) for s in self.scores]


def test_minmax_per_query() -> None:
    out = minmax_per_query([np.array([2.0, 4.0, 3.0]), np.array([5.0, 5.0]), np.array([])])
    assert out[0].tolist() == [0.0, 1.0, 0.5]
    assert out[1].tolist() == [0.5, 0.5]  # all equal: no preference
    assert out[2].size == 0


def test_heterogeneous_scales_are_aggregated_after_normalisation(tmp_path) -> None:
    dense = Fixed("dense", [[0.9, 0.8, 0.1]])  # cosine scale
    bm25 = Fixed("bm25", [[2.0, 30.0, 10.0]])  # BM25 scale
    ensemble = Ensemble([dense, bm25], weights=[3, 1], cache_dir=tmp_path)
    (scores,) = ensemble.score(["q"], [["a", "b", "c"]])
    d = np.array([1.0, 0.875, 0.0])
    b = np.array([0.0, 1.0, 8 / 28])
    np.testing.assert_allclose(scores, 0.75 * d + 0.25 * b, rtol=1e-6)
    assert scores.min() >= 0 and scores.max() <= 1
    ensemble.score(["q"], [["a", "b", "c"]])
    assert dense.calls == 1 and bm25.calls == 1  # the second call read the cache


def test_bad_weights() -> None:
    with pytest.raises(ValueError, match="got 1 weights for 2 teachers"):
        Ensemble([Fixed("a", []), Fixed("b", [])], weights=[1])
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        Ensemble([Fixed("a", [])], weights=[-1])
