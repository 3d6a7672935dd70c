"""Training losses, one per file, in the style of sentence-transformers' losses."""

from __future__ import annotations

from trainers.losses.combined import CombinedLoss
from trainers.losses.gist import CachedGuideGISTLoss
from trainers.losses.in_batch_margin_mse import InBatchMarginMSELoss
from trainers.losses.kl import EnsembleKLLoss
from trainers.losses.margin_mse import EnsembleMarginMSELoss

__all__ = [
    "CachedGuideGISTLoss",
    "CombinedLoss",
    "EnsembleKLLoss",
    "EnsembleMarginMSELoss",
    "InBatchMarginMSELoss",
]
