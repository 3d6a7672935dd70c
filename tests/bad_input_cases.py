"""The table of bad inputs and settings that ``tests/test_bad_inputs.py`` feeds through the CLI.

Each :class:`Case` builds its input in a fresh folder (:class:`Ctx`) and names the fragments its
one-line error must contain. Helpers per family (:func:`corpus`, :func:`queries`, :func:`qrels`,
:func:`eval_flags`, :func:`setting`) keep one case to one entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import DOCS, QRELS, QUERIES, write_beir

HEADER = "query-id\tcorpus-id\tscore\n"
LATIN1_DOC = '{"_id": "x", "title": "", "text": "caf\xe9"}'
LATIN1_QUERY = '{"_id": "qx", "text": "caf\xe9"}'


def corpus_with(bad: str, line: int = 3) -> str:
    """The tiny corpus with ``bad`` as line ``line``."""
    lines = [json.dumps({"_id": d, "title": t, "text": x}) for d, t, x in DOCS]
    lines.insert(line - 1, bad)
    return "\n".join(lines) + "\n"


def queries_with(bad: str, line: int = 2) -> str:
    """The tiny queries with ``bad`` as line ``line``."""
    lines = [json.dumps({"_id": q, "text": t}) for q, t in QUERIES.items()]
    lines.insert(line - 1, bad)
    return "\n".join(lines) + "\n"


def qrels_with(*rows: str, header: bool = True) -> str:
    """The tiny qrels with ``rows`` first (from line 2 with the header)."""
    good = [f"{q}\t{d}\t{r}" for q, d, r in QRELS]
    return (HEADER if header else "") + "\n".join([*rows, *good]) + "\n"


@dataclass
class Ctx:
    """One case's folder, with the tiny model and a tiny saved index."""

    tmp: Path
    model: Path
    index: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def beir(self, corpus: str | bytes | None = None, queries=None, qrels=None) -> Path:
        root = write_beir(self.tmp / "data")
        for name, content in (
            ("corpus.jsonl", corpus),
            ("queries.jsonl", queries),
            ("qrels/test.tsv", qrels),
        ):
            if content is not None:
                (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        return root

    def eval(self, *flags: str, model: str | None = None, **files) -> list[str]:
        data = str(self.beir(**files))
        return [
            "eval",
            "beir",
            "--model",
            model or str(self.model),
            "--data",
            data,
            "--output",
            str(self.out),
            *flags,
        ]

    def index_cmd(self, *flags: str, **files) -> list[str]:
        corpus = str(self.beir(**files))
        return ["index", "--model", str(self.model), "--corpus", corpus, "--output", str(self.out), *flags]

    def search(self, *flags: str) -> list[str]:
        return ["search", "--index-dir", str(self.index), "--output", str(self.out), *flags]

    def queries_file(self, text: str | bytes) -> str:
        path = self.tmp / "q.jsonl"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def mteb_args(self) -> list[str]:
        """A data folder without any task, and the output."""
        return ["--data-dir", str(self.tmp), "--output", str(self.out)]

    def train(self, *sets: str) -> list[str]:
        recipe = self.tmp / "recipe.yaml"
        recipe.write_text(
            f"model: {self.model}\nguide: null\nloss: {{name: mnrl}}\nmining: {{model: bm25}}\n"
            f"data: {{dataset: {self.beir()}, split: test}}\n"
        )
        return ["train", str(recipe), "--output", str(self.out), *[f"--set={s}" for s in sets]]


@dataclass(frozen=True)
class Case:
    """A bad input: ``argv(ctx)`` must exit 2 with every fragment of ``expect`` in its error line.

    Attributes:
        previous: content of the output file before the run, which must survive it (``None``: the
            output must not exist afterwards).
        loads_model: the error may come after the model loads (otherwise loading fails the test).
    """

    id: str
    argv: Callable[[Ctx], list[str]]
    expect: tuple[str, ...]
    previous: str | None = None
    loads_model: bool = False


def case(id: str, argv: Callable[[Ctx], list[str]], *expect: str, **kw) -> Case:
    return Case(id, argv, expect, **kw)


def corpus(id: str, line: str, *expect: str, encoding: str = "utf-8") -> Case:
    """``eval beir`` on a corpus whose line 3 is ``line`` (written in ``encoding``)."""
    return case(id, lambda c: c.eval(corpus=corpus_with(line).encode(encoding)), "corpus.jsonl:3:", *expect)


def queries(id: str, line: str, *expect: str, encoding: str = "utf-8") -> Case:
    """``eval beir`` with ``queries.jsonl`` whose line 2 is ``line``."""
    return case(
        id, lambda c: c.eval(queries=queries_with(line).encode(encoding)), "queries.jsonl:2:", *expect
    )


def qrels(id: str, text: str | bytes, *expect: str) -> Case:
    """``eval beir`` with ``qrels/test.tsv`` holding ``text``."""
    return case(id, lambda c: c.eval(qrels=text), *expect)


def eval_flags(id: str, flags: tuple[str, ...], *expect: str, **kw) -> Case:
    return case(id, lambda c: c.eval(*flags), *expect, **kw)


def setting(id: str, sets: str | tuple[str, ...], *expect: str) -> Case:
    """``winnow train`` on a valid tiny recipe with ``--set`` overrides."""
    sets = (sets,) if isinstance(sets, str) else sets
    return case(id, lambda c: c.train(*sets), "recipe.yaml: ", *expect)


ERRORS: list[Case] = [
    # corpus.jsonl, through `eval beir`: checked before the model loads
    corpus("corpus-invalid-json", '{"_id": "x", "text": ', "invalid JSON"),
    corpus("corpus-not-an-object", "[1, 2]", "expected a JSON object, got list"),
    corpus("corpus-null-id", '{"_id": null, "text": "a"}', "document '_id' is null; expected a non-empty"),
    corpus("corpus-missing-id", '{"text": "a"}', "document has no '_id' field"),
    corpus("corpus-blank-id", '{"_id": " ", "text": "a"}', "'_id' is \" \""),
    corpus("corpus-float-id", '{"_id": 1.5, "text": "a"}', "'_id' is 1.5"),
    corpus("corpus-list-id", '{"_id": ["a"], "text": "a"}', "'_id' is [\"a\"]"),
    corpus("corpus-duplicate-id", '{"_id": "d1", "text": "again"}', "duplicate document id 'd1'"),
    corpus(
        "corpus-text-not-string", '{"_id": "x", "text": 5}', "'text' of document 'x' must be a string, got 5"
    ),
    corpus("corpus-title-not-string", '{"_id": "x", "title": [], "text": "a"}', "'title' of document 'x'"),
    corpus("corpus-no-text-no-title", '{"_id": "x"}', "document 'x' has neither 'text' nor 'title'"),
    corpus("corpus-not-utf8", LATIN1_DOC, "not valid UTF-8 (byte 0xe9", encoding="latin1"),
    # queries.jsonl
    queries(
        "query-empty-text", '{"_id": "qx", "text": ""}', "query 'qx' has text \"\"; expected a non-empty"
    ),
    queries("query-blank-text", '{"_id": "qx", "text": " \\t "}', "query 'qx' has text \" \\t \""),
    queries("query-text-not-string", '{"_id": "qx", "text": 3}', "query 'qx' has text 3"),
    queries("query-null-id", '{"_id": null, "text": "a"}', "query '_id' is null"),
    queries("query-missing-id", '{"text": "a"}', "query has no '_id' field"),
    queries(
        "query-duplicate-id", '{"_id": "q1", "text": "other"}', "duplicate query id 'q1' (first on line 1)"
    ),
    queries("query-invalid-json", '{"_id": "qx",', "invalid JSON"),
    queries("query-not-utf8", LATIN1_QUERY, "not valid UTF-8", encoding="latin1"),
    # qrels/test.tsv
    qrels(
        "qrels-fractional-relevance",
        qrels_with("q1\td2\t0.9"),
        "test.tsv:2: relevance '0.9' is not an integer",
    ),
    qrels("qrels-nan-relevance", qrels_with("q1\td2\tnan"), "test.tsv:2: relevance 'nan' is not an integer"),
    qrels("qrels-word-relevance", qrels_with("q1\td2\tyes"), "test.tsv:2: relevance 'yes' is not a number"),
    qrels("qrels-no-header", qrels_with(header=False), "test.tsv:1: expected the header line", "'q1', 'd1'"),
    qrels("qrels-two-columns", qrels_with("q1\td2"), "test.tsv:2: expected 3 tab-separated columns, got 2"),
    qrels(
        "qrels-trec-four-columns",
        qrels_with("q1\t0\td2\t1"),
        "test.tsv:2: expected 3 tab-separated columns, got 4",
    ),
    qrels(
        "qrels-conflicting-grades",
        qrels_with("q1\td1\t2"),
        "test.tsv:3: query 'q1', document 'd1' judged 1 here",
    ),
    qrels("qrels-empty-id", qrels_with("\td2\t1"), "test.tsv:2: empty query id"),
    qrels("qrels-not-utf8", (HEADER + "q\xe9\td1\t1\n").encode("latin1"), "test.tsv:2: not valid UTF-8"),
    qrels(
        "qrels-of-another-data-set",
        HEADER + "x1\td1\t1\nx2\td2\t1\n",
        "none of its 2 judged queries",
        "2 not in",
    ),
    # eval beir flags
    eval_flags(
        "split-unknown", ("--split", "dev"), "dev.tsv not found: split 'dev' does not exist", ": test"
    ),
    eval_flags("eval-top-k-0", ("--top-k", "0"), "-k/--top-k 0: expected an integer >= 1"),
    eval_flags("eval-top-k-negative", ("-k", "-1"), "-k/--top-k -1: expected an integer >= 1"),
    eval_flags("eval-batch-size-0", ("--batch-size", "0"), "--batch-size 0: expected an integer >= 1"),
    eval_flags("eval-max-length-0", ("--max-length", "0"), "--max-length 0: expected an integer >= 1"),
    eval_flags(
        "eval-skip-queries-negative", ("--skip-queries", "-2"), "--skip-queries -2: expected an integer >= 0"
    ),
    eval_flags("eval-metric-cut-0", ("--metric", "ndcg@0"), "metric 'ndcg@0': K must be at least 1"),
    eval_flags("eval-metric-unknown", ("--metric", "f1@10"), "unknown metric 'f1@10'"),
    eval_flags(
        "eval-metric-beyond-top-k", ("--metric", "recall@100", "-k", "10"), "cuts at 100 but only top_k=10"
    ),
    eval_flags("eval-result-kept", ("-k", "0"), "-k/--top-k 0", previous='{"metrics": {"ndcg@10": 0.5}}'),
    case(
        "eval-hub-id-offline",
        lambda c: c.eval(model="org/typo"),
        "model 'org/typo' not found locally and the hub is unreachable (HF_HUB_OFFLINE=1)",
    ),
    # index: the whole corpus is checked before the model loads; nothing may be written
    case(
        "index-batch-size-0",
        lambda c: c.index_cmd("--batch-size", "0"),
        "--batch-size 0: expected an integer",
    ),
    case(
        "index-null-id",
        lambda c: c.index_cmd(corpus=corpus_with('{"_id": null, "text": "a"}')),
        "corpus.jsonl:3: document '_id' is null",
    ),
    case(
        "index-duplicate-id",
        lambda c: c.index_cmd(corpus=corpus_with('{"_id": "d2", "text": "a"}', line=6)),
        "corpus.jsonl:6: duplicate document id 'd2'",
    ),
    case(
        "index-not-utf8",
        lambda c: c.index_cmd(corpus=corpus_with(LATIN1_DOC).encode("latin1")),
        "corpus.jsonl:3: not valid UTF-8",
    ),
    # search: queries are checked before the index loads
    case(
        "search-top-k-0",
        lambda c: c.search("-k", "0", "--query", "cat"),
        "-k/--top-k 0: expected an integer >= 1",
    ),
    case(
        "search-blank-query", lambda c: c.search("--query", "cat", "--query", " "), "--query number 2 is ' '"
    ),
    case(
        "search-queries-empty-text",
        lambda c: c.search("--queries", c.queries_file('{"_id": "a", "text": ""}\n')),
        "q.jsonl:1: query 'a' has text \"\"",
    ),
    case(
        "search-queries-duplicate",
        lambda c: c.search(
            "--queries", c.queries_file('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
        ),
        "q.jsonl:2: duplicate query id 'a'",
    ),
    case(
        "search-queries-no-query", lambda c: c.search("--queries", c.queries_file("\n")), "q.jsonl: no query"
    ),
    case(
        "search-run-kept",
        lambda c: c.search("--queries", c.queries_file(b'{"_id": "a", "text": "\xff"}\n')),
        "q.jsonl:1: not valid UTF-8",
        previous="q 0 d1 1 1.0 old\n",
    ),
    # training recipe settings: refused when the recipe is read, before any data or model
    setting(
        "mining-num-negatives-negative",
        "mining.num_negatives=-3",
        "mining.num_negatives must be >= 1; got -3",
    ),
    setting("training-epochs-0", "training.epochs=0", "training.epochs must be > 0; got 0.0"),
    setting(
        "training-max-steps-negative", "training.max_steps=-5", "training.max_steps must be -1 or >= 1", "-5"
    ),
    setting("training-max-steps-0", "training.max_steps=0", "training.max_steps must be -1 or >= 1", "got 0"),
    setting("loss-temperature-0", "loss.temperature=0", "loss.temperature must be > 0; got 0.0"),
    setting(
        "learning-rate-nan", "training.learning_rate=.nan", "training.learning_rate=nan must be a finite"
    ),
    setting(
        "learning-rate-inf", "training.learning_rate=.inf", "training.learning_rate=inf must be a finite"
    ),
    setting(
        "learning-rate-negative", "training.learning_rate=-1e-5", "learning_rate must be > 0; got -1e-05"
    ),
    setting(
        "warmup-ratio-above-1", "training.warmup_ratio=1.5", "warmup_ratio must be >= 0 and <= 1; got 1.5"
    ),
    setting("batch-size-1", "training.batch_size=1", "training.batch_size must be >= 2 (in-batch", "got 1"),
    setting("seed-negative", "training.seed=-1", "training.seed must be >= 0 and <= 4294967295; got -1"),
    setting("relative-margin-2", "mining.relative_margin=2", "mining.relative_margin must be >= 0 and <= 1"),
    setting(
        "range-max-below-min",
        ("mining.range_min=10", "mining.range_max=5"),
        "range_max must be > mining.range_min",
    ),
    setting("max-positives-0", "data.max_positives=0", "data.max_positives must be >= 1; got 0"),
    setting(
        "teacher-weight-0", "teachers=[{kind: bm25, weight: 0}]", "teachers[0].weight must be > 0; got 0.0"
    ),
    setting("sampler-clusters-1", "sampler.clusters=1", "sampler.clusters must be >= 2; got 1"),
    setting(
        "distill-temperature-negative", "loss.distill_temperature=-1", "loss.distill_temperature must be > 0"
    ),
    setting(
        "int-field-given-float", "mining.num_negatives=2.5", "mining.num_negatives=2.5 must be of type int"
    ),
    # models the recipe names, checked before data preparation
    setting(
        "student-hub-id-offline",
        "model=org/typo",
        "model 'org/typo' not found locally and the hub is unreachable",
    ),
    setting(
        "guide-hub-id-offline", "guide={model: org/typo}", "guide.model: model 'org/typo' not found locally"
    ),
    case(
        "teacher-folder-missing",
        lambda c: c.train(f"teachers=[{{kind: dense, model: {c.tmp / 'nope'}}}]"),
        "teachers[0].model: model directory",
        "nope not found",
    ),
    # eval mteb: no requested task can run
    case(
        "mteb-no-task-runs",
        lambda c: ["eval", "mteb", "--model", str(c.model), "--tasks", "NFCorpus", *c.mteb_args()],
        "none of the 1 requested tasks can run",
        "NFCorpus: no local folder",
    ),
]
