"""Pruning an inference-free model for cheaper search: ``winnow models prune`` (document terms, query
tokens below an IDF floor) and the recipe's ``sparse.doc_min_contribution``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval.cli import main
from retrieval.encoders import load_encoder
from tests.test_train_sparse import FULL, recipe, setup  # noqa: F401 - the module's fixture: a tiny MLM and corpus


def test_recipe_prunes_the_saved_model_by_score_contribution(setup, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / "model-floor"
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, doc_min_contribution: 0.5}")
    assert main(["train", str(recipe(setup, body)), "--output", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["doc_min_contribution"] == 0.5 and meta["pruning"]["doc_min_contribution"] == 0.5
    encoder = load_encoder(out)  # reads the floor from meta.json: no document term adds less than 0.5
    texts = ["vitamin d and the bones of the elderly", "a protein that folds"]
    docs = encoder.encode_documents(texts)
    idf = np.asarray(encoder.query_weights)
    assert docs.nnz > 0 and (docs.data * idf[docs.indices] >= 0.5 - 1e-6).all()
    encoder.doc_min_contribution = None  # the same model without the floor keeps terms below it
    unpruned = encoder.encode_documents(texts)
    assert (unpruned.data * idf[unpruned.indices] < 0.5).any()
    # a floor that is not positive is refused before any work, naming the key
    bad = setup["root"] / "model-bad-floor"
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, doc_min_contribution: 0}")
    assert main(["train", str(recipe(setup, body)), "--output", str(bad)]) == 2
    assert "sparse.doc_min_contribution" in capsys.readouterr().err and not bad.exists()


def test_prune_keeps_heaviest_document_terms_and_drops_stop_tokens(setup, tmp_path) -> None:  # noqa: F811
    from retrieval.onnx_export import export_onnx

    corpus = setup["root"] / "data" / "beir" / "tiny"
    full = tmp_path / "if"
    assert main(["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus),
                 "--output", str(full), "--max-length", "32"]) == 0  # fmt: skip
    pruned = tmp_path / "pruned"
    args = ["models", "prune", "--model", str(full), "--doc-max-terms", "5", "--query-min-idf", "0.8"]
    assert main([*args, "--output", str(pruned)]) == 0
    before, after = load_encoder(full), load_encoder(pruned)
    vocab = {t: i for i, t in enumerate(after.vocabulary)}
    # "the" (in half the documents, IDF ln 2 = 0.69) leaves the query table; "vitamin" stays
    assert after.query_weights[vocab["the"]] == 0.0
    assert after.query_weights[vocab["vitamin"]] == before.query_weights[vocab["vitamin"]]
    q = after.encode_queries(["the vitamin"])
    assert set(q.indices) == {vocab["vitamin"]}
    texts = ["vitamin d and the bones of the elderly", "a protein that folds"]
    full_docs, docs = before.encode_documents(texts), after.encode_documents(texts)
    for row in range(len(texts)):
        want = full_docs[row].toarray().ravel()
        top = np.sort(want)[::-1][:5]
        got = docs[row].toarray().ravel()
        assert docs[row].nnz == 5
        np.testing.assert_allclose(np.sort(got[got > 0])[::-1], top, rtol=1e-5)
        assert np.all((got == 0) | np.isclose(got, want))
    meta = json.loads((pruned / "meta.json").read_text())
    assert meta["pruning"]["doc_max_terms"] == 5 and meta["pruning"]["query_tokens_removed"] > 0
    # the source's own fields carry over; the header is the prune's own
    source_meta = json.loads((full / "meta.json").read_text())
    assert meta["base_model"] == source_meta["base_model"] and meta["pruned_from"] == str(full)
    assert meta["kind"] == "model" and meta["created_at"] >= source_meta["created_at"]
    # the ONNX export keeps both: the graph's documents are cut to 5 terms, the query table is the pruned one
    onnx_dir = export_onnx(pruned, tmp_path / "onnx")
    onnx = load_encoder(onnx_dir)
    onnx_docs = onnx.encode_documents(texts)
    assert (np.diff(onnx_docs.indptr) == 5).all()
    np.testing.assert_allclose(onnx_docs.toarray(), docs.toarray(), atol=1e-4)
    assert set(onnx.encode_queries(["the vitamin"]).indices) == {vocab["vitamin"]}


def test_prune_refuses_bad_values(setup, tmp_path, capsys) -> None:  # noqa: F811
    from trainers.sparse_model import inference_free_model, prune

    model = inference_free_model(str(setup["mlm"]), np.ones(len(load_encoder(setup["mlm"]).vocabulary)))
    with pytest.raises(ValueError, match="doc_max_terms must be a positive integer; got 0"):
        prune(model, doc_max_terms=0)
    assert main(["models", "prune", "--model", str(tmp_path), "--output", str(tmp_path / "x")]) != 0
    assert "give --doc-max-terms, --query-min-idf and/or --doc-min-contribution" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_keep_top_terms_matches_a_dense_top_k() -> None:
    from scipy import sparse

    from retrieval.sparse_encoder import keep_top_terms

    rng = np.random.default_rng(0)
    dense = rng.random((20, 50)) * (rng.random((20, 50)) < 0.4)
    dense[3, :4] = 0.5  # ties: the lower term ids win
    out = keep_top_terms(sparse.csr_matrix(dense), 6).toarray()
    for row, want in zip(out, dense, strict=True):
        order = np.lexsort((np.arange(50), -want))[: min(6, int((want > 0).sum()))]
        expect = np.zeros(50)
        expect[order] = want[order]
        np.testing.assert_array_equal(row, expect)
