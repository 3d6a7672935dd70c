"""Two-phase sparse search: the heavy query tokens find candidates, the light ones rescore them.

OpenSearch's ``neural_sparse_two_phase_processor`` (2.15) splits every query: tokens whose weight is
at least ``prune_ratio`` times the query's largest weight search the whole index for the top
``k * expansion_rate`` documents (at most ``max_window_size``), and the remaining tokens add their
share to those candidates only, so every returned score is the full query's score. Long posting lists
belong to common tokens, whose inference-free (IDF) weights are low, so the first phase reads far
fewer postings; what it can cost is a document outside the window that the light tokens would have
lifted into the top ``k``. :class:`~indexes.lucene.LuceneImpactIndex` runs it with Lucene's
``QueryRescorer``; :mod:`indexes.opensearch` writes the cluster's search pipeline with the same
parameters.

Example:
    >>> two_phase = TwoPhase(prune_ratio=0.4, expansion_rate=5.0)
    >>> heavy, light = two_phase.split(query_csr)
    >>> two_phase.window(10)
    50
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse

PARAMETERS = ("prune_ratio", "expansion_rate", "max_window_size")


@dataclass(frozen=True)
class TwoPhase:
    """The split of a query and the size of the candidate window (OpenSearch's parameter names).

    Args:
        prune_ratio: tokens weighing at least ``prune_ratio * max(query weights)`` search in the first
            phase; in [0, 1] (0 puts every token there: one exact phase). Query weights are positive, as
            impact indexes need.
        expansion_rate: the first phase keeps ``k * expansion_rate`` candidates; at least 1.
        max_window_size: the most candidates the first phase keeps; at least 1.
    """

    prune_ratio: float = 0.4
    expansion_rate: float = 5.0
    max_window_size: int = 10_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune_ratio <= 1.0:
            raise ValueError(f"prune_ratio must be in [0, 1]; got {self.prune_ratio}")
        if not (math.isfinite(self.expansion_rate) and self.expansion_rate >= 1.0):
            raise ValueError(f"expansion_rate must be a finite number, at least 1; got {self.expansion_rate}")
        if int(self.max_window_size) != self.max_window_size or self.max_window_size < 1:
            raise ValueError(
                f"max_window_size must be a whole number, at least 1; got {self.max_window_size}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TwoPhase | None:
        """The two-phase setting in search parameters (None when ``prune_ratio`` is absent); other keys
        are refused by name."""
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown search parameter(s) {', '.join(unknown)}; a sparse Lucene index takes "
                f"{', '.join(PARAMETERS)} (two-phase search)"
            )
        if "prune_ratio" not in params:
            if params:
                raise ValueError(
                    f"{', '.join(sorted(params))} given without prune_ratio, which turns two-phase on"
                )
            return None
        return cls(
            prune_ratio=float(params["prune_ratio"]),
            expansion_rate=float(params.get("expansion_rate", cls.expansion_rate)),
            max_window_size=params.get("max_window_size", cls.max_window_size),
        )

    def params(self) -> dict[str, Any]:
        """The search parameters that :meth:`from_params` reads back."""
        return asdict(self)

    def window(self, k: int) -> int:
        """How many candidates the first phase keeps for a top-``k`` search (never fewer than ``k``)."""
        if int(k) < 1:
            raise ValueError(f"k must be at least 1; got {k}")
        return max(int(k), min(int(self.max_window_size), math.ceil(int(k) * self.expansion_rate)))

    def split(self, queries: sparse.csr_matrix) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(heavy, light): the same queries with only the first-phase tokens, and with only the rest."""
        q = sparse.csr_matrix(queries, copy=True)
        q.eliminate_zeros()
        rows = np.repeat(np.arange(q.shape[0]), np.diff(q.indptr))
        top = q.max(axis=1).toarray().ravel()  # each query's largest weight
        heavy_mask = q.data >= self.prune_ratio * top[rows]
        heavy, light = q.copy(), q.copy()
        heavy.data = np.where(heavy_mask, q.data, 0).astype(q.dtype)
        light.data = np.where(heavy_mask, 0, q.data).astype(q.dtype)
        heavy.eliminate_zeros()
        light.eliminate_zeros()
        return heavy, light
