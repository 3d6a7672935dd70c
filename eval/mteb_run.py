"""Run mteb on Winnow or sentence-transformers models: ``run_mteb`` and the task selection around it.

mteb does the evaluation (its tasks, evaluators, result objects and results cache); Winnow adds local
task data (:mod:`eval.mteb_data`), model adapters with names and revisions (:mod:`eval.mteb_models`),
partial-benchmark bookkeeping and the summary (:mod:`eval.mteb_report`).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.mteb_data import LocalDataMissing, load_local
from eval.mteb_models import load_mteb_model

logger = logging.getLogger(__name__)


@dataclass
class TaskScore:
    task: str
    task_type: str
    main_score_name: str
    score: float | None  # None when the task was not scored
    reason: str = ""


@dataclass
class MtebRun:
    """What one model scored: per task main scores, and the tasks left out with why."""

    model: str
    revision: str
    scores: list[TaskScore] = field(default_factory=list)
    requested: int = 0
    results_dir: Path | None = None

    @property
    def scored(self) -> list[TaskScore]:
        return [s for s in self.scores if s.score is not None]

    @property
    def skipped(self) -> list[TaskScore]:
        return [s for s in self.scores if s.score is None]


def select_tasks(tasks: list[str] | None = None, benchmark: str | None = None) -> list[Any]:
    """mteb task objects for ``tasks`` (names) or ``benchmark``; unknown names get the closest ones."""
    import mteb

    if (tasks is None) == (benchmark is None):
        raise ValueError("give exactly one of tasks or benchmark")
    if benchmark is not None:
        try:
            return list(mteb.get_benchmark(benchmark).tasks)
        except (KeyError, ValueError) as exc:
            names = [b.name for b in mteb.get_benchmarks()]
            close = difflib.get_close_matches(benchmark, names, n=3)
            raise ValueError(
                f"unknown benchmark {benchmark!r}; did you mean {', '.join(close) or names[:5]}?"
            ) from exc
    known = {t.metadata.name.lower(): t.metadata.name for t in mteb.get_tasks(exclude_superseded=False)}
    wanted = []
    for name in tasks:
        if name.lower() not in known:
            close = difflib.get_close_matches(name.lower(), list(known), n=3)
            raise ValueError(
                f"unknown mteb task {name!r}; did you mean {', '.join(known[c] for c in close) or '?'}"
            )
        wanted.append(known[name.lower()])
    return list(mteb.get_tasks(tasks=wanted, exclude_superseded=False))


def _main_score(task_result: Any) -> float:
    return float(task_result.get_score())


def run_mteb(
    model: str | Any,
    *,
    tasks: list[str] | None = None,
    benchmark: str | None = None,
    task_data: str | Path | None = None,
    output: str | Path = "runs/mteb",
    device: str | None = None,
    overwrite: bool = False,
    embedding_cache: str | Path | None = None,
) -> MtebRun:
    """Evaluate ``model`` on mteb tasks; results go to ``OUTPUT/results/<model>/<revision>/<task>.json``.

    Args:
        model: hub id, model directory, or sparse model / sparse ONNX export (scored through mteb's
            search protocol with exact sparse search); or a model object mteb takes as it is (one with
            ``mteb_model_meta``, such as :class:`eval.mteb_hybrid.HybridSearchModel`).
        tasks: task names (``["SciFact", "STSBenchmark"]``), or
        benchmark: a benchmark name (``"MTEB(eng, v2)"``).
        task_data: load tasks from local copies (see :mod:`eval.mteb_data`); tasks without one are
            listed as skipped and the run continues; when no task has one, a ValueError names them
            all before the model loads.
        output: mteb results cache folder (mteb's own tools read it).
        device: torch / onnxruntime device.
        overwrite: rerun tasks whose results are already cached.
        embedding_cache: serve a dense model's embeddings from this content-keyed cache
            (see :class:`eval.mteb_models.CachedEncoder`).
    """
    import mteb
    from mteb.cache import ResultCache

    selected = select_tasks(tasks, benchmark)
    runnable, scores = [], []
    for task in selected:
        meta = task.metadata
        if task_data is not None:
            try:
                load_local(task, task_data)
            except LocalDataMissing as exc:
                scores.append(TaskScore(meta.name, meta.type, meta.main_score, None, str(exc)))
                continue
        runnable.append(task)
    if not runnable:
        reasons = "; ".join(s.reason for s in scores)
        raise ValueError(f"none of the {len(selected)} requested tasks can run from {task_data}: {reasons}")
    if isinstance(model, str):
        wrapped = load_mteb_model(model, device=device, embedding_cache=embedding_cache)
    else:
        wrapped = model  # already an mteb model (e.g. eval.mteb_hybrid.HybridSearchModel)
    meta = wrapped.mteb_model_meta
    run = MtebRun(model=meta.name, revision=meta.revision, requested=len(selected), results_dir=Path(output))
    if runnable:
        result = mteb.evaluate(
            wrapped,
            runnable,
            cache=ResultCache(output),
            raise_error=False,
            overwrite_strategy="always" if overwrite else "only-missing",
        )
        by_name = {r.task_name: r for r in result.task_results}
        for task in runnable:
            m = task.metadata
            if m.name in by_name:
                scores.append(TaskScore(m.name, m.type, m.main_score, _main_score(by_name[m.name])))
            else:
                scores.append(
                    TaskScore(m.name, m.type, m.main_score, None, "evaluation failed (see the log)")
                )
    run.scores = sorted(scores, key=lambda s: (s.task_type, s.task))
    logger.info("%s: scored %d of %d tasks", run.model, len(run.scored), run.requested)
    return run
