"""The benchmark and experiment packages: shared helpers, module wiring, and one benchmark end to end."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import bench
import experiments
from bench.common import command_line, save_record, timed

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    f"{package.__name__}.{info.name}"
    for package in (bench, experiments)
    for info in pkgutil.iter_modules(package.__path__)
]
LIBRARIES = {"bench.common", "bench.sparse_engines", "bench.sparse_real", "bench.sparse_summary"}  # no main()
RUNNABLE = [name for name in MODULES if name not in LIBRARIES]


def test_command_line_names_the_module_under_python_m(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.util.find_spec("bench.search_speed")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(
        sys, "argv", [str(ROOT / "bench" / "search_speed.py"), "--n", "5", "--json", "a b.json"]
    )
    assert command_line() == "python -m bench.search_speed --n 5 --json 'a b.json'"


def test_command_line_of_a_script_run_by_path(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["tool.py", "-k", "3"])
    assert command_line() == "python tool.py -k 3"


def test_save_record_writes_the_command_then_the_figures(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "record.json"
    save_record(path, rows=[{"qps": 1.5}], device="cpu")
    record = json.loads(path.read_text())
    assert record["command"] == command_line()
    assert record["rows"] == [{"qps": 1.5}]
    assert record["device"] == "cpu"


def test_timed_returns_the_result_and_elapsed_seconds() -> None:
    seconds, result = timed(lambda: sum(range(1000)))
    assert result == 499500
    assert 0 <= seconds < 5


def test_the_packages_hold_the_expected_modules() -> None:
    assert set(RUNNABLE) >= {
        "bench.search_speed",
        "bench.encode_speed",
        "bench.train_speed",
        "bench.sparse_quality",
        "bench.sparse_search",
        "experiments.train_ablation",
        "experiments.teacher_quality",
        "experiments.dev_protocols",
        "experiments.sparse_pruning",
    }


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_module_imports_with_a_main_and_no_path_edits(name: str) -> None:
    module = importlib.import_module(name)
    assert callable(module.main)
    assert "sys.path" not in Path(module.__file__).read_text(encoding="utf-8")


def test_every_experiment_is_listed_in_the_readme() -> None:
    readme = (ROOT / "experiments" / "README.md").read_text(encoding="utf-8")
    for name in RUNNABLE:
        if name.startswith("experiments."):
            assert f"python -m {name}" in readme, name


def test_search_speed_runs_as_a_module_and_writes_its_record(tmp_path: Path) -> None:
    out = tmp_path / "search_speed.json"
    command = [sys.executable, "-m", "bench.search_speed", "--n", "300", "--queries", "5"]
    command += ["--repeats", "1", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "| Flat" in done.stdout
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m bench.search_speed --n 300")
    assert [row["factory"] for row in record["rows"]] == ["Flat", "HNSW32"]
    assert all(row["faiss_qps"] > 0 and row["winnow_qps"] > 0 for row in record["rows"])


def test_encode_speed_times_each_pooling_against_mean(tiny_model_dir, tiny_beir, tmp_path: Path) -> None:
    out = tmp_path / "pooling.json"
    command = [sys.executable, "-m", "bench.encode_speed", "--pooling", "--dense", str(tiny_model_dir)]
    command += ["--data", str(tiny_beir), "--chunk", "3", "--batch-size", "2", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["pooling"] for r in rows] == ["mean", "latent_attention", "multi_layer"]
    assert rows[0]["time_ratio"] == 1.0 and all(r["docs_per_second"] > 0 for r in rows)


@pytest.mark.slow
def test_scale_runs_every_stage_on_a_small_corpus(tmp_path: Path) -> None:
    from retrieval.settings import data_root

    root = data_root(None)
    if not (root / "beir" / "scifact" / "corpus.jsonl").is_file():
        pytest.skip("needs beir/scifact and beir/nfcorpus under the data root")
    out = tmp_path / "scale.json"
    command = [sys.executable, "-m", "bench.scale", "--sizes", "500", "--mining", "500"]
    command += ["--work", str(tmp_path / "work"), "--data-dir", str(root), "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 7 and all(r["peak_rss_mib"] > 0 and r["seconds"] > 0 for r in rows)
    assert (tmp_path / "work" / "index" / "sparse-inverted-500" / "meta.json").is_file()


def test_max_pool_takes_each_terms_largest_weight_over_a_documents_sentences() -> None:
    from scipy import sparse

    from bench.sparse_corpus import max_pool

    sentences = sparse.csr_matrix(np.array([[1.0, 0, 2.0], [3.0, 0, 0], [0, 5.0, 1.0]], np.float32))
    docs = max_pool(sentences, [np.array([0, 1]), np.array([2]), np.array([0, 2, 2])])
    assert docs.toarray().tolist() == [[3.0, 0, 2.0], [0, 5.0, 1.0], [1.0, 5.0, 2.0]]


def test_document_draws_of_a_smaller_collection_are_a_prefix_of_a_larger_ones() -> None:
    from bench.scale import document_sentences

    small = list(document_sentences(100, 5))
    large = list(document_sentences(100, 50))
    assert all((a == b).all() for a, b in zip(small, large[:5], strict=True))
    assert all(3 <= len(p) <= 8 for p in large)


def test_brute_force_top_breaks_ties_towards_the_earlier_document() -> None:
    from scipy import sparse

    from bench.sparse_engines import brute_force_top
    from indexes.inverted import InvertedIndex

    docs = sparse.csr_matrix(np.array([[1.0, 0], [2.0, 0], [1.0, 0], [0, 1.0]], np.float32))
    index = InvertedIndex(2, impact_scale=100, query_scale=100)
    index.add(docs, ["a", "b", "c", "d"])
    queries = sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    assert brute_force_top(index, queries, 3) == [["b", "a", "c"], ["d"]]
    assert index.search(queries, 3).ids[0] == ["b", "a", "c"]
    many = InvertedIndex(2, impact_scale=100, query_scale=100)  # 200 documents tied across the boundary
    many.add(sparse.csr_matrix(np.ones((200, 1), np.float32), shape=(200, 2)), [f"t{i}" for i in range(200)])
    assert brute_force_top(many, queries[:1], 3) == [["t0", "t1", "t2"]] == many.search(queries[:1], 3).ids


def test_peak_rss_sees_memory_a_block_allocates() -> None:
    from bench.sparse_engines import PeakRSS

    with PeakRSS(interval=0.01) as memory:
        block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
        block[::4096] = 2
        import time

        time.sleep(0.1)
    assert memory.mib > 32
    del block


def test_seismic_settings_parse_in_pyseismics_argument_order_and_refuse_bad_specs() -> None:
    from bench.sparse_engines import SeismicBuild, SeismicSearch

    assert SeismicBuild.parse("3500") == SeismicBuild()
    built = SeismicBuild.parse("5000:0.2:0.5:6")
    assert (built.n_postings, built.centroid_fraction, built.summary_energy, built.max_fraction) == (
        5000,
        0.2,
        0.5,
        6.0,
    )
    assert SeismicSearch.parse("20:0.8") == SeismicSearch(20, 0.8, True)
    assert SeismicSearch.parse("64:0.5:unsorted") == SeismicSearch(64, 0.5, False)
    for bad in ("", "3500:x", "1:2:3:4:5"):
        with pytest.raises(ValueError, match="pyseismic build"):
            SeismicBuild.parse(bad)
    for bad in ("20", "20:0.8:sorted", "x:0.8"):
        with pytest.raises(ValueError, match="pyseismic search"):
            SeismicSearch.parse(bad)


def test_recall_with_ties_counts_any_document_tied_with_the_kth_best() -> None:
    from scipy import sparse

    from bench.sparse_engines import ExactTop, brute_force_top, recall_with_ties
    from indexes.inverted import InvertedIndex

    # documents 1, 2 and 3 tie on the second-best score; 0 is best, 4 scores lower, 5 not at all
    docs = sparse.csr_matrix(np.array([[3], [2], [2], [2], [1], [0]], np.float32))
    index = InvertedIndex(1, impact_scale=100, query_scale=100)
    index.add(docs, [str(i) for i in range(6)])
    q = sparse.csr_matrix(np.ones((1, 1), np.float32))
    assert brute_force_top(index, q, 2) == [["0", "1"]]
    exact = ExactTop.of(index, q, k=2)
    assert recall_with_ties(exact, [["0", "3"]]) == 1.0  # another tie order: no miss
    assert recall_with_ties(exact, [["0", "4"]]) == 0.5  # a lower score: a miss
    assert recall_with_ties(exact, [["3", "2"]]) == 0.5  # the best one missing
    assert recall_with_ties(exact, [["0", "1", "2"]]) == 1.0  # nothing beyond k counts


def test_ties_at_kth_counts_the_places_another_tie_order_may_fill() -> None:
    from scipy import sparse

    from bench.sparse_engines import ExactTop, ties_at_kth
    from indexes.inverted import InvertedIndex

    docs = sparse.csr_matrix(np.array([[3], [2], [2], [2], [1]], np.float32))
    index = InvertedIndex(1, impact_scale=100, query_scale=100)
    index.add(docs, [str(i) for i in range(5)])
    q = sparse.csr_matrix(np.ones((2, 1), np.float32))
    assert ties_at_kth(ExactTop.of(index, q, k=2)) == (2, 2)  # per query: place 2 is one of three tied
    assert ties_at_kth(ExactTop.of(index, q, k=4)) == (0, 0)  # the three tied documents all fit
