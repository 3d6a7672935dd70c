"""Side-by-side tables of ``winnow eval beir`` results (Markdown or CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    results = []
    for path in paths:
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"result file {path} not found") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
            raise ValueError(f"{path}: not a `winnow eval beir` result (no 'metrics' object)")
        results.append(result)
    return results


def comparison_rows(results: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per result: model, data set, split, then every metric any result has."""
    metrics = list(dict.fromkeys(m for r in results for m in r["metrics"]))
    header = ["model", "dataset", "split", *metrics]
    rows = [
        [str(r.get("model", "?")), str(r.get("dataset", "?")), str(r.get("split", "?"))]
        + [f"{r['metrics'][m]:.4f}" if m in r["metrics"] else "" for m in metrics]
        for r in results
    ]
    return header, rows


def render_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    return render_markdown(*comparison_rows(results))


def csv_table(results: Sequence[dict[str, Any]]) -> str:
    return render_csv(*comparison_rows(results))


def per_query_of(result: dict[str, Any], metric: str, source: str) -> dict[str, float]:
    """A result's per-query scores for ``metric``; ``source`` names the file in errors."""
    per_query = result.get("per_query")
    if not isinstance(per_query, dict):
        raise ValueError(
            f"{source}: no per-query scores (written by an older `winnow eval beir`); score the model "
            "again with --output to compare it"
        )
    if metric not in per_query:
        raise ValueError(f"{source}: no per-query {metric!r}; it has {', '.join(sorted(per_query))}")
    return {str(q): float(v) for q, v in per_query[metric].items()}


def load_pooled(spec: str, metric: str) -> tuple[str, dict[str, float]]:
    """Label and per-query ``metric`` scores of ``spec``: one result file, or comma-joined files (seeds
    of one system) averaged per query."""
    from eval.significance import average_runs

    paths = [p for p in spec.split(",") if p]
    if not paths:
        raise ValueError(f"{spec!r}: expected a result JSON path, or several joined by commas")
    results = load_results(paths)
    runs = [per_query_of(r, metric, p) for r, p in zip(results, paths, strict=True)]
    label = str(results[0].get("model", paths[0]))
    if len(paths) > 1:
        label = f"{label} (mean of {len(paths)} runs)"
    return label, average_runs(runs, paths)


def significance_rows(
    labels: Sequence[str], comparisons: Sequence[Any], baseline_label: str
) -> tuple[list[str], list[list[str]]]:
    """One row per :class:`~eval.significance.PairedComparison` against ``baseline_label``."""
    if not comparisons:
        return [], []
    first = comparisons[0]
    metric = first.metric
    header = [
        "run",
        "queries",
        metric,
        "diff",
        "95% CI",
        "p (randomisation)",
        "p (t-test)",
        "wins/ties/losses",
    ]
    rows = [[baseline_label, str(first.n_queries), f"{first.baseline_mean:.4f}", "", "", "", "", ""]]
    for label, c in zip(labels, comparisons, strict=True):
        rows.append(
            [
                label,
                str(c.n_queries),
                f"{c.other_mean:.4f}",
                f"{c.difference:+.4f}",
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
                f"{c.p_randomization:.4f}",
                f"{c.p_ttest:.4f}",
                f"{c.wins}/{c.ties}/{c.losses}",
            ]
        )
    return header, rows
