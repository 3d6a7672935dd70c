"""How well teacher scores order a query's candidates: evidence for choosing teacher weights.

Each query has a score array over its candidates whose first ``n_pos`` entries are its positives and
the rest its (mined) negatives. These measures are computed on *training* candidates, so teacher
weights can be chosen without touching a test split (``experiments/teacher_quality.py``).

Example:
    >>> pairwise_accuracy([np.array([0.9, 0.2, 0.5])], [1])
    1.0
    >>> first_positive_mrr([np.array([0.4, 0.2, 0.5])], [1])
    0.5
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def pairwise_accuracy(scores: Sequence[np.ndarray], n_pos: Sequence[int]) -> float:
    """Share of (positive, negative) pairs scored in the right order; a tie counts half."""
    right = total = 0.0
    for raw, p in zip(scores, n_pos, strict=True):
        s = np.asarray(raw)
        pos, neg = s[:p, None], s[None, p:]
        if pos.size == 0 or neg.size == 0:
            continue
        right += float((pos > neg).sum() + 0.5 * (pos == neg).sum())
        total += pos.size * neg.size
    if total == 0:
        raise ValueError("no query has both a positive and a negative candidate")
    return right / total


def first_positive_mrr(scores: Sequence[np.ndarray], n_pos: Sequence[int]) -> float:
    """Mean reciprocal rank of each query's best positive; a negative tying with it ranks above it."""
    ranks = []
    for raw, p in zip(scores, n_pos, strict=True):
        s = np.asarray(raw)
        if p == 0:
            continue
        ranks.append(1.0 / (1 + int((s[p:] >= s[:p].max()).sum())))
    if not ranks:
        raise ValueError("no query has a positive candidate")
    return float(np.mean(ranks))


def weight_grid(n_teachers: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector on a grid of ``step`` whose entries sum to 1."""
    if not 0 < step <= 1 or abs(round(1 / step) * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 (e.g. 0.25, 0.125); got {step}")
    ticks = round(1 / step)
    return [
        tuple(c * step for c in combo)
        for combo in itertools.product(range(ticks + 1), repeat=n_teachers)
        if sum(combo) == ticks
    ]
