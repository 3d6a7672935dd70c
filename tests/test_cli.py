"""The winnow CLI end to end on a tiny model and a tiny BEIR folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from retrieval.cli import main


def test_eval_beir_writes_the_documented_json(tiny_model_dir, tiny_beir, tmp_path, capsys) -> None:
    out = tmp_path / "res.json"
    code = main(
        ["-q", "eval", "beir", "--model", str(tiny_model_dir), "--data", str(tiny_beir), "--output", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert {"dataset", "split", "model", "metrics", "seconds"} <= set(result)
    assert result["dataset"] == "tiny" and result["split"] == "test"
    assert set(result["metrics"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert result["metrics"]["recall@100"] == 1.0  # 6 documents: everything is retrieved
    assert 0 < result["metrics"]["ndcg@10"] <= 1
    per_query = result["per_query"]["ndcg@10"]  # what `eval compare` pairs
    assert len(per_query) == result["n_queries"]
    assert sum(per_query.values()) / len(per_query) == pytest.approx(result["metrics"]["ndcg@10"])
    assert "ndcg@10" in capsys.readouterr().out


def test_data_name_resolves_under_winnow_data(tiny_model_dir, tmp_path, monkeypatch, capsys) -> None:
    from tests.conftest import write_beir

    write_beir(tmp_path / "root" / "beir" / "mini")
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path / "root"))
    assert main(["-q", "eval", "beir", "--model", str(tiny_model_dir), "--data", "mini"]) == 0
    assert "mini (test, 3 queries)" in capsys.readouterr().out
    assert main(["-q", "eval", "beir", "--model", str(tiny_model_dir), "--data", "nope"]) == 2
    err = capsys.readouterr().err
    assert "data set 'nope' not found: neither a folder nor" in err and "(data root from $WINNOW_DATA)" in err


def test_index_then_search(tiny_model_dir, tiny_beir, tmp_path, capsys) -> None:
    index_dir = tmp_path / "ix"
    assert (
        main(
            [
                "-q",
                "index",
                "--model",
                str(tiny_model_dir),
                "--corpus",
                str(tiny_beir),
                "--output",
                str(index_dir),
                "--index",
                "faiss:HNSW8",
                "--search-param",
                "efSearch=16",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "search",
                "--index-dir",
                str(index_dir),
                "-k",
                "2",
                "--format",
                "jsonl",
                "--query",
                "the cat sat on the rock in the sun",
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert line["ids"][0] == "d1" and len(line["ids"]) == 2
    assert (
        main(["-q", "search", "--index-dir", str(index_dir), "--queries", str(tiny_beir / "queries.jsonl")])
        == 0
    )
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 3 * 6 and rows[0].split()[:2] == ["q1", "Q0"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--index-dir", "/no/such/dir", "--query", "x"], "meta.json not found"),
        (["eval", "beir", "--model", "./missing-model", "--data", "."], "not a BEIR folder"),
        (
            ["index", "--model", "m", "--corpus", "c", "--output", "o", "--search-param", "nprobe"],
            "NAME=VALUE",
        ),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "retrieval", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("models", "index", "search", "eval"):
        assert command in out.stdout


def test_eval_table_side_by_side(tmp_path, capsys) -> None:
    for name, value in (("base", 0.5), ("trained", 0.61234)):
        (tmp_path / f"{name}.json").write_text(
            json.dumps(
                {"dataset": "d", "split": "test", "model": name, "metrics": {"ndcg@10": value}, "seconds": 1}
            )
        )
    assert main(["eval", "table", str(tmp_path / "base.json"), str(tmp_path / "trained.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| model | dataset | split | ndcg@10 |" and out[3] == "| trained | d | test | 0.6123 |"
    (tmp_path / "bad.json").write_text("{}")
    assert main(["eval", "table", str(tmp_path / "bad.json")]) == 2
    assert "no 'metrics' object" in capsys.readouterr().err


def test_skip_queries_scores_only_the_held_out_queries(tiny_model_dir, tiny_beir, tmp_path, capsys) -> None:
    """`--skip-queries N` scores the queries training with data.max_queries=N never saw, averaged over them
    alone (averaging over every judged query would count the skipped ones as zeros)."""
    from eval.beir import held_out_queries
    from retrieval.corpus import open_beir
    from trainers.data import from_beir

    data = open_beir(tiny_beir)
    qrels, queries = data.qrels("test"), data.queries("test")
    trained = set(from_beir(tiny_beir, "test", max_positives=4, max_queries=1).positives)
    held_out = held_out_queries(qrels, queries, 1)
    assert held_out and trained.isdisjoint(held_out)
    assert trained | set(held_out) == {q for q in qrels if any(r > 0 for r in qrels[q].values())}
    results = {}
    for skip in (0, 1):
        out = tmp_path / f"skip{skip}.json"
        args = ["-q", "eval", "beir", "--model", str(tiny_model_dir), "--data", str(tiny_beir)]
        assert main([*args, "--skip-queries", str(skip), "--output", str(out)]) == 0
        results[skip] = json.loads(out.read_text())
    assert results[1]["n_queries"] == len(held_out) == results[0]["n_queries"] - 1
    assert results[1]["metrics"]["recall@100"] == 1.0  # not diluted by the skipped query
    with pytest.raises(ValueError, match="leaves none"):
        held_out_queries(qrels, queries, 99)


def test_output_is_the_flag_and_out_a_deprecated_alias(tmp_path, capsys, caplog) -> None:
    from retrieval.cli import build_parser

    for subcommand in ("onnx", "opensearch"):
        sub_args = ["--corpus", "c"] if subcommand == "opensearch" else []
        for flag in ("--output", "--out"):
            args = build_parser().parse_args(["export", subcommand, "--model", "m", *sub_args, flag, "o"])
            assert args.output == "o"
            assert getattr(args, "deprecated_flags", None) == (
                [("--out", "--output")] if flag == "--out" else None
            )
    with pytest.raises(SystemExit):  # the alias is hidden from --help
        build_parser().parse_args(["export", "onnx", "--help"])
    out = capsys.readouterr().out
    assert "--output" in out and "--out " not in out and "--out," not in out
    missing = str(tmp_path / "missing")
    with caplog.at_level("WARNING", logger="winnow"):
        assert main(["export", "onnx", "--model", missing, "--out", str(tmp_path / "x")]) == 2
    assert "--out is deprecated and will be removed; use --output" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="winnow"):
        assert main(["export", "onnx", "--model", missing, "--output", str(tmp_path / "x")]) == 2
    assert "deprecated" not in caplog.text
    assert "winnow export: error:" in capsys.readouterr().err
    args = build_parser().parse_args(["eval", "mteb", "--model", "m", "--tasks", "T", "--task-data", "d"])
    assert args.data_dir == "d" and args.deprecated_flags == [("--task-data", "--data-dir")]


def test_quiet_prints_the_result_and_no_progress_bar(tiny_model_dir, tmp_path) -> None:
    from tests.conftest import DOCS, write_beir

    corpus = write_beir(tmp_path / "three", docs=DOCS[:3])
    runs = {}
    for quiet in (["-q"], []):
        argv = ["index", "--model", str(tiny_model_dir), "--corpus", str(corpus), "--batch-size", "1"]
        runs[bool(quiet)] = subprocess.run(
            [sys.executable, "-m", "retrieval", *quiet, *argv, "--output", str(tmp_path / f"ix{len(quiet)}")],
            capture_output=True,
            text=True,
            check=True,
        )
    assert "it/s" in runs[False].stderr or "doc/s" in runs[False].stderr  # what -q must remove
    quiet = runs[True]
    assert quiet.stdout.startswith("indexed 3 documents with ")
    assert "it/s" not in quiet.stderr and "%|" not in quiet.stderr and "doc/s" not in quiet.stderr
    assert quiet.stderr.strip() == ""


def _tiny_index(tiny_model_dir, corpus, index_dir) -> None:
    argv = [
        "-q",
        "index",
        "--model",
        str(tiny_model_dir),
        "--corpus",
        str(corpus),
        "--output",
        str(index_dir),
    ]
    assert main(argv) == 0


def test_eval_beir_on_a_saved_index_equals_eval_with_the_model(tiny_model_dir, tiny_beir, tmp_path) -> None:
    index_dir = tmp_path / "ix"
    _tiny_index(tiny_model_dir, tiny_beir, index_dir)
    results = {}
    for source in (["--model", str(tiny_model_dir)], ["--index-dir", str(index_dir)]):
        out = tmp_path / f"{source[0][2:]}.json"
        argv = ["-q", "eval", "beir", *source, "--data", str(tiny_beir), "--split", "test"]
        assert main([*argv, "--output", str(out)]) == 0
        results[source[0]] = json.loads(out.read_text())
    by_model, by_index = results["--model"], results["--index-dir"]
    assert by_index["metrics"] == pytest.approx(by_model["metrics"], abs=1e-6)
    for metric, per_query in by_model["per_query"].items():
        assert by_index["per_query"][metric] == pytest.approx(per_query, abs=1e-6)
    assert by_index["n_documents"] == 6 and by_index["index_dir"] == str(index_dir)
    assert by_index["model"] == str(tiny_model_dir.resolve())


def test_model_and_index_dir_are_mutually_exclusive(tiny_beir, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "beir", "--model", "m", "--index-dir", "d", "--data", str(tiny_beir)])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "beir", "--data", str(tiny_beir)])
    assert "one of the arguments --model --index-dir --member --hybrid is required" in capsys.readouterr().err


@pytest.mark.lucene
def test_bm25_index_folder_is_evaluated_and_searched(tiny_beir, tmp_path, capsys) -> None:
    pytest.importorskip("pyserini")
    index_dir = tmp_path / "bm25"
    assert (
        main(["-q", "index", "--model", "bm25", "--corpus", str(tiny_beir), "--output", str(index_dir)]) == 0
    )
    assert "indexed 6 documents with bm25 (lucene:bm25" in capsys.readouterr().out
    results = {}
    for source in (["--model", "bm25"], ["--index-dir", str(index_dir)]):
        out = tmp_path / f"{source[0][2:]}.json"
        assert main(["-q", "eval", "beir", *source, "--data", str(tiny_beir), "--output", str(out)]) == 0
        results[source[0]] = json.loads(out.read_text())
    assert results["--index-dir"]["metrics"] == pytest.approx(results["--model"]["metrics"], abs=1e-6)
    assert results["--index-dir"]["model"] == "bm25"
    capsys.readouterr()
    argv = ["-q", "search", "--index-dir", str(index_dir), "-k", "10", "--format", "jsonl"]
    assert main([*argv, "--query", "salt and fat increase heart disease risk"]) == 0
    line = json.loads(capsys.readouterr().out)  # fewer hits than k: no padded -Infinity scores
    assert line["ids"][0] == "d4" and len(line["scores"]) == len(line["ids"]) < 6


def test_eval_table_chart_writes_a_png(tmp_path, capsys) -> None:
    from eval.report import bar_chart, beir_chart

    paths = []
    for model, dataset, value in (("bm25", "scifact", 0.67), ("e5", "scifact", 0.72), ("bm25", "fiqa", 0.24)):
        path = tmp_path / f"{model}-{dataset}.json"
        result = {"dataset": dataset, "split": "test", "model": model, "metrics": {"ndcg@10": value}}
        path.write_text(json.dumps(result))
        paths.append(str(path))
    chart = tmp_path / "charts" / "out.png"
    assert main(["eval", "table", *paths, "--chart", str(chart)]) == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in chart.parent.iterdir()] == ["out.png"]  # no temporary left
    assert main(["eval", "table", *paths, "--chart", str(chart), "--metric", "recall@100"]) == 2
    assert "no result has metric 'recall@100'; they have ndcg@10" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least one `winnow eval beir` result"):
        beir_chart([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="at least one group"):
        bar_chart([], {}, tmp_path / "empty.png", "ndcg@10")
    assert not (tmp_path / "empty.png").exists()
