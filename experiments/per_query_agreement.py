"""Does a recipe's per-query gain follow a reference system's (e.g. its teacher's)?

For every query of one split: ``d_other = other - baseline`` and ``d_ref = reference - baseline``
(nDCG@10 by default, from ``winnow eval beir --output`` files; comma-joined files are averaged per
query, as in ``winnow eval compare``); ``--reference-baseline`` takes ``d_ref`` against other runs
of the baseline (other seeds), so the baseline's per-query noise is not shared by both differences.
Prints their Spearman and Pearson correlations and the mean ``d_other`` over the queries where the
reference beats, ties or loses to the baseline. A distilled
student that inherits its teacher's errors gains where the teacher is ahead and loses where it is
behind.

    python -m experiments.per_query_agreement --baseline mnrl-s1.json,mnrl-s2.json \
        --other full-s1.json,full-s2.json --reference bm25.json --json runs/agreement.json
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from bench.common import command_line, save_record
from eval.report import load_pooled

logger = logging.getLogger("experiments.per_query_agreement")


def pooled(spec: str, metric: str) -> dict[str, float]:
    return load_pooled(spec, metric)[1]


def agreement(
    baseline: dict[str, float],
    other: dict[str, float],
    reference: dict[str, float],
    reference_baseline: dict[str, float] | None = None,
) -> dict[str, float | int]:
    """Correlations of ``other - baseline`` with ``reference - reference_baseline`` and group means.

    ``reference_baseline`` defaults to ``baseline``; give other runs of the baseline system (other
    seeds) to keep the baseline's own per-query noise, shared by both differences, from correlating
    them by itself.
    """
    from scipy import stats

    ref_base = baseline if reference_baseline is None else reference_baseline
    queries = sorted(baseline)
    for name, run in (("other", other), ("reference", reference), ("reference baseline", ref_base)):
        if set(run) != set(queries):
            raise ValueError(f"{name} was scored on other queries than the baseline; use one split")
    b = np.array([baseline[q] for q in queries])
    d_other = np.array([other[q] for q in queries]) - b
    d_ref = np.array([reference[q] for q in queries]) - np.array([ref_base[q] for q in queries])
    out: dict[str, float | int] = {"queries": len(queries), "mean_d_other": float(d_other.mean())}
    out["spearman"] = float(stats.spearmanr(d_other, d_ref).statistic)
    out["pearson"] = float(stats.pearsonr(d_other, d_ref).statistic)
    for group, mask in (("ref_ahead", d_ref > 0), ("ref_tied", d_ref == 0), ("ref_behind", d_ref < 0)):
        out[f"{group}_queries"] = int(mask.sum())
        out[f"{group}_mean_d_other"] = float(d_other[mask].mean()) if mask.any() else float("nan")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="result JSON (or comma-joined runs)")
    parser.add_argument("--other", required=True, help="result JSON (or comma-joined runs)")
    parser.add_argument("--reference", action="append", required=True, help="result JSON (repeatable)")
    parser.add_argument(
        "--reference-baseline",
        default=None,
        help="runs of the baseline system (other seeds) that the references are compared with; "
        "default --baseline",
    )
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    baseline, other = pooled(args.baseline, args.metric), pooled(args.other, args.metric)
    ref_base = pooled(args.reference_baseline, args.metric) if args.reference_baseline else None
    rows = {ref: agreement(baseline, other, pooled(ref, args.metric), ref_base) for ref in args.reference}
    command = command_line()
    print(f"# {command}\n")
    print(
        "| reference | Spearman | Pearson | other - baseline where the reference is ahead / tied / "
        "behind (queries) |"
    )
    print("|---|---|---|---|")
    for ref, r in rows.items():
        groups = " / ".join(
            f"{r[f'{g}_mean_d_other']:+.4f} ({r[f'{g}_queries']})"
            for g in ("ref_ahead", "ref_tied", "ref_behind")
        )
        print(f"| {ref} | {r['spearman']:.3f} | {r['pearson']:.3f} | {groups} |")
    if args.json:
        save_record(args.json, metric=args.metric, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
