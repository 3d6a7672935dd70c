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
