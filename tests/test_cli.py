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
    assert "neither a folder nor a name under $WINNOW_DATA/beir" in capsys.readouterr().err


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
