"""Paired significance tests between two retrieval runs scored on the same queries.

IR practice (Smucker, Allan and Carterette, CIKM 2007): compare two systems query by query, with a
two-sided paired randomisation (permutation) test, here beside the paired t-test and a bootstrap
confidence interval of the mean difference. The statistics are scipy's (``permutation_test``,
``ttest_rel``, ``bootstrap``); this module only pairs the queries and reports.

Several runs of one system (seeds) can be pooled: their per-query scores are averaged before the
test, which then asks whether the systems differ on this query population with the seeds held fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PerQuery = Mapping[str, float]


@dataclass(frozen=True)
class PairedComparison:
    """``other`` against ``baseline`` on one metric over the queries both were scored on."""

    metric: str
    n_queries: int
    baseline_mean: float
    other_mean: float
    difference: float  # other - baseline
    ci_low: float
    ci_high: float
    p_randomization: float
    p_ttest: float
    wins: int  # queries where other > baseline
    ties: int
    losses: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_randomization < alpha


def average_runs(runs: Sequence[PerQuery], names: Sequence[str] | None = None) -> dict[str, float]:
    """Per-query mean over ``runs`` (e.g. seeds of one recipe); every run must cover the same queries."""
    if not runs:
        raise ValueError("average_runs needs at least one run")
    names = list(names) if names is not None else [f"run {i}" for i in range(len(runs))]
    queries = set(runs[0])
    for name, run in zip(names[1:], runs[1:], strict=True):
        if set(run) != queries:
            missing = sorted(queries - set(run))[:3]
            extra = sorted(set(run) - queries)[:3]
            raise ValueError(
                f"{name} was scored on other queries than {names[0]} "
                f"(missing e.g. {missing}, extra e.g. {extra}); pool only runs of one split"
            )
    return {q: float(np.mean([run[q] for run in runs])) for q in runs[0]}


def paired_comparison(
    baseline: PerQuery,
    other: PerQuery,
    metric: str = "ndcg@10",
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare ``other`` with ``baseline`` on the queries both have scores for.

    Args:
        baseline: ``{query_id: score}`` of the reference system.
        other: ``{query_id: score}`` of the system under test.
        metric: the metric's name, for the report only.
        n_resamples: permutations of the randomisation test and resamples of the bootstrap.
        confidence: level of the bootstrap (percentile) interval of the mean difference.
        seed: random seed of both resampling procedures, so a report is reproducible.

    Raises:
        ValueError: when the two share no query, or when their query sets differ (a comparison on
            different queries would not be paired).
    """
    from scipy import stats

    shared = sorted(set(baseline) & set(other))
    if set(baseline) != set(other):
        only_a = sorted(set(baseline) - set(other))[:3]
        only_b = sorted(set(other) - set(baseline))[:3]
        raise ValueError(
            f"the runs were scored on different queries ({len(baseline)} vs {len(other)}, {len(shared)} "
            f"shared; only in the baseline e.g. {only_a}, only in the other e.g. {only_b}); "
            "compare runs of the same data set and split"
        )
    if not shared:
        raise ValueError("the runs share no query")
    a = np.array([baseline[q] for q in shared], dtype=np.float64)
    b = np.array([other[q] for q in shared], dtype=np.float64)
    diff = b - a
    if np.all(diff == 0):
        p_rand = p_t = 1.0
        low = high = 0.0
    else:
        p_rand = float(
            stats.permutation_test(
                (b, a),
                lambda x, y, axis: np.mean(x - y, axis=axis),
                permutation_type="samples",
                n_resamples=n_resamples,
                vectorized=True,
                alternative="two-sided",
                random_state=seed,
            ).pvalue
        )
        constant = np.ptp(diff) <= 1e-12  # every query moved by the same amount: no spread to test
        p_t = 0.0 if constant else float(stats.ttest_rel(b, a).pvalue)
        if len(diff) > 1 and not constant:
            interval = stats.bootstrap(
                (diff,),
                np.mean,
                n_resamples=n_resamples,
                confidence_level=confidence,
                method="percentile",
                random_state=seed,
            ).confidence_interval
            low, high = float(interval.low), float(interval.high)
        else:
            low = high = float(diff.mean())
    return PairedComparison(
        metric=metric,
        n_queries=len(shared),
        baseline_mean=float(a.mean()),
        other_mean=float(b.mean()),
        difference=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        p_randomization=p_rand,
        p_ttest=p_t,
        wins=int(np.sum(diff > 0)),
        ties=int(np.sum(diff == 0)),
        losses=int(np.sum(diff < 0)),
    )
