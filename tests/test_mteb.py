"""winnow eval mteb on tiny local tasks: offline loading, partial coverage, sparse search, summary."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from eval.mteb_data import LocalDataMissing, load_local
from eval.mteb_run import run_mteb, select_tasks
from retrieval.cli import main
from tests.conftest import write_beir

PAIRS = [
    ("the cat sat", "a cat sat", 4.5),
    ("dogs run", "the sun is hot", 0.5),
    ("blue sea", "the blue sea", 4.8),
    ("bone risk", "heart disease", 1.0),
    ("red tree", "green tree", 3.0),
]


@pytest.fixture
def task_data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_beir(root / "beir" / "scifact")
    (root / "sts" / "sick").mkdir(parents=True)
    lines = ["split\tpair_ID\tscore\tsentence_A\tsentence_B"]
    lines += [
        f"{split}\t{i}\t{s}\t{a}\t{b}" for i, (a, b, s) in enumerate(PAIRS) for split in ("test", "dev")
    ]
    (root / "sts" / "sick" / "sick_r.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_loader_keeps_official_metadata(task_data) -> None:
    scifact, sick = select_tasks(["scifact", "SICK-R"])
    load_local(scifact, task_data)
    split = scifact.dataset["default"]["test"]
    assert (
        scifact.metadata.main_score == "ndcg_at_10"
        and len(split["corpus"]) == 6
        and len(split["queries"]) == 3
    )
    assert split["relevant_docs"]["q3"] == {"d3": 2, "d4": 1}
    load_local(sick, task_data)
    assert (
        sick.metadata.main_score == "cosine_spearman"
        and sick.dataset["test"]["sentence1"][0] == "the cat sat"
    )
    (nfcorpus,) = select_tasks(["NFCorpus"])
    with pytest.raises(LocalDataMissing, match="no local folder .*beir/nfcorpus"):
        load_local(nfcorpus, task_data)
    with pytest.raises(ValueError, match="unknown mteb task 'SciFakt'; did you mean SciFact"):
        select_tasks(["SciFakt"])


def test_cli_offline_partial_coverage_and_summary(
    tiny_model_dir, task_data, tmp_path, no_network, capsys
) -> None:
    out = tmp_path / "out"
    assert (
        main(
            [
                "-q",
                "eval",
                "mteb",
                "--model",
                str(tiny_model_dir),
                "--tasks",
                "SciFact,SICK-R,NFCorpus",
                "--task-data",
                str(task_data),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| winnow/st | 2/3 |" in printed and "NFCorpus: no local folder" in printed
    results = list((out / "results").glob("winnow__st/*/*.json"))
    names = sorted(p.name for p in results)
    assert names == ["SICK-R.json", "SciFact.json", "model_meta.json"]
    scifact = json.loads(next(p for p in results if p.name == "SciFact.json").read_text())
    assert scifact["task_name"] == "SciFact" and "ndcg_at_10" in scifact["scores"]["test"][0]
    assert (out / "summary.csv").is_file() and (out / "summary.png").stat().st_size > 0


def test_sparse_model_through_search_protocol(tmp_path, task_data, no_network) -> None:
    from tests.test_onnx import build_tiny_mlm

    mlm = build_tiny_mlm(tmp_path / "mlm")
    run = run_mteb(str(mlm), tasks=["SciFact"], task_data=task_data, output=tmp_path / "out")
    assert run.model == "winnow/mlm" and run.requested == 1
    (score,) = run.scored
    assert score.task == "SciFact" and 0 <= score.score <= 1


def test_embedding_cache_gives_the_same_scores(tiny_model_dir, task_data, tmp_path, no_network) -> None:
    plain = run_mteb(
        str(tiny_model_dir), tasks=["SciFact", "SICK-R"], task_data=task_data, output=tmp_path / "a"
    )
    cached = run_mteb(
        str(tiny_model_dir),
        tasks=["SciFact", "SICK-R"],
        task_data=task_data,
        output=tmp_path / "b",
        embedding_cache=tmp_path / "emb",
    )
    assert [s.score for s in plain.scores] == pytest.approx([s.score for s in cached.scores], abs=1e-6)
    assert list((tmp_path / "emb").rglob("shard-*.npy"))  # the embeddings were stored
    assert cached.model == plain.model and cached.revision == plain.revision


def test_sparse_search_model_returns_the_exact_top_k(no_network) -> None:
    from datasets import Dataset

    from eval.mteb_models import SparseSearchModel
    from tests.test_inverted_index import random_sparse

    docs, queries = random_sparse(80, 40, 0.1, seed=5), random_sparse(6, 40, 0.1, seed=6)

    class Fixed:
        """Stands in for the sparse encoder: fixed document and query vectors."""

        def encode_documents(self, texts, batch_size=16, progress=False):
            return docs[[int(t.split()[-1]) for t in texts]]

        def encode_queries(self, texts, batch_size=16, progress=False):
            return queries[[int(t) for t in texts]]

    model = SparseSearchModel.__new__(SparseSearchModel)
    model._encoder, model.batch_size, model._index = Fixed(), 4, None
    with pytest.raises(RuntimeError, match="before index"):
        model.search(Dataset.from_dict({"id": ["q0"], "text": ["0"]}))
    doc_ids = [f"d{i}" for i in range(80)]
    texts = [f"doc {i}" for i in range(80)]
    model.index(Dataset.from_dict({"id": doc_ids, "title": [""] * 80, "text": texts}))
    query_ids = [f"q{i}" for i in range(6)]
    got = model.search(Dataset.from_dict({"id": query_ids, "text": [str(i) for i in range(6)]}), top_k=10)
    scores = (queries @ docs.T).toarray()
    for row, qid in enumerate(query_ids):
        top = [j for j in np.argsort(-scores[row], kind="stable")[:10] if scores[row, j] > 0]
        assert list(got[qid]) == [doc_ids[j] for j in top]  # best first, only documents sharing a term
        np.testing.assert_allclose(list(got[qid].values()), scores[row, top], rtol=1e-5)


def test_hybrid_through_search_protocol_equals_eval_beir(
    tiny_model_dir, task_data, tmp_path, no_network
) -> None:
    from tests.test_hybrid import build_tiny_model

    second = build_tiny_model(tmp_path / "second", seed=1)
    members = ["--member", f"dense={tiny_model_dir}", "--member", f"dense={second}", "--fusion", "convex"]
    beir = tmp_path / "beir.json"
    data = str(task_data / "beir" / "scifact")
    assert main(["-q", "eval", "beir", *members, "--data", data, "--output", str(beir)]) == 0
    out = tmp_path / "mteb"
    argv = ["-q", "eval", "mteb", *members, "--tasks", "SciFact", "--data-dir", str(task_data)]
    assert main([*argv, "--output", str(out)]) == 0
    (result,) = out.glob("results/winnow__hybrid-dense-dense/*/SciFact.json")
    mteb_ndcg = json.loads(result.read_text())["scores"]["test"][0]["ndcg_at_10"]
    assert mteb_ndcg == pytest.approx(json.loads(beir.read_text())["metrics"]["ndcg@10"], abs=1e-4)


def test_a_trainable_pooling_model_scores_the_same_in_mteb_and_eval_beir(
    task_data, tmp_path, no_network
) -> None:
    import torch

    from retrieval.pooling import build
    from tests.conftest import build_tiny_model

    torch.manual_seed(0)
    spec = {"type": "latent_attention", "latents": 4, "heads": 2, "zero_init": False}
    model_dir = tmp_path / "latent"
    build(str(build_tiny_model(tmp_path / "base")), spec).save(str(model_dir))
    data = str(task_data / "beir" / "scifact")
    beir = tmp_path / "beir.json"
    assert main(["-q", "eval", "beir", "--model", str(model_dir), "--data", data, "--output", str(beir)]) == 0
    out = tmp_path / "mteb"
    argv = [
        "-q",
        "eval",
        "mteb",
        "--model",
        str(model_dir),
        "--tasks",
        "SciFact",
        "--data-dir",
        str(task_data),
    ]
    assert main([*argv, "--output", str(out)]) == 0
    (result,) = out.glob("results/*/*/SciFact.json")
    mteb_ndcg = json.loads(result.read_text())["scores"]["test"][0]["ndcg_at_10"]
    assert mteb_ndcg == pytest.approx(json.loads(beir.read_text())["metrics"]["ndcg@10"], abs=1e-4)
