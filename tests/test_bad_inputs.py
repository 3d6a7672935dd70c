"""Bad data and bad settings are refused before any work, naming the file, line, key, flag or value.

:data:`~tests.bad_input_cases.ERRORS` go through the command line in-process: each must exit 2 with one
``winnow CMD: error: ...`` line holding the expected fragments, leave its output absent (or the
previous file intact), and, unless it is marked ``loads_model``, stop before any model or index is
loaded. :data:`WARNINGS` are the tolerated defects (``docs/reliability.md``): the command succeeds and
logs one counted warning. :data:`API_ERRORS` are the same rules called from Python.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from retrieval.cli import main
from tests.bad_input_cases import ERRORS, HEADER, Case, Ctx, corpus_with, qrels_with
from tests.conftest import QRELS, write_beir


@pytest.fixture(scope="module")
def tiny_index(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from retrieval.encoders import load_encoder
    from retrieval.retriever import Retriever

    corpus = write_beir(tmp_path_factory.mktemp("index-data") / "tiny")
    directory = tmp_path_factory.mktemp("index") / "ix"
    Retriever(load_encoder(tiny_model_dir, device="cpu"), index="faiss:Flat").build(corpus).save(directory)
    return directory


@pytest.fixture
def ctx(tmp_path: Path, tiny_model_dir: Path, tiny_index: Path) -> Ctx:
    return Ctx(tmp_path, tiny_model_dir, tiny_index)


def _forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any model, index or training start fail the test (not the command)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a model, index or training run was started before the input was checked")

    import sentence_transformers

    import retrieval.cli.eval_cmd
    import retrieval.cli.search_cmd
    import trainers.dense
    import trainers.sparse

    monkeypatch.setattr(sentence_transformers.SentenceTransformer, "__init__", forbidden)
    monkeypatch.setattr(retrieval.cli.eval_cmd, "load_retriever", forbidden)
    monkeypatch.setattr(retrieval.cli.search_cmd, "load_retriever", forbidden)
    monkeypatch.setattr(trainers.dense, "train_dense", forbidden)
    monkeypatch.setattr(trainers.sparse, "train_sparse", forbidden)
    monkeypatch.setattr("eval.mteb_run.load_mteb_model", forbidden)


def error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"winnow {command}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_bad_input_is_refused(case: Case, ctx: Ctx, capsys, monkeypatch) -> None:
    argv = case.argv(ctx)
    if case.previous is not None:
        ctx.out.write_text(case.previous)
    if not case.loads_model:
        _forbid_loading(monkeypatch)
    code = main(["-q", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    line = error_line(err, argv[0])
    for fragment in case.expect:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    if case.previous is None:
        assert not ctx.out.exists(), f"{ctx.out} was written"
    else:
        assert ctx.out.read_text() == case.previous
    assert not [p.name for p in ctx.tmp.iterdir() if p.name.startswith(".out")], "a temporary file was left"


@dataclass(frozen=True)
class Warned:
    """A tolerated defect: ``eval beir`` succeeds, logs ``expect`` once, and scores ``n_queries``."""

    id: str
    files: Callable[[], dict]
    expect: tuple[str, ...]
    n_queries: int
    n_documents: int = 6


EMPTY_DOCS = (
    corpus_with(json.dumps({"_id": "e1", "title": "", "text": ""}), line=7)[:-1]
    + "\n"
    + json.dumps({"_id": "e2", "title": " ", "text": "\t"})
)
WARNINGS: list[Warned] = [
    Warned(
        "empty-documents",
        lambda: {"corpus": EMPTY_DOCS},
        ("corpus.jsonl: 2 documents with an empty title and text", "'e1' (line 7), 'e2' (line 8)"),
        n_queries=3,
        n_documents=8,
    ),
    Warned(
        "qrels-absent-documents",  # as in BEIR's ArguAna: the query keeps its other judgements
        lambda: {"qrels": qrels_with("q3\tgone\t1")},
        ("test.tsv: 1 judgements name documents not in corpus.jsonl", "'q3'->'gone'"),
        n_queries=3,
    ),
    Warned(
        "qrels-every-relevant-document-absent",
        lambda: {"qrels": HEADER + "q1\tgone\t1\nq1\td2\t0\nq2\td4\t1\nq3\td3\t1\n"},
        ("test.tsv: 1 queries whose every relevant document is absent from the corpus: not scored", "'q1'"),
        n_queries=2,
    ),
    Warned(
        "qrels-absent-queries",
        lambda: {"qrels": qrels_with("q8\td1\t1", "q9\td2\t1")},
        ("test.tsv: 2 judged queries not in queries.jsonl: not scored", "'q8', 'q9'"),
        n_queries=3,
    ),
]


@pytest.mark.parametrize("case", WARNINGS, ids=[w.id for w in WARNINGS])
def test_tolerated_defect_is_a_counted_warning(case: Warned, ctx: Ctx, caplog, capsys) -> None:
    with caplog.at_level(logging.WARNING, logger="retrieval"):
        assert main(ctx.eval(**case.files())) == 0, capsys.readouterr().err
    lines = [r.getMessage() for r in caplog.records if case.expect[0] in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert all(fragment in lines[0] for fragment in case.expect), lines[0]
    result = json.loads(ctx.out.read_text())
    assert result["n_queries"] == case.n_queries and result["n_documents"] == case.n_documents
    assert len(result["per_query"]["ndcg@10"]) == case.n_queries


def _from_beir_absent_positive(tmp: Path):
    from trainers.data import from_beir

    root = write_beir(tmp / "b", qrels=[*QRELS, ("q1", "gone", 2)], split="train")
    return from_beir(root, "train", max_positives=4)


def test_training_pairs_skip_absent_positives(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="retrieval"):
        data = _from_beir_absent_positive(tmp_path)
    assert data.positives["q1"] == ["d1"]
    assert any("1 judgements name documents not in corpus.jsonl" in r.getMessage() for r in caplog.records)


def _api_cases() -> list[tuple[str, Callable[[Path], object], type[Exception], str]]:
    from eval.beir import evaluate
    from eval.metrics import per_query_scores
    from retrieval.corpus import iter_corpus, load_qrels
    from retrieval.encoders import load_encoder
    from trainers.typed_config import from_dict

    def qrels_file(tmp: Path) -> Path:
        path = tmp / "q.tsv"
        path.write_text(HEADER + "q1\td1\t0.5\n")
        return path

    from trainers.config import TrainingConfig

    def failed_mteb_task(tmp: Path) -> None:
        from eval.mteb_run import MtebRun, TaskScore
        from retrieval.cli.eval_cmd import check_mteb_runs

        failed = TaskScore("SciFact", "Retrieval", "ndcg_at_10", None, "evaluation failed (see the log)")
        scored = TaskScore("SICK-R", "STS", "cosine_spearman", 0.8)
        check_mteb_runs([MtebRun("m", "r", scores=[failed, scored], requested=2)])

    return [
        (
            "mteb-task-failed",
            failed_mteb_task,
            ValueError,
            "m scored 1 of 2 tasks: SciFact (evaluation failed (see the log))",
        ),
        (
            "metrics-fractional-relevance",
            lambda t: per_query_scores({"q": {"d": 0.9}}, {"q": {"d": 1.0}}),
            ValueError,
            "relevance 0.9 of query 'q', document 'd' is not an integer",
        ),
        (
            "metrics-nan-relevance",
            lambda t: per_query_scores({"q": {"d": math.nan}}, {}),
            ValueError,
            "relevance nan",
        ),
        ("evaluate-top-k-0", lambda t: evaluate(None, write_beir(t / "b"), top_k=0), ValueError, "top_k=0"),  # type: ignore[arg-type]
        (
            "load-qrels-fraction",
            lambda t: load_qrels(qrels_file(t)),
            ValueError,
            "q.tsv:2: relevance '0.5' is not an integer",
        ),
        (
            "iter-corpus-null-id",
            lambda t: list(iter_corpus([{"_id": None, "text": "a"}])),
            ValueError,
            "corpus item 0: document '_id' is null",
        ),
        (
            "config-nan",
            lambda t: from_dict(TrainingConfig, {"epochs": float("nan")}, "r.yaml", "training"),
            ValueError,
            "r.yaml: training.epochs=nan must be a finite number",
        ),
        (
            "load-encoder-hub-id-offline",
            lambda t: load_encoder("org/typo"),
            FileNotFoundError,
            "model 'org/typo' not found locally and the hub is unreachable (HF_HUB_OFFLINE=1)",
        ),
    ]


API_ERRORS = _api_cases()


@pytest.mark.parametrize(("id", "call", "error", "message"), API_ERRORS, ids=[c[0] for c in API_ERRORS])
def test_api_refuses_bad_input(id: str, call, error: type[Exception], message: str, tmp_path: Path) -> None:
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert message in str(raised.value)


def test_every_numeric_config_field_has_a_range() -> None:
    from trainers.config import TrainConfig
    from trainers.config_checks import RANGES, numeric_fields

    fields = numeric_fields(TrainConfig)
    assert "training.learning_rate" in fields and "teachers[].weight" in fields
    assert sorted(fields) == sorted(RANGES)


def test_suite_size() -> None:
    """The suite feeds at least 40 distinct bad inputs."""
    ids = [c.id for c in ERRORS] + [w.id for w in WARNINGS] + [c[0] for c in API_ERRORS]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
