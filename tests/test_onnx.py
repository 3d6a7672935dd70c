"""ONNX export of tiny dense and sparse (MLM) encoders: fp32 and int8 agree with PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.cli import main
from retrieval.encoders import is_sparse_model, load_encoder
from retrieval.onnx_encoder import OnnxEncoder
from retrieval.onnx_export import export_onnx

TEXTS = ["the cat sat on the rock", "vitamin d lower risk of bone disease in patients " * 4, "sea"]


def build_tiny_mlm(path: Path) -> Path:
    """A 2-layer BertForMaskedLM (a SPLADE-style document encoder) with the tests' vocabulary."""
    import torch
    from transformers import BertForMaskedLM

    from tests.conftest import tiny_bert_config, tiny_tokenizer

    torch.manual_seed(0)
    path.mkdir(parents=True)
    tokenizer = tiny_tokenizer(path)
    BertForMaskedLM(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_is_sparse_model_reads_the_config_only(tiny_model_dir, tmp_path) -> None:
    assert is_sparse_model(build_tiny_mlm(tmp_path / "mlm"))  # a bare masked-LM: a SPLADE document encoder
    assert not is_sparse_model(tiny_model_dir)  # sentence-transformers modules without a sparse one
    router = tmp_path / "router"
    router.mkdir()
    (router / "modules.json").write_text('[{"idx": 0, "name": "0", "type": "sentence_transformers.Router"}]')
    assert is_sparse_model(router)
    assert not is_sparse_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="cannot load a model from"):
        is_sparse_model(tmp_path / "missing", strict=True)


@pytest.mark.parametrize(("quantize", "tolerance"), [(None, 1e-5), ("int8", 0.05)])
def test_dense_export_matches_pytorch(tiny_model_dir, tiny_encoder, tmp_path, quantize, tolerance) -> None:
    out = export_onnx(tiny_model_dir, tmp_path / "onnx", quantize=quantize)
    encoder = load_encoder(out)
    assert isinstance(encoder, OnnxEncoder) and encoder.dim == 32 and encoder.similarity == "cosine"
    got, want = encoder.encode_documents(TEXTS), tiny_encoder.encode_documents(TEXTS)
    cosine = (got * want).sum(1)
    assert cosine.min() >= 1 - tolerance, cosine
    if quantize is None:
        np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_fused_int8_export_quantises_attention(tiny_model_dir, tiny_encoder, tmp_path) -> None:
    """--optimize O2 --quantize int8: the fused Attention nodes' projections are int8 too (QAttention)."""
    import onnx

    out = export_onnx(tiny_model_dir, tmp_path / "onnx", optimize="O2", quantize="int8")
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert "QAttention" in ops and "Attention" not in ops, ops
    got, want = load_encoder(out).encode_documents(TEXTS), tiny_encoder.encode_documents(TEXTS)
    assert (got * want).sum(1).min() >= 0.95


def test_sparse_document_encoder_export(tmp_path) -> None:
    from sentence_transformers import SparseEncoder

    mlm = build_tiny_mlm(tmp_path / "mlm")
    out = export_onnx(mlm, tmp_path / "onnx")
    encoder = load_encoder(out)
    assert encoder.kind == "sparse" and encoder.dim == len((mlm / "vocab.txt").read_text().split())
    got = encoder.encode_documents(TEXTS).toarray()
    want = (
        SparseEncoder(str(mlm), device="cpu")
        .encode_document(TEXTS, convert_to_tensor=True)
        .to_dense()
        .numpy()
    )
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got >= 0).all() and (got == 0).any()  # SPLADE weights: log(1 + relu(.)), sparse
    with pytest.raises(ValueError, match="sparse document encoder"):
        encoder.encode_queries(["q"])


def test_cli_export_and_errors(tiny_model_dir, tmp_path, capsys) -> None:
    assert main(["-q", "export", "onnx", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "model.onnx").is_file() and (tmp_path / "o" / "meta.json").is_file()
    assert main(["export", "onnx", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err
    weird = tmp_path / "weird"
    weird.mkdir()
    (weird / "config.json").write_text('{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}')
    assert main(["export", "onnx", "--model", str(weird), "--out", str(tmp_path / "y")]) == 2
    assert "architecture 'gpt2' is not supported for ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_inference_free_sparse_model_export(tmp_path) -> None:
    """A Router model (IDF query table, MLM document encoder): the document route becomes the ONNX graph,
    the query side a weight table; both match sentence-transformers."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sparse_encoder.modules import (
        MLMTransformer,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = build_tiny_mlm(tmp_path / "mlm")
    document = MLMTransformer(str(mlm))
    vocab = document.auto_model.config.vocab_size
    query = SparseStaticEmbedding(tokenizer=document.tokenizer, frozen=False)
    with torch.no_grad():
        query.weight.copy_(torch.rand(vocab))
    router = Router.for_query_document(
        query_modules=[query], document_modules=[document, SpladePooling("max", embedding_dimension=vocab)]
    )
    model = SparseEncoder(modules=[router], similarity_fn_name="dot")
    model.save(str(tmp_path / "if"))
    encoder = load_encoder(export_onnx(tmp_path / "if", tmp_path / "onnx"))
    assert encoder.kind == "sparse" and encoder.meta["query_encoder"] == "idf"
    want_docs = model.encode_document(TEXTS, convert_to_tensor=True).to_dense().cpu().numpy()
    np.testing.assert_allclose(encoder.encode_documents(TEXTS).toarray(), want_docs, atol=1e-4)
    queries = ["cat on a rock", "the the sea"]
    want_queries = model.encode_query(queries, convert_to_tensor=True).to_dense().cpu().numpy()
    np.testing.assert_allclose(encoder.encode_queries(queries).toarray(), want_queries, atol=1e-6)
