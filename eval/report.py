"""Side-by-side tables of ``winnow eval beir`` results (Markdown or CSV), and grouped bar charts."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
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
        [result_label(r), str(r.get("dataset", "?")), str(r.get("split", "?"))]
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


def result_label(result: dict[str, Any], default: str = "?") -> str:
    """A result's model, with a hybrid's fusion settings and a reranker when it records them, so two
    hybrids of the same members stay apart: ``hybrid-convex(...) [zscore, w 0.5/0.5, depth 1000]``."""
    label = str(result.get("model", default))
    if result.get("query_weights") not in (None, "model"):
        label += f" [{result['query_weights']} query weights]"
    system = result.get("system")
    if not isinstance(system, dict):
        return label
    settings = []
    if system.get("fusion") == "convex":
        settings.append(str(system.get("normalize")))
    if system.get("fusion") == "rrf" and system.get("rrf_k") not in (None, 60, 60.0):
        settings.append(f"k {system['rrf_k']:g}")
    if system.get("weights"):
        settings.append("w " + "/".join(f"{w:g}" for w in system["weights"]))
    if system.get("depth"):
        depths = sorted(set(system["depth"]))
        settings.append("depth " + "/".join(str(d) for d in depths))
    if settings:
        label += f" [{', '.join(settings)}]"
    if isinstance(system.get("reranker"), dict):
        label += f" + rerank {system['reranker'].get('model')} @{system['reranker'].get('depth')}"
    return label


def load_pooled(spec: str, metric: str) -> tuple[str, dict[str, float]]:
    """Label and per-query ``metric`` scores of ``spec``: one result file, or comma-joined files (seeds
    of one system) averaged per query."""
    from eval.significance import average_runs

    paths = [p for p in spec.split(",") if p]
    if not paths:
        raise ValueError(f"{spec!r}: expected a result JSON path, or several joined by commas")
    results = load_results(paths)
    runs = [per_query_of(r, metric, p) for r, p in zip(results, paths, strict=True)]
    label = result_label(results[0], paths[0])
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


def bar_chart(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    path: str | Path,
    ylabel: str,
) -> Path:
    """Grouped bars written atomically to a PNG: one group per entry of ``groups``, one bar per series.

    Args:
        groups: the x-axis groups (data sets, tasks).
        series: ``{label: values}``, one value per group; None leaves the bar out.
        path: the PNG to write; it appears only once complete.
        ylabel: the y-axis label.

    Example:
        >>> bar_chart(["scifact", "fiqa"], {"bm25": [0.67, 0.24], "e5": [0.72, None]}, "c.png", "ndcg@10")
    """
    if not groups or not series:
        raise ValueError("bar_chart needs at least one group and one series; got none")
    for label, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(groups)} groups")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(groups) * len(series)), 4))
    for i, (label, values) in enumerate(series.items()):
        kept = [(g, v) for g, v in enumerate(values) if v is not None]
        ax.bar([g + i * width for g, _ in kept], [v for _, v in kept], width, label=label)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel(ylabel)
    ax.legend(
        fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(series), 3), frameon=False
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def beir_chart(results: Sequence[dict[str, Any]], path: str | Path, metric: str = "ndcg@10") -> Path:
    """Bar chart of `winnow eval beir` results: one group per data set, one bar per model, ``metric``."""
    if not results:
        raise ValueError("beir_chart needs at least one `winnow eval beir` result; got none")
    if not any(metric in r["metrics"] for r in results):
        have = sorted({m for r in results for m in r["metrics"]})
        raise ValueError(f"no result has metric {metric!r}; they have {', '.join(have)}")
    datasets = list(dict.fromkeys(str(r.get("dataset", "?")) for r in results))
    scores: dict[str, dict[str, float]] = {}
    for r in results:
        if metric in r["metrics"]:
            scores.setdefault(result_label(r), {})[str(r.get("dataset", "?"))] = r["metrics"][metric]
    series = {model: [by_set.get(d) for d in datasets] for model, by_set in scores.items()}
    return bar_chart(datasets, series, path, ylabel=metric)
