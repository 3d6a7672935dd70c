"""Choose a hybrid's fusion on a train or dev split by grid search; the test split is refused.

Each member is searched once, at the largest depth of the grid; every setting (fusion, normalisation,
RRF constant, weights, depth) then re-fuses those hits (:func:`retrieval.fusion.fuse`) and is scored
query by query. The best setting on the tuning queries wins; ties go to the earlier setting of the grid
(RRF before convex, smaller depths first).

Tune on queries the members never trained on: a dev split, or the training queries a model held out
(``skip_queries``: a model trained with ``data.max_queries=N`` never saw the queries after the first N).

Example:
    >>> result = tune_fusion(hybrid, open_beir("data/beir/nfcorpus"), split="dev")
    >>> result.best, result.score
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.beir import held_out_queries
from eval.metrics import check_metrics, drop_self_hits, evaluate_run
from retrieval.corpus import BeirDataset
from retrieval.fusion import FUSIONS, NORMALIZATIONS, fuse
from retrieval.hybrid import Hybrid

logger = logging.getLogger(__name__)

REFUSED_SPLITS = ("test",)


@dataclass
class FusionGrid:
    """The settings tried.

    Args:
        fusions: ``rrf`` and/or ``convex``.
        normalizations: for ``convex``: ``minmax``, ``zscore``, ``none``.
        rrf_ks: RRF constants.
        depths: candidates per member (the same for every member).
        weight_step: weights go over the simplex in steps of this size (0.1: 0.1/0.9 ... 0.9/0.1 for
            two members); every member keeps a weight above 0.
    """

    fusions: Sequence[str] = FUSIONS
    normalizations: Sequence[str] = ("minmax", "zscore")
    rrf_ks: Sequence[float] = (60.0,)
    depths: Sequence[int] = (100, 1000)
    weight_step: float = 0.1

    def __post_init__(self) -> None:
        for name in self.fusions:
            if name not in FUSIONS:
                raise ValueError(f"unknown fusion {name!r}; expected one of {', '.join(FUSIONS)}")
        for name in self.normalizations:
            if name not in NORMALIZATIONS:
                raise ValueError(
                    f"unknown normalisation {name!r}; expected one of {', '.join(NORMALIZATIONS)}"
                )
        if not self.fusions or not self.depths or not self.rrf_ks or not self.normalizations:
            raise ValueError("every grid axis needs at least one value")
        if any(d < 1 for d in self.depths) or any(k <= 0 for k in self.rrf_ks):
            raise ValueError(f"depths {list(self.depths)} must be >= 1 and rrf_ks {list(self.rrf_ks)} > 0")
        if not 0 < self.weight_step <= 1:
            raise ValueError(f"weight_step {self.weight_step}: expected a number in (0, 1]")

    def weight_vectors(self, n_members: int) -> list[tuple[float, ...]]:
        """Positive weights summing to 1 on a grid of ``weight_step`` (just ``(1,)`` for one member)."""
        steps = round(1 / self.weight_step)
        if n_members == 1:
            return [(1.0,)]
        out = []
        for combo in itertools.product(range(1, steps), repeat=n_members - 1):
            last = steps - sum(combo)
            if last >= 1:
                out.append(tuple(round(c / steps, 6) for c in (*combo, last)))
        return out

    def settings(self, n_members: int) -> list[dict[str, Any]]:
        """Every setting, in the order ties are broken."""
        out = []
        for depth in sorted(self.depths):
            for fusion in self.fusions:
                variants = (
                    [{"rrf_k": float(k)} for k in self.rrf_ks]
                    if fusion == "rrf"
                    else [{"normalize": n} for n in self.normalizations]
                )
                for variant in variants:
                    for weights in self.weight_vectors(n_members):
                        out.append({"fusion": fusion, **variant, "weights": list(weights), "depth": depth})
        return out


@dataclass
class TuningResult:
    """What was chosen, on which queries, and how every setting and member scored."""

    best: dict[str, Any]
    score: float
    metric: str
    dataset: str
    split: str
    n_queries: int
    members: dict[str, float]
    table: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, top: int = 10) -> dict[str, Any]:
        """The hybrid config's ``tuning`` section: the choice, the members alone, the best rows."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_queries": self.n_queries,
            "metric": self.metric,
            "chosen": self.best,
            "score": round(self.score, 6),
            "members_alone": {k: round(v, 6) for k, v in self.members.items()},
            "top": self.table[:top],
            "n_settings": len(self.table),
        }


def check_tuning_split(split: str) -> None:
    """Refuse the test split: settings are chosen on train or dev queries, test only reports."""
    if split.lower() in REFUSED_SPLITS:
        raise ValueError(
            f"--split {split}: tuning on the test split is refused (it would choose the settings that the "
            "test figure then reports); tune on train (with --skip-queries for trained members) or dev"
        )


def tune_fusion(
    hybrid: Hybrid,
    data: BeirDataset,
    split: str,
    *,
    grid: FusionGrid | None = None,
    metric: str = "ndcg@10",
    skip_queries: int = 0,
    batch_size: int = 64,
) -> TuningResult:
    """Grid-search the hybrid's fusion on ``split`` of ``data`` (see the module docstring).

    The hybrid must index ``data``'s corpus already (build it first). Returns the best setting; the
    hybrid itself is left unchanged.

    Raises:
        ValueError: the test split, an unknown metric, a grid value out of range.
    """
    check_tuning_split(split)
    grid = grid or FusionGrid()
    (metric,) = check_metrics([metric])
    queries, qrels = data.judged(split)
    query_ids = held_out_queries(qrels, queries, skip_queries) if skip_queries else list(queries)
    qrels = {q: qrels[q] for q in query_ids}
    texts = [queries[q] for q in query_ids]
    deepest = max(grid.depths)
    searched = Hybrid(hybrid.members, depth=deepest)
    member_hits = searched.search_members(texts, batch_size=batch_size)
    members_alone = {}
    for member, hits in zip(hybrid.members, member_hits, strict=True):
        run = drop_self_hits(hits.as_run(query_ids))
        members_alone[f"{member.kind}:{member.name}"] = evaluate_run(qrels, run, [metric])[metric]
    table = []
    doc_ids = sorted(hybrid.members[0].index.ids)
    flips = [getattr(m.index, "metric", "ip") == "l2" for m in hybrid.members]
    k = _cutoff(metric) + 1
    for setting in grid.settings(len(hybrid.members)):
        fused = fuse(
            member_hits,
            doc_ids,
            method=setting["fusion"],
            weights=setting["weights"],
            depths=[setting["depth"]] * len(hybrid.members),
            normalize=setting.get("normalize", "minmax"),
            rrf_k=setting.get("rrf_k", 60.0),
            k=k,
            lower_is_better=flips,
        )
        run = drop_self_hits(fused.as_run(query_ids))
        table.append({**setting, metric: evaluate_run(qrels, run, [metric])[metric]})
    order = sorted(range(len(table)), key=lambda i: (-table[i][metric], i))
    ranked = [table[i] for i in order]
    best = {key: value for key, value in ranked[0].items() if key != metric}
    logger.info(
        "best of %d settings on %s/%s: %s %s=%.4f",
        len(table),
        data.name,
        split,
        best,
        metric,
        ranked[0][metric],
    )
    return TuningResult(
        best=best,
        score=float(ranked[0][metric]),
        metric=metric,
        dataset=data.name,
        split=split,
        n_queries=len(query_ids),
        members=members_alone,
        table=[{**row, metric: round(row[metric], 6)} for row in ranked],
    )


def _cutoff(metric: str) -> int:
    return int(metric.rsplit("@", 1)[1])
