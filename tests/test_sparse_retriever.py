"""Sparse models through the Retriever and the CLI: inverted and Lucene indexes, BM25, index specs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexes.factory import parse_index_spec
from retrieval.cli import main
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever
from tests.test_onnx import build_tiny_mlm


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    return build_tiny_mlm(tmp_path_factory.mktemp("sparse-mlm") / "mlm")


def test_sparse_encoder_returns_csr_over_the_vocabulary(mlm) -> None:
    encoder = load_encoder(mlm)
    assert encoder.kind == "sparse" and not encoder.inference_free
    docs = encoder.encode_documents(["the cat sat on the rock", "fish in the sea"])
    assert docs.shape == (2, encoder.dim) and docs.dtype == np.float32 and (docs.data > 0).all()
    assert (
        len(encoder.vocabulary) == encoder.dim
        and encoder.vocabulary[encoder.vocabulary.index("cat")] == "cat"
    )


def test_inverted_retriever_saves_loads_and_agrees_with_brute_force(mlm, tiny_beir, tmp_path) -> None:
    retriever = Retriever(load_encoder(mlm), index="inverted").build(tiny_beir, progress=False)
    assert retriever.index_spec == "inverted"
    queries = ["cat on a rock", "heart disease from salt"]
    hits = retriever.search(queries, k=6)
    q = retriever.encoder.encode_queries(queries)
    d = retriever.encoder.encode_documents(
        [
            json.loads(line)["title"] + " " + json.loads(line)["text"]
            for line in (tiny_beir / "corpus.jsonl").open()
        ]
    )
    brute = (q @ d.T).toarray()
    np.testing.assert_allclose(np.sort(brute, axis=1)[:, ::-1][:, :6], hits.scores, rtol=1e-5)
    retriever.save(tmp_path / "inv")
    again = Retriever.load(tmp_path / "inv").search(queries, k=6)
    assert again.ids == hits.ids


def test_index_specs_are_checked_against_the_encoder(mlm, tiny_encoder) -> None:
    assert parse_index_spec("inverted:impact=50") == ("inverted", "impact=50")
    with pytest.raises(ValueError, match="unknown option 'quant'"):
        parse_index_spec("inverted:quant")
    with pytest.raises(ValueError, match="does not fit the sparse encoder"):
        Retriever(load_encoder(mlm), index="faiss:Flat")
    with pytest.raises(ValueError, match="does not fit the dense encoder"):
        Retriever(tiny_encoder, index="inverted")
    assert Retriever(load_encoder(mlm)).index_spec == "inverted"  # the default for sparse encoders


def test_cli_index_search_and_eval_with_the_inverted_index(mlm, tiny_beir, tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    args = ["index", "--model", str(mlm), "--corpus", str(tiny_beir), "--output", str(out)]
    assert main([*args, "--index", "inverted:impact=100"]) == 0
    assert json.loads((out / "meta.json").read_text())["impact_scale"] == 100
    assert main(["search", "--index-dir", str(out), "--query", "vitamin and bone", "-k", "2"]) == 0
    assert "Q0" in capsys.readouterr().out
    result = tmp_path / "r.json"
    eval_args = ["eval", "beir", "--model", str(mlm), "--data", str(tiny_beir), "--index", "inverted"]
    assert main([*eval_args, "--output", str(result)]) == 0
    assert json.loads(result.read_text())["index"] == "inverted"


@pytest.mark.lucene
def test_cli_eval_lucene_and_bm25(mlm, tiny_beir, tmp_path) -> None:
    pytest.importorskip("pyserini")
    results = {}
    for model, index in ((str(mlm), "lucene"), (str(mlm), "inverted:impact=100"), ("bm25", None)):
        out = tmp_path / f"{len(results)}.json"
        args = ["eval", "beir", "--model", model, "--data", str(tiny_beir), "--output", str(out)]
        assert main(args + (["--index", index] if index else [])) == 0
        results[index or model] = json.loads(out.read_text())
    assert results["lucene"]["index"] == "lucene:impact=100"
    assert (
        results["lucene"]["metrics"] == results["inverted:impact=100"]["metrics"]
    )  # same impacts, same ranking
    assert results["bm25"]["metrics"]["ndcg@10"] > 0.5  # the tiny set is lexical
