"""Reranking: a tiny local CrossEncoder moves a planted positive to the top; texts, save/load, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval import Retriever, load_retriever
from retrieval.cli import main
from retrieval.documents import DocumentTexts
from retrieval.rerank import Reranker
from tests.conftest import DOCS, tiny_bert_config, tiny_tokenizer

DOCUMENTS = [{"_id": d, "title": t, "text": x} for d, t, x in DOCS]
PLANTED = "d3"  # the only document mentioning vitamin


def build_tiny_cross_encoder(path: Path, seed: int = 0, steps: int = 60) -> Path:
    """A 2-layer BERT cross-encoder taught, in a few steps, that documents about vitamins are relevant."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    hf = path / "hf"
    hf.mkdir(parents=True)
    tokenizer = tiny_tokenizer(hf, letters=True)
    BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, num_labels=1)).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    model = CrossEncoder(str(hf), num_labels=1, device="cpu", max_length=32)
    texts = [f"{title} {text}".strip() for _, title, text in DOCS]
    pairs = [(q, t) for q in ("cat on a rock", "heart disease", "fish") for t in texts]
    labels = torch.tensor([float("vitamin" in t) for _, t in pairs])
    features = model.tokenizer(
        [q for q, _ in pairs], [t for _, t in pairs], padding=True, truncation=True, return_tensors="pt"
    )
    optimiser = torch.optim.AdamW(model.model.parameters(), lr=1e-3)
    model.model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        logits = model.model(**features).logits.squeeze(-1)
        torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).backward()
        optimiser.step()
    model.model.eval()
    model.save(str(path / "cross"))
    return path / "cross"


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross"))


def test_planted_positive_goes_to_the_top(tiny_encoder, cross_encoder_dir) -> None:
    queries = ["cat on a rock", "dogs in the forest", "salt and fat"]
    first = Retriever(tiny_encoder).build(DOCUMENTS)
    before = first.search(queries, k=6)
    assert any(ids[0] != PLANTED for ids in before.ids), "the first stage must not already rank it first"
    reranker = Reranker(first, str(cross_encoder_dir), depth=6, batch_size=4, documents=DOCUMENTS)
    after = reranker.search(queries, k=6)
    assert [ids[0] for ids in after.ids] == [PLANTED] * 3
    for ids, scores in zip(after.ids, after.scores, strict=True):
        assert sorted(ids) == sorted(d["_id"] for d in DOCUMENTS)
        assert all(np.diff(scores) <= 0), "scores must fall down the list (pytrec_eval ranks by score)"


def test_hits_below_depth_keep_the_first_stage_order(tiny_encoder, cross_encoder_dir) -> None:
    first = Retriever(tiny_encoder).build(DOCUMENTS)
    before = first.search(["cat on a rock"], k=6)
    reranker = Reranker(first, str(cross_encoder_dir), depth=2, documents=DOCUMENTS)
    after = reranker.search(["cat on a rock"], k=6)
    assert sorted(after.ids[0][:2]) == sorted(before.ids[0][:2])
    assert after.ids[0][2:] == before.ids[0][2:]
    assert after.scores[0][1] > after.scores[0][2]


def test_reranked_folder_round_trip(tiny_beir, tiny_model_dir, cross_encoder_dir, tmp_path, capsys) -> None:
    out = tmp_path / "reranked"
    argv = ["-q", "index", "--model", str(tiny_model_dir), "--corpus", str(tiny_beir), "--output", str(out)]
    assert main([*argv, "--rerank", str(cross_encoder_dir), "--rerank-depth", "6"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "reranked" and meta["depth"] == 6
    assert Path(meta["corpus"]) == (tiny_beir / "corpus.jsonl").resolve()
    loaded = load_retriever(out)
    assert isinstance(loaded, Reranker)
    assert loaded.search(["cat on a rock"], k=3).ids[0][0] == PLANTED
    result = tmp_path / "result.json"
    assert (
        main(
            ["-q", "eval", "beir", "--index-dir", str(out), "--data", str(tiny_beir), "--output", str(result)]
        )
        == 0
    )
    assert json.loads(result.read_text())["system"]["reranker"]["depth"] == 6


def test_eval_reranks_any_retriever(tiny_beir, tiny_model_dir, cross_encoder_dir, tmp_path) -> None:
    result = tmp_path / "r.json"
    argv = ["-q", "eval", "beir", "--model", str(tiny_model_dir), "--data", str(tiny_beir), "--top-k", "6"]
    argv += ["--metric", "mrr@5", "--rerank", str(cross_encoder_dir), "--rerank-depth", "6"]
    assert main([*argv, "--output", str(result)]) == 0
    scores = json.loads(result.read_text())["per_query"]["mrr@5"]
    assert scores["q3"] == pytest.approx(1.0)  # q3 judges the planted d3 relevant


def test_search_without_texts_is_refused(tiny_encoder, cross_encoder_dir) -> None:
    reranker = Reranker(Retriever(tiny_encoder).build(DOCUMENTS), str(cross_encoder_dir))
    with pytest.raises(ValueError, match="no document texts"):
        reranker.search(["cat"], k=2)
    with pytest.raises(ValueError, match="only a reranker whose documents come from a corpus file"):
        Reranker(Retriever(tiny_encoder), str(cross_encoder_dir), documents=DOCUMENTS).save("unused")
    with pytest.raises(ValueError, match="rerank depth 0"):
        Reranker(Retriever(tiny_encoder), str(cross_encoder_dir), depth=0)


def test_cli_search_rerank_needs_a_corpus(tmp_path, cross_encoder_dir, capsys) -> None:
    argv = ["search", "--index-dir", str(tmp_path), "--query", "cat", "--rerank", str(cross_encoder_dir)]
    assert main(argv) == 2
    assert "--rerank reads document texts: add --corpus" in capsys.readouterr().err


def test_document_texts_read_on_demand(tiny_beir) -> None:
    texts = DocumentTexts.of(tiny_beir)
    assert len(texts) == 6 and "d3" in texts and texts.path is not None
    assert texts.get_many(["d5", "d1"]) == [
        "cancer cells with new genes in mice study",
        "Cats the cat sat on the rock in the sun",
    ]
    with pytest.raises(KeyError, match="'nope' is not in"):
        texts["nope"]


def test_onnx_cross_encoder_scores_as_pytorch(tiny_encoder, cross_encoder_dir, tmp_path, capsys) -> None:
    from sentence_transformers import CrossEncoder

    from retrieval.onnx_cross import OnnxCrossEncoder

    out = tmp_path / "cross-onnx"
    assert main(["-q", "export", "onnx", "--model", str(cross_encoder_dir), "--output", str(out)]) == 0
    assert json.loads((out / "meta.json").read_text())["kind"] == "onnx-cross-encoder"
    pairs = [(q, f"{t} {x}".strip()) for q in ("cat on a rock", "vitamin") for _, t, x in DOCS]
    torch_scores = CrossEncoder(str(cross_encoder_dir)).predict(pairs, show_progress_bar=False)
    onnx_scores = OnnxCrossEncoder(out).predict(pairs, batch_size=5)
    assert np.abs(onnx_scores - torch_scores).max() < 1e-4
    first = Retriever(tiny_encoder).build(DOCUMENTS)
    queries = ["cat on a rock", "dogs in the forest"]
    with_torch = Reranker(first, str(cross_encoder_dir), depth=6, documents=DOCUMENTS).search(queries, k=6)
    with_onnx = Reranker(first, str(out), depth=6, documents=DOCUMENTS).search(queries, k=6)
    assert with_onnx.ids == with_torch.ids
