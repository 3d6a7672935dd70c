"""Load MTEB tasks' data from local copies, keeping each official task's metadata, splits and main score.

``--task-data DIR`` maps a task to a folder under ``DIR`` (names are matched case-insensitively):

=============== ======================= =====================================================
task            folder                  layout
=============== ======================= =====================================================
SciFact         ``beir/scifact``        BEIR: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
NFCorpus        ``beir/nfcorpus``       BEIR
STSBenchmark    ``sts/stsbenchmark``    a .tsv with ``split``, ``score`` and two sentence columns
SICK-R          ``sts/sick``            as STSBenchmark (``sick_r.tsv``: sentence_A, sentence_B)
other retrieval ``beir/<name>``         BEIR, ``<name>`` = the task name in lower case
other STS       ``sts/<name>``          as STSBenchmark
=============== ======================= =====================================================

MTEB's ``validation`` split is read from the local ``dev`` split. Tasks of other types, or whose
folder is missing, raise :class:`LocalDataMissing` with the reason.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

from retrieval.corpus import iter_corpus, load_qrels, load_queries
from retrieval.judgements import match_judgements
from retrieval.textfile import iter_text_lines

logger = logging.getLogger(__name__)

TASK_FOLDERS = {
    "scifact": "beir/scifact",
    "nfcorpus": "beir/nfcorpus",
    "stsbenchmark": "sts/stsbenchmark",
    "sick-r": "sts/sick",
}
SPLIT_NAMES = {"validation": "dev"}
_FIRST = ("sentence1", "sentence_a", "sentence 1", "text1")
_SECOND = ("sentence2", "sentence_b", "sentence 2", "text2")
_SCORE = ("score", "relatedness_score", "similarity", "label")


class LocalDataMissing(LookupError):
    """A task cannot be served from the local data folder; the message says why."""


def task_folder(task_name: str, task_type: str, root: Path) -> Path:
    key = task_name.lower()
    relative = TASK_FOLDERS.get(key) or (f"beir/{key}" if task_type == "Retrieval" else f"sts/{key}")
    folder = root / relative
    if not folder.is_dir():
        raise LocalDataMissing(f"{task_name}: no local folder {folder}")
    return folder


def _retrieval(task: Any, folder: Path) -> dict:
    from datasets import Dataset
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    docs = list(iter_corpus(folder / "corpus.jsonl"))
    corpus = Dataset.from_dict(
        {
            "id": [d["_id"] for d in docs],
            "title": [d["title"] for d in docs],
            "text": [d["text"] for d in docs],
        }
    )
    all_queries = load_queries(folder / "queries.jsonl")
    doc_ids = {d["_id"] for d in docs}
    splits = {}
    for split in task.metadata.eval_splits:
        qrels_file = folder / "qrels" / f"{SPLIT_NAMES.get(split, split)}.tsv"
        if not qrels_file.is_file():
            raise LocalDataMissing(f"{task.metadata.name}: split {split!r} needs {qrels_file}")
        judged, qrels = match_judgements(load_qrels(qrels_file), all_queries, doc_ids, qrels_file)
        ids = list(judged)
        queries = Dataset.from_dict({"id": ids, "text": [judged[q] for q in ids]})
        splits[split] = RetrievalSplitData(
            corpus=corpus, queries=queries, relevant_docs=qrels, top_ranked=None
        )
    return {"default": splits}


def _pick(header: list[str], names: tuple[str, ...], path: Path, what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise LocalDataMissing(f"{path}: no {what} column (expected one of {', '.join(names)}; header: {header})")


def _sts(task: Any, folder: Path) -> dict:
    from datasets import Dataset, DatasetDict

    files = sorted(folder.glob("*.tsv"))
    if not files:
        raise LocalDataMissing(f"{task.metadata.name}: no .tsv file in {folder}")
    path = files[0]
    rows: dict[str, dict[str, list]] = {}
    lines = [line.rstrip("\r\n") for _, line in iter_text_lines(path)]  # bad UTF-8: file and line
    if not lines:
        raise ValueError(f"{path}: empty file; expected a header line and sentence pairs")
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader)
    split_col = _pick(header, ("split",), path, "split")
    first, second = (
        _pick(header, _FIRST, path, "first sentence"),
        _pick(header, _SECOND, path, "second sentence"),
    )
    score_col = _pick(header, _SCORE, path, "score")
    needed = max(split_col, first, second, score_col) + 1
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < needed:
            raise ValueError(
                f"{path}:{line_no}: expected at least {needed} tab-separated columns (header: "
                f"{header}), got {len(row)}"
            )
        try:
            score = float(row[score_col])
        except ValueError as exc:
            raise ValueError(f"{path}:{line_no}: score {row[score_col]!r} is not a number") from exc
        if not math.isfinite(score):
            raise ValueError(f"{path}:{line_no}: score {row[score_col]!r} is not a finite number")
        split = rows.setdefault(row[split_col], {"sentence1": [], "sentence2": [], "score": []})
        split["sentence1"].append(row[first])
        split["sentence2"].append(row[second])
        split["score"].append(score)
    out = {}
    for split in task.metadata.eval_splits:
        local = SPLIT_NAMES.get(split, split)
        if local not in rows:
            raise LocalDataMissing(
                f"{task.metadata.name}: {path} has no {local!r} rows (splits: {', '.join(rows)})"
            )
        out[split] = Dataset.from_dict(rows[local])
    return DatasetDict(out)


def load_local(task: Any, root: str | Path) -> Any:
    """Fill ``task.dataset`` from ``root`` and mark it loaded; the task's metadata stays official."""
    task_type = task.metadata.type
    folder = task_folder(task.metadata.name, task_type, Path(root))
    if task_type == "Retrieval":
        task.dataset = _retrieval(task, folder)
    elif task_type == "STS":
        task.dataset = _sts(task, folder)
    else:
        raise LocalDataMissing(f"{task.metadata.name}: local loading of {task_type} tasks is not supported")
    task.data_loaded = True
    logger.info("%s: loaded from %s", task.metadata.name, folder)
    return task
