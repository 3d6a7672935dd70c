"""Margin-MSE distillation on hand-checked embeddings and teacher scores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainers.losses.margin_mse import EnsembleMarginMSELoss


def _batch() -> tuple[list[torch.Tensor], torch.Tensor]:
    # Two rows (anchor, positive, negative). Cosines: row 0 pos 1, neg 0; row 1 pos 0, neg 1.
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    negative = torch.tensor([[0.0, 1.0], [4.0, 0.0]])
    # labels: text ids (3 columns) + teacher scores of positive and negative
    labels = torch.tensor([[0, 1, 2, 0.2, 0.9], [3, 4, 5, 1.0, 0.5]])
    return [anchor, positive, negative], labels


def test_margin_mse_matches_hand_computation() -> None:
    embeddings, labels = _batch()
    loss = EnsembleMarginMSELoss(nn.Identity(), margin_scale=1.0)
    # student margins 1 and -1; teacher margins -0.7 and 0.5
    expected = ((1 - (-0.7)) ** 2 + (-1 - 0.5) ** 2) / 2
    assert loss.loss_from_embeddings(embeddings, labels).item() == pytest.approx(expected)


def test_teacher_margin_floor_raises_only_margins_below_it() -> None:
    embeddings, labels = _batch()
    loss = EnsembleMarginMSELoss(nn.Identity(), margin_scale=1.0, teacher_margin_floor=0.0)
    # row 0's teacher margin -0.7 becomes 0; row 1's 0.5 is kept
    expected = ((1 - 0.0) ** 2 + (-1 - 0.5) ** 2) / 2
    assert loss.loss_from_embeddings(embeddings, labels).item() == pytest.approx(expected)


def _in_batch_reference(
    embeddings: list[torch.Tensor], labels: torch.Tensor, teacher: torch.Tensor, normalise: bool = True
) -> float:
    """The in-batch term written out pair by pair (independent of the vectorised loss)."""
    anchor, *docs = [nn.functional.normalize(e, dim=-1) for e in embeddings]
    ids = labels[:, : len(embeddings)].long()
    errors = []
    for i in range(len(anchor)):
        others = [
            (c, j)
            for j in range(len(anchor))
            if j != i
            for c in range(len(docs))
            if ids[j, c + 1] != ids[i, 1]
        ]
        t = {(c, j): float(teacher[ids[i, 0]] @ teacher[ids[j, c + 1]]) for c, j in [(0, i), *others]}
        low, high = min(t.values()), max(t.values())
        norm = {k: (v - low) / (high - low) if normalise else 5.0 * v for k, v in t.items()}
        s_pos = float(anchor[i] @ docs[0][i])
        for c, j in others:
            student_margin = 5.0 * (s_pos - float(anchor[i] @ docs[c][j]))
            errors.append((student_margin - (norm[(0, i)] - norm[(c, j)])) ** 2)
    return sum(errors) / len(errors)


@pytest.mark.parametrize("normalise", [True, False])
def test_in_batch_margin_mse_matches_pairwise_reference(normalise: bool) -> None:
    from trainers.losses.in_batch_margin_mse import InBatchMarginMSELoss

    generator = torch.Generator().manual_seed(0)
    embeddings = [torch.randn(4, 8, generator=generator) for _ in range(3)]
    teacher = nn.functional.normalize(torch.randn(12, 6, generator=generator), dim=-1)
    # text ids: row r holds query 3r, positive 3r+1, negative 3r+2; row 3's positive repeats row 0's
    ids = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    ids[3, 1] = 1.0
    loss = InBatchMarginMSELoss(nn.Identity(), teacher, margin_scale=5.0, normalise=normalise)
    value = loss.loss_from_embeddings(embeddings, ids).item()
    assert value == pytest.approx(_in_batch_reference(embeddings, ids, teacher, normalise), rel=1e-5)


def test_in_batch_margin_mse_ignores_own_negatives_and_duplicate_positives() -> None:
    from trainers.losses.in_batch_margin_mse import InBatchMarginMSELoss

    generator = torch.Generator().manual_seed(1)
    embeddings = [torch.randn(2, 8, generator=generator, requires_grad=True) for _ in range(3)]
    teacher = nn.functional.normalize(torch.randn(6, 4, generator=generator), dim=-1)
    loss = InBatchMarginMSELoss(nn.Identity(), teacher)
    # one row: its own negative is the pairwise term's business, so nothing is in-batch
    single = loss.loss_from_embeddings([e[:1] for e in embeddings], torch.tensor([[0.0, 1.0, 2.0]]))
    assert single.item() == 0.0
    single.backward()  # a zero with a gradient path, so the trainer can still step
    # two (anchor, positive) rows whose positives are the same text: no in-batch negative either
    same = torch.tensor([[0.0, 1.0], [3.0, 1.0]])
    assert loss.loss_from_embeddings(embeddings[:2], same).item() == 0.0
    # the same rows with distinct positives do compare
    distinct = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    assert loss.loss_from_embeddings(embeddings[:2], distinct).item() > 0.0
