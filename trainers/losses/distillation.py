"""``distillation_loss``: the ensemble distillation term a recipe's ``loss.distill`` names."""

from __future__ import annotations

from typing import Any

from trainers.config import LossConfig
from trainers.losses.kl import EnsembleKLLoss
from trainers.losses.margin_mse import EnsembleMarginMSELoss


def distillation_loss(
    model: Any, spec: LossConfig, similarity: str = "cosine", margin_scale: float | None = None
) -> Any:
    """The distillation term ``spec.distill`` names (``margin_mse`` or ``kl``), shared by both trainers.

    ``margin_scale`` overrides ``spec.margin_scale`` for Margin-MSE (the sparse trainer resolves
    ``auto`` on its rows first); KL ignores it.
    """
    if spec.distill == "margin_mse":
        scale = float(spec.margin_scale if margin_scale is None else margin_scale)
        return EnsembleMarginMSELoss(
            model, scale, similarity=similarity, teacher_margin_floor=spec.teacher_margin_floor
        )
    if spec.distill == "kl":
        return EnsembleKLLoss(
            model, spec.distill_temperature, spec.teacher_temperature, similarity=similarity
        )
    raise ValueError(f"loss.distill {spec.distill!r} is not supported; expected margin_mse or kl")
