"""Document pruning by score contribution (``winnow models prune --doc-min-contribution``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import sparse

from retrieval.cli import main
from retrieval.encoders import load_encoder
from retrieval.sparse_encoder import drop_small_contributions
from tests.test_train_sparse import setup  # noqa: F401 - the module's fixture: a tiny MLM and corpus


def test_drop_small_contributions_keeps_terms_adding_at_least_the_threshold() -> None:
    docs = sparse.csr_matrix(np.array([[0.5, 2.0, 0.0, 1.0], [3.0, 0.1, 0.2, 0.0]], dtype=np.float32))
    idf = np.array([4.0, 0.5, 10.0, 0.0], dtype=np.float32)  # contributions: [2, 1, -, 0], [12, .05, 2, -]
    kept = drop_small_contributions(docs, idf, 1.0)
    want = np.array([[0.5, 2.0, 0.0, 0.0], [3.0, 0.0, 0.2, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(kept.toarray(), want)
    assert docs.nnz == 6  # the input is left alone


def test_prune_by_contribution_is_saved_with_the_model_and_its_onnx_export(setup, tmp_path, capsys) -> None:  # noqa: F811
    from retrieval.onnx_export import export_onnx

    corpus = setup["root"] / "data" / "beir" / "tiny"
    full = tmp_path / "if"
    assert main(["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus),
                 "--output", str(full), "--max-length", "32"]) == 0  # fmt: skip
    before = load_encoder(full)
    texts = ["vitamin d and the bones of the elderly", "a protein that folds"]
    want = before.encode_documents(texts)
    contributions = want.data * before.query_weights[want.indices]
    threshold = float(np.median(contributions))
    pruned = tmp_path / "pruned"
    args = ["models", "prune", "--model", str(full), "--doc-min-contribution", str(threshold)]
    assert main([*args, "--output", str(pruned)]) == 0
    after = load_encoder(pruned)
    docs = after.encode_documents(texts)
    assert 0 < docs.nnz < want.nnz
    np.testing.assert_array_equal(
        docs.toarray(), drop_small_contributions(want, before.query_weights, threshold).toarray()
    )
    meta = json.loads((pruned / "meta.json").read_text())
    assert meta["doc_min_contribution"] == threshold and meta["pruning"]["doc_min_contribution"] == threshold
    onnx = load_encoder(export_onnx(pruned, tmp_path / "onnx"))
    assert onnx.doc_min_contribution == threshold
    onnx_docs = onnx.encode_documents(texts)
    assert abs(onnx_docs.nnz - docs.nnz) <= 2  # fp32 graph: only terms at the threshold may differ
    np.testing.assert_allclose(onnx_docs.toarray(), docs.toarray(), atol=1e-3)

    # refused before any model loads: a non-positive threshold; and for a model without a query table
    assert main([*args[:-1], "0", "--output", str(tmp_path / "x")]) == 2
    assert "--doc-min-contribution must be positive; got 0.0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    from sentence_transformers import SparseEncoder

    from trainers.sparse_model import prune

    with pytest.raises(ValueError, match="doc_min_contribution needs an inference-free model"):
        prune(SparseEncoder(str(setup["mlm"]), device="cpu"), doc_min_contribution=1.0)  # siamese SPLADE


def test_average_refuses_models_pruned_with_different_floors(tmp_path, capsys) -> None:
    folders = []
    for name, meta in (("a", {"doc_min_contribution": 0.5}), ("b", {})):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "modules.json").write_text("[]")
        (folder / "meta.json").write_text(json.dumps(meta))
        folders += ["--model", str(folder)]
    assert main(["models", "average", *folders, "--output", str(tmp_path / "soup")]) == 2
    assert "different --doc-min-contribution floors" in capsys.readouterr().err
    assert not (tmp_path / "soup").exists()
