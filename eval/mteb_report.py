"""Leaderboard-style summaries of mteb runs: Markdown, CSV and a bar chart, several models side by side."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from eval.mteb_run import MtebRun
from eval.report import bar_chart, render_csv, render_markdown


def _table(runs: Sequence[MtebRun]) -> tuple[list[str], list[list[str]]]:
    tasks = sorted({(s.task_type, s.task) for r in runs for s in r.scores})
    types = sorted({t for t, _ in tasks})
    header = ["model", "tasks scored", "mean", *[f"mean {t}" for t in types], *[name for _, name in tasks]]
    rows = []
    for run in runs:
        by_task = {s.task: s.score for s in run.scores}
        per_type = defaultdict(list)
        for s in run.scored:
            per_type[s.task_type].append(s.score)
        scored = [s.score for s in run.scored]
        cell = lambda v: f"{100 * v:.2f}" if v is not None else "-"  # noqa: E731 - mteb reports x100
        rows.append(
            [run.model, f"{len(scored)}/{run.requested}", cell(sum(scored) / len(scored) if scored else None)]
            + [cell(sum(per_type[t]) / len(per_type[t]) if per_type[t] else None) for t in types]
            + [cell(by_task.get(name)) for _, name in tasks]
        )
    return header, rows


def markdown_summary(runs: Sequence[MtebRun]) -> str:
    lines = [render_markdown(*_table(runs)).rstrip("\n")]
    skipped = [(r.model, s) for r in runs for s in r.skipped]
    if skipped:
        lines += ["", "Not scored:"] + [f"- {model}: {s.task}: {s.reason}" for model, s in skipped]
    return "\n".join(lines) + "\n"


def csv_summary(runs: Sequence[MtebRun]) -> str:
    return render_csv(*_table(runs))


def mteb_chart(runs: Sequence[MtebRun], path: str | Path) -> Path:
    """Grouped bars: one group per task, one bar per model (main score x 100), written atomically."""
    tasks = sorted({s.task for r in runs for s in r.scored})
    series = {}
    for run in runs:
        by_task = {s.task: s.score for s in run.scored}
        series[run.model] = [100 * by_task[t] if by_task.get(t) is not None else None for t in tasks]
    return bar_chart(tasks, series, path, ylabel="main score (x100)")
