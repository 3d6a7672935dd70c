"""Two-step sparse training runs (inference-free student from a tiny MLM) and the model it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.cli import main
from retrieval.encoders import load_encoder
from tests.conftest import build_tiny_model, write_beir
from tests.test_onnx import build_tiny_mlm


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sparse")
    write_beir(root / "data" / "beir" / "tiny", split="train")
    write_beir(root / "data" / "beir" / "tiny", split="dev")
    return {
        "root": root,
        "mlm": build_tiny_mlm(root / "mlm"),
        "guide": build_tiny_model(root / "guide", seed=1),
    }


def recipe(setup: dict[str, Path], body: str) -> Path:
    path = setup["root"] / "sparse.yaml"
    path.write_text(
        f"kind: sparse\nmodel: {setup['mlm']}\ncache_dir: {setup['root'] / 'cache'}\n"
        "data: {dataset: tiny, split: train}\n"
        "training: {batch_size: 2, max_steps: 3, logging_steps: 1, learning_rate: 1.0e-3}\n"
        + body.replace("GUIDE", str(setup["guide"]))
    )
    return path


FULL = """
guide: {model: GUIDE}
mining: {model: guide, num_negatives: 2, range_max: 4}
loss: {name: gist, temperature: 1.0, distill: margin_mse, margin_scale: auto}
sampler: {name: tas_balanced, clusters: 2}
teachers:
  - {kind: dense, model: GUIDE, weight: 0.5}
  - {kind: bm25, weight: 0.5}
