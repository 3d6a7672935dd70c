"""The GIST rule and the cached-guide loss: planted false negatives are masked, positives never."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers.guide import gist_mask
from trainers.losses.gist import CachedGuideGISTLoss
from trainers.losses.labels import split_labels


def test_gist_mask_rule_numpy_and_torch() -> None:
    cand = np.array([[0.9, 0.5, 0.79]])
    pos = np.array([[0.8]])
    assert gist_mask(cand, pos).tolist() == [[True, False, False]]
    assert gist_mask(cand, pos, "absolute", 0.05).tolist() == [[True, False, True]]
    assert gist_mask(cand, pos, "relative", 0.1).tolist() == [[True, False, True]]  # 0.79 > 0.8 - 0.08
    assert gist_mask(torch.tensor(cand), torch.tensor(pos)).tolist() == [[True, False, False]]
    with pytest.raises(ValueError, match="unknown margin strategy 'x'"):
        gist_mask(cand, pos, "x")


class Identity(torch.nn.Module):
    """Stands in for the student: the loss is tested on given embeddings."""


def unit(v: list[float]) -> list[float]:
    a = np.asarray(v, dtype=np.float32)
    return (a / np.linalg.norm(a)).tolist()


def test_planted_false_negative_is_masked_and_positive_never() -> None:
    # Text ids: 0,1 = anchors; 2,3 = their positives; 4 = a mined negative of anchor 0 that the guide
    # finds *more* similar to anchor 0 than its positive (a planted false negative); 5 = a true negative.
    guide = np.array(
        [
            unit([1, 0, 0]),
            unit([0, 1, 0]),
            unit([1, 0.5, 0]),
            unit([0, 1, 0.2]),
            unit([1, 0.1, 0]),
            unit([0, 0, 1]),
        ],
        dtype=np.float32,
    )
    loss = CachedGuideGISTLoss(Identity(), guide, temperature=1.0)
    anchors = torch.tensor([unit([1, 0, 0]), unit([0, 1, 0])])
    positives = torch.tensor(
        [unit([0, 0, 1]), unit([0, 1, 0])]
    )  # the student is wrong about row 0's positive
    negatives = torch.tensor([unit([1, 0, 0]), unit([1, 1, 0])])
    labels = torch.tensor([[0, 2, 4], [1, 3, 5]], dtype=torch.float32)
    value = loss.loss_from_embeddings([anchors, positives, negatives], labels)
    # Recompute by hand: row 0 may see only its positive (column 0) among ap, and no masked negatives.
    ap = anchors @ positives.T
    an = anchors @ negatives.T
    g = torch.tensor(guide)
    masked_ap = torch.tensor([[False, (g[0] @ g[3]) > (g[0] @ g[2])], [(g[1] @ g[2]) > (g[1] @ g[3]), False]])
    masked_an = torch.tensor(
        [[True, bool((g[0] @ g[5]) > (g[0] @ g[2]))], [bool((g[1] @ g[4]) > (g[1] @ g[3])), False]]
    )
    assert masked_an[0, 0]  # the planted false negative is masked
    logits = torch.cat([ap.masked_fill(masked_ap, -torch.inf), an.masked_fill(masked_an, -torch.inf)], 1)
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(2))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    # The positive is never masked, even when the guide scores another text above it.
    assert torch.isfinite(value)


def test_duplicate_positive_in_batch_is_masked() -> None:
    guide = np.eye(3, dtype=np.float32)
    loss = CachedGuideGISTLoss(Identity(), guide, temperature=1.0)
    a = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    p = torch.tensor([[0, 0, 1.0], [0, 0, 1.0]])  # both rows share positive text id 2
    labels = torch.tensor([[0, 2], [1, 2]], dtype=torch.float32)
    # With the duplicate masked each row sees only its own positive: loss 0.
    assert loss.loss_from_embeddings([a, p], labels).item() == pytest.approx(0.0, abs=1e-6)


def test_labelled_match_in_another_row_is_masked() -> None:
    # Text ids 0, 1 = anchors; 2, 3 = their positives; 4, 5 = mined negatives. The labels say that
    # row 1's positive (3) and row 1's negative (5) are also relevant to anchor 0; the guide (identity)
    # sees nothing, so only the labels can mask them.
    guide = np.eye(6, dtype=np.float32)
    a = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    p = torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0]])
    n = torch.tensor([[0, 0, 1.0], [0.8, 0.6, 0]])
    labels = torch.tensor([[0, 2, 4], [1, 3, 5]], dtype=torch.float32)
    plain = CachedGuideGISTLoss(Identity(), guide, temperature=1.0)
    masked = CachedGuideGISTLoss(
        Identity(), guide, temperature=1.0, labelled_pairs=np.array([[0, 3], [0, 5]])
    )
    # Row 0 sees its positive and its own negative; row 1 is unchanged (the pairs name anchor 0 only).
    row0 = torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
    row1 = torch.log_softmax(torch.tensor([0.0, 0.8, 0.0, 0.6]), 0)[1]
    expected = -(row0 + row1) / 2
    assert masked.loss_from_embeddings([a, p, n], labels).item() == pytest.approx(expected.item(), rel=1e-5)
    assert plain.loss_from_embeddings([a, p, n], labels).item() > expected.item() + 0.1
    # A labelled pair naming a row's own positive does not mask it.
    own = CachedGuideGISTLoss(Identity(), guide, temperature=1.0, labelled_pairs=np.array([[0, 2]]))
    assert torch.isfinite(own.loss_from_embeddings([a, p, n], labels))


def test_labels_layout_is_checked() -> None:
    rows = split_labels(torch.tensor([[0, 1, 2, 0.9, 0.1]]), 3)
    assert rows.text_ids.tolist() == [[0, 1, 2]]
    assert rows.teacher[0].tolist() == pytest.approx([0.9, 0.1])
    with pytest.raises(ValueError, match="label width 4 fits neither 3 nor 5"):
        split_labels(torch.zeros(1, 4), 3)


def test_labelled_pairs_name_every_known_match_present_in_the_rows() -> None:
    from trainers.data import TrainingData
    from trainers.rows import build_rows, labelled_pairs

    corpus = {f"d{i}": f"text {i}" for i in range(5)}
    data = TrainingData(
        {"q0": "first", "q1": "second"},
        {"q0": ["d0"], "q1": ["d1"]},
        corpus,
        not_negative={"q0": ["d1", "d4"]},  # d4 is in no row: no text id, no pair
    )
    rows = build_rows(data, {"q0": ["d2"], "q1": ["d3"]})
    ids = {text: rows.table.find(text, role) for text, role in [("first", "query"), ("second", "query")]}
    doc = {d: rows.table.find(t, "document") for d, t in corpus.items()}
    assert doc["d4"] is None
    expected = {(ids["first"], doc["d0"]), (ids["first"], doc["d1"]), (ids["second"], doc["d1"])}
    assert {tuple(p) for p in labelled_pairs(data, rows).tolist()} == expected
