"""Fusion by hand on three documents: RRF, each normalisation, weights, ties, short lists, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.base import Hits
from retrieval.fusion import fuse

IDS = ["a", "b", "c"]


def hits(*rows: tuple[list[str], list[float]]) -> Hits:
    width = max(len(ids) for ids, _ in rows)
    scores = np.full((len(rows), width), -np.inf, dtype=np.float32)
    for i, (_, row) in enumerate(rows):
        scores[i, : len(row)] = row
    return Hits([list(ids) for ids, _ in rows], scores)


# member 1 ranks a > b > c; member 2 returns only c > a (fewer hits than the others)
FIRST = hits((["a", "b", "c"], [3.0, 2.0, 1.0]))
SECOND = hits((["c", "a"], [10.0, 5.0]))


def as_dict(fused: Hits) -> dict[str, float]:
    return {d: float(s) for d, s in zip(fused.ids[0], fused.scores[0], strict=False)}


def test_rrf_by_hand() -> None:
    fused = fuse([FIRST, SECOND], IDS, method="rrf", rrf_k=60, k=3)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert fused.ids[0] == ["a", "c", "b"]
    assert as_dict(fused) == pytest.approx(expected, rel=1e-6)


def test_rrf_weights_and_constant() -> None:
    fused = fuse([FIRST, SECOND], IDS, method="rrf", rrf_k=1, weights=[1.0, 3.0], k=3)
    expected = {"a": 1 / 2 + 3 / 3, "b": 1 / 3, "c": 1 / 4 + 3 / 2}
    assert as_dict(fused) == pytest.approx(expected, rel=1e-6)
    assert fused.ids[0] == ["c", "a", "b"]


def test_convex_minmax_by_hand_and_tie_broken_by_id() -> None:
    # minmax: member 1 a=1, b=.5, c=0; member 2 c=1, a=0 and b (not returned) its floor 0
    fused = fuse([FIRST, SECOND], IDS, method="convex", normalize="minmax", k=3)
    assert as_dict(fused) == pytest.approx({"a": 1.0, "b": 0.5, "c": 1.0})
    assert fused.ids[0] == ["a", "c", "b"]  # a and c tie at 1.0: document id order


def test_convex_zscore_by_hand() -> None:
    std1 = np.std([3.0, 2.0, 1.0])
    z1 = {"a": 1 / std1, "b": 0.0, "c": -1 / std1}
    z2 = {"c": 1.0, "a": -1.0}  # mean 7.5, std 2.5
    expected = {"a": z1["a"] + z2["a"], "b": z1["b"] + min(z2.values()), "c": z1["c"] + z2["c"]}
    fused = fuse([FIRST, SECOND], IDS, method="convex", normalize="zscore", k=3)
    assert as_dict(fused) == pytest.approx(expected, rel=1e-5)
    assert fused.ids[0] == ["a", "c", "b"]


def test_convex_raw_scores_weighted() -> None:
    fused = fuse([FIRST, SECOND], IDS, method="convex", normalize="none", weights=[1.0, 0.5], k=3)
    # b is absent from member 2: it gets member 2's lowest score, 5 * 0.5
    assert as_dict(fused) == pytest.approx({"a": 3 + 2.5, "b": 2 + 2.5, "c": 1 + 5.0})
    assert fused.ids[0] == ["c", "a", "b"]


def test_fewer_hits_than_k_are_padded() -> None:
    only = hits((["b"], [1.0]), ([], []))
    fused = fuse([only, hits((["b"], [2.0]), ([], []))], IDS, method="rrf", k=3)
    assert fused.ids == [["b"], []]
    assert fused.scores.shape == (2, 3)
    assert np.isneginf(fused.scores[0, 1:]).all() and np.isneginf(fused.scores[1]).all()


def test_depth_cuts_each_member_and_distances_are_flipped() -> None:
    fused = fuse([FIRST, SECOND], IDS, method="rrf", depths=[1, 2], k=3)
    assert fused.ids[0] == ["a", "c"]  # b is below member 1's depth of 1; a: 1/61 + 1/62, c: 1/61
    distances = hits((["c", "b", "a"], [0.1, 0.2, 0.9]))  # l2: smaller is better
    fused = fuse([distances], IDS, method="convex", normalize="minmax", k=3, lower_is_better=[True])
    assert fused.ids[0] == ["c", "b", "a"]
    assert fused.scores[0][0] == pytest.approx(1.0)


def test_many_queries_fused_independently() -> None:
    first = hits((["a", "b"], [2.0, 1.0]), (["c", "b"], [2.0, 1.0]))
    second = hits((["b", "a"], [2.0, 1.0]), (["b", "c"], [2.0, 1.0]))
    fused = fuse([first, second], IDS, method="rrf", weights=[2.0, 1.0], k=2)
    assert fused.ids == [["a", "b"], ["c", "b"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "sum"}, "unknown fusion 'sum'; expected one of rrf, convex"),
        ({"method": "convex", "normalize": "l2"}, "expected one of minmax, zscore, none"),
        ({"weights": [1.0]}, "got 1 weight(s) for 2 members"),
        ({"weights": [1.0, -0.5]}, "-0.5 not a finite number >= 0"),
        ({"weights": [1.0, float("nan")]}, "nan not a finite number >= 0"),
        ({"weights": [0.0, 0.0]}, "at least one must be above 0"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        fuse([FIRST, SECOND], IDS, **kwargs)
    assert message in str(info.value)


def test_unknown_document_is_refused() -> None:
    with pytest.raises(ValueError, match="document 'z', which is not in doc_ids"):
        fuse([hits((["z"], [1.0]))], IDS)