sparse: {regularizer: idf_flops, document_weight: 0.01, warmup_steps: 2}
"""


@pytest.mark.parametrize(("distill", "mask_labelled"), [("margin_mse", False), ("kl", True)])
def test_sparse_training_writes_an_inference_free_model(
    setup, monkeypatch, distill: str, mask_labelled: bool
) -> None:
    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / f"model-{distill}"
    body = FULL.replace("margin_mse", distill).replace("auto}", f"auto, mask_labelled: {mask_labelled}}}")
    assert main(["train", str(recipe(setup, body)), "--output", str(out)]) == 0
    encoder = load_encoder(out)
    assert encoder.kind == "sparse" and encoder.inference_free
    # the query side is the IDF table of the training corpus: rarer words weigh more
    vocab = {t: i for i, t in enumerate(encoder.vocabulary)}
    assert encoder.query_weights[vocab["the"]] < encoder.query_weights[vocab["vitamin"]]
    q = encoder.encode_queries(["the vitamin"])
    assert sorted(q.indices) == sorted([vocab["the"], vocab["vitamin"]])
    docs = encoder.encode_documents(["vitamin d lower risk of bone disease"])
    assert docs.nnz > 0 and (docs.data > 0).all()
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "doc_active_terms" in e]
    assert steps and all(e["doc_active_terms"] > 0 for e in steps)
    weights = [e["document_regularizer_weight"] for e in steps]
    assert weights[0] < 0.01 and weights[-1] == pytest.approx(0.01)  # quadratic warm-up over 2 steps
    meta = json.loads((out / "meta.json").read_text())
    assert meta["model_type"] == "sparse" and meta["steps"] == 3
    assert meta["best_dev_ndcg_at_10"] is None  # no dev split asked for


def test_sparse_training_scores_dev_as_the_report_does(setup, monkeypatch) -> None:
    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / "model-dev"
    path = recipe(setup, FULL)
    text = path.read_text().replace("split: train}", "split: train, dev_split: dev}")
    path.write_text(text.replace("training: {", "training: {eval_steps: 1, "))
    assert main(["-q", "train", str(path), "--output", str(out)]) == 0
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    dev = [e["eval_dev_ndcg@10"] for e in log if "eval_dev_ndcg@10" in e]
    assert len(dev) == 3 and all(0.0 <= v <= 1.0 for v in dev)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["best_dev_ndcg_at_10"] == pytest.approx(max(dev))


def test_trainable_idf_moves_the_query_weights_and_frozen_keeps_them(setup, monkeypatch) -> None:
    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    frozen = setup["root"] / "model-margin_mse"
    if not (frozen / "meta.json").exists():
        assert main(["train", str(recipe(setup, FULL)), "--output", str(frozen)]) == 0
    trainable = setup["root"] / "model-trainable-idf"
    # a rate so large that Adam's first steps push some weights below zero; the projection after every
    # optimizer step keeps the table non-negative
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, trainable_idf: true, idf_learning_rate: 20.0}")
    assert main(["train", str(recipe(setup, body)), "--output", str(trainable)]) == 0
    before, after = load_encoder(frozen).query_weights, load_encoder(trainable).query_weights
    vocab = {t: i for i, t in enumerate(load_encoder(trainable).vocabulary)}
    query_tokens = [vocab[t] for t in ("vitamin", "bone") if t in vocab]
    # the query tokens' weights moved by about the rate times the steps; the table is still non-negative
    assert np.abs(after[query_tokens] - before[query_tokens]).max() > 0.1
    assert (after >= 0).all()


def test_clamp_query_weights_zeroes_only_negative_entries(setup) -> None:
    import torch

    from retrieval.sparse_encoder import query_module
    from trainers.sparse_model import clamp_query_weights, idf_for, inference_free_model

    idf = idf_for(str(setup["mlm"]), ["vitamin d", "a cat"])
    model = inference_free_model(str(setup["mlm"]), idf, trainable_idf=True, max_length=16)
    weight = query_module(model).weight
    size = weight.shape[0]
    with torch.no_grad():
        weight[:] = torch.linspace(-1.0, 2.0, size)
    expect = np.clip(np.linspace(-1.0, 2.0, size, dtype=np.float32), 0.0, None)
    assert clamp_query_weights(model) == int((np.linspace(-1.0, 2.0, size) < 0).sum()) > 0
    np.testing.assert_allclose(query_module(model).weight.detach().cpu().numpy(), expect, atol=1e-6)
    assert clamp_query_weights(model) == 0


def test_sparse_model_searches_through_the_inverted_index(setup, monkeypatch) -> None:
    from retrieval.retriever import Retriever

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / "model-search"
    assert main(["train", str(recipe(setup, FULL)), "--output", str(out)]) == 0
    retriever = Retriever(load_encoder(out), index="inverted")
    retriever.build(setup["root"] / "data" / "beir" / "tiny", progress=False)
    hits = retriever.search(["vitamin and bone", "cat on a rock"], k=6)
    assert len(hits.ids[0]) > 0 and (np.diff(hits.scores[0][: len(hits.ids[0])]) <= 0).all()
    brute = (
        retriever.encoder.encode_queries(["vitamin and bone"])
        @ retriever.encoder.encode_documents(["Vitamin vitamin d lower risk of bone disease in patients"]).T
    )
    assert "d3" in hits.ids[0] and np.isclose(hits.scores[0][hits.ids[0].index("d3")], brute.toarray()[0, 0])


def test_sparse_student_mines_its_own_negatives(setup, monkeypatch) -> None:
    """``mining.model: student`` in a sparse recipe: the untrained inference-free student searches the
    corpus through the embedded inverted index; the negatives are its top-ranked non-positives."""
    from retrieval.sparse_encoder import SparseModelEncoder
    from trainers.config import load_config
    from trainers.preparation import Preparation
    from trainers.sparse import build_student, student_name

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    mining = "mining: {model: student, num_negatives: 2, range_max: 4, guide_filter: false}"
    body = f"guide: {{model: GUIDE}}\n{mining}\n"
    config = load_config(recipe(setup, body))
    student = SparseModelEncoder(build_student(config), name=student_name(config))
    preparation = Preparation(config, student)
    negatives = preparation.negatives()
    data = preparation.data
    docs = list(data.corpus)
    vectors = student.encode_documents([data.corpus[d] for d in docs])
    for qid in data.query_ids:
        scores = (vectors @ student.encode_queries([data.queries[qid]]).T).toarray().ravel()
        ranked = [docs[i] for i in np.argsort(-scores, kind="stable") if docs[i] not in data.positives[qid]]
        assert negatives[qid] == ranked[: len(negatives[qid])] and 0 < len(negatives[qid]) <= 2
    assert list((setup["root"] / "cache" / "negatives").glob("negatives-*.json"))  # cached on disk


def test_untrained_inference_free_model_from_the_cli(setup, tmp_path) -> None:
    corpus = setup["root"] / "data" / "beir" / "tiny"
    out = tmp_path / "if"
    args = ["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus)]
    assert main([*args, "--output", str(out), "--max-length", "32"]) == 0
    encoder = load_encoder(out)
    assert encoder.inference_free and encoder.model.max_seq_length == 32
    assert main([*args, "--output", str(tmp_path / "default-length")]) == 0  # the base model's limit:
    assert load_encoder(tmp_path / "default-length").model.max_seq_length == 128  # max_position_embeddings
    vocab = {t: i for i, t in enumerate(encoder.vocabulary)}
    # "the" is in 3 of the 6 tiny documents, "vitamin" in 1: idf = ln(1 + (N - df + 0.5) / (df + 0.5))
    assert encoder.query_weights[vocab["the"]] == pytest.approx(np.log(2.0), rel=1e-5)
    assert encoder.query_weights[vocab["vitamin"]] == pytest.approx(np.log1p(5.5 / 1.5), rel=1e-5)


def test_average_is_the_elementwise_mean_of_the_weights(setup, tmp_path) -> None:
    import torch
    from sentence_transformers import SparseEncoder

    from trainers.soup import average_models

    corpus = setup["root"] / "data" / "beir" / "tiny"
    base = tmp_path / "if"
    assert main(["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus),
                 "--output", str(base), "--max-length", "32"]) == 0  # fmt: skip
    paths = []
    for seed in (1, 2):  # two "fine-tuned" variants of one start point
        model = SparseEncoder(str(base), device="cpu")
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.rand_like(p) * 0.1)
        model.save(str(tmp_path / f"v{seed}"))
        paths.append(tmp_path / f"v{seed}")
    out = tmp_path / "soup"
    assert main(["models", "average", "--model", str(paths[0]), "--model", str(paths[1]),
                 "--output", str(out)]) == 0  # fmt: skip
    states = [SparseEncoder(str(p), device="cpu").state_dict() for p in [*paths, out]]
    floats = [name for name, t in states[0].items() if t.is_floating_point()]
    assert any("query" in name for name in floats)  # the IDF query table is averaged too
    for name in floats:
        torch.testing.assert_close(states[2][name], (states[0][name] + states[1][name]) / 2)
    assert load_encoder(out).inference_free
    assert json.loads((out / "meta.json").read_text())["averaged_from"] == [str(p) for p in paths]

    with pytest.raises(ValueError, match="at least two models"):
        average_models([SparseEncoder(str(paths[0]), device="cpu")])
    dense = build_tiny_model(tmp_path / "dense")
    assert main(["models", "average", "--model", str(paths[0]), "--model", str(dense),
                 "--output", str(tmp_path / "mixed")]) != 0  # fmt: skip
    assert not (tmp_path / "mixed").exists()


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def test_average_last_saves_the_mean_of_the_last_epoch_checkpoints(setup, monkeypatch) -> None:
    import torch
    from sentence_transformers import SparseEncoder

    import trainers.loop
    from trainers.checkpoints import checkpoint_dirs
    from trainers.soup import average_checkpoints

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    seen: dict[str, object] = {}

    def recording(model, checkpoints, last, load):  # the checkpoints are deleted after training
        found = checkpoint_dirs(checkpoints)
        seen["all"] = [p.name for p in found]
        # on the CPU: the trainer may run on a GPU, the saved model is loaded on the CPU below
        seen["states"] = [_cpu(load(str(p)).state_dict()) for p in found[-last:]]
        seen["final"] = _cpu(model.state_dict())
        return average_checkpoints(model, checkpoints, last, load)

    monkeypatch.setattr(trainers.loop, "average_checkpoints", recording)
    out = setup["root"] / "model-avg"
    assert main(["train", str(recipe(setup, FULL)), "--output", str(out), "--set", "training.max_steps=-1",
                 "--set", "training.epochs=3", "--set", "training.average_last=2"]) == 0  # fmt: skip
    # 3 queries, batch 2: a checkpoint every 2 steps; the last two kept (save_total_limit 2)
    assert seen["all"] == ["checkpoint-4", "checkpoint-6"]
    saved = SparseEncoder(str(out), device="cpu").state_dict()
    first, last = seen["states"]
    changed = 0
    for name, tensor in saved.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (first[name] + last[name]) / 2)
            torch.testing.assert_close(last[name], seen["final"][name])  # last checkpoint = final weights
            changed += not torch.equal(tensor, last[name])
    assert changed  # the saved weights are not simply the final ones
    assert not out.with_name(out.name + ".checkpoints").exists()


def test_average_last_needs_enough_checkpoints(tmp_path) -> None:
    from tests.test_faults import checkpoint
    from trainers.soup import average_checkpoints

    checkpoint(tmp_path / "checkpoint-5")  # complete: trainer state and whole weights
    with pytest.raises(ValueError, match=r"average_last=3 needs 3 checkpoints; .* has 1 \(checkpoint-5\)"):
        average_checkpoints(None, tmp_path, 3, lambda p: None)
