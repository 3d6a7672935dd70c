"""One retriever vocabulary: the Encoder and Retriever protocols, ``load_retriever`` for any saved folder,
and ``evaluate`` scoring a loaded retriever without encoding the corpus again."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from eval.beir import evaluate
from retrieval import BM25Retriever, Retriever, RetrieverProtocol, load_retriever
from retrieval.corpus import load_corpus
from retrieval.encoders import DenseEncoder, Encoder, load_encoder
from retrieval.onnx_encoder import OnnxEncoder
from retrieval.sparse_encoder import SparseModelEncoder
from tests.test_onnx import build_tiny_mlm

QUERIES = ["cat on a rock", "vitamin and bone", "heart disease from salt"]


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    return build_tiny_mlm(tmp_path_factory.mktemp("mlm") / "mlm")


@pytest.mark.parametrize("cls", [DenseEncoder, SparseModelEncoder, OnnxEncoder])
def test_every_encoder_class_declares_the_protocol(cls) -> None:
    assert hasattr(cls, "vocabulary") and hasattr(cls, "dim")
    for method in ("encode_queries", "encode_documents"):
        params = inspect.signature(getattr(cls, method)).parameters
        assert list(params)[:3] == ["self", "texts", "batch_size"], f"{cls.__name__}.{method}"
        assert "progress" in params and params["progress"].default is False, f"{cls.__name__}.{method}"
        assert params["progress"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_loaded_encoders_satisfy_the_protocol(tiny_encoder, mlm) -> None:
    sparse = load_encoder(mlm)
    assert isinstance(tiny_encoder, Encoder) and isinstance(sparse, Encoder)
    assert tiny_encoder.vocabulary is None
    assert sparse.vocabulary is not None and len(sparse.vocabulary) == sparse.dim
    assert tiny_encoder.encode_queries(["cat"], progress=False).shape == (1, tiny_encoder.dim)
    assert sparse.encode_documents(["the cat"], batch_size=2, progress=False).shape == (1, sparse.dim)


def test_both_retrievers_satisfy_the_retriever_protocol(tiny_encoder) -> None:
    assert isinstance(Retriever(tiny_encoder), RetrieverProtocol)
    assert isinstance(BM25Retriever(), RetrieverProtocol)
    assert not isinstance(tiny_encoder, RetrieverProtocol)
    assert isinstance(inspect.getattr_static(BM25Retriever, "load"), classmethod)
    assert isinstance(inspect.getattr_static(Retriever, "load"), classmethod)


@pytest.mark.parametrize("index", ["faiss:Flat", "inverted"])
def test_load_retriever_gives_the_hits_of_the_saved_one(
    index, tiny_encoder, mlm, tiny_beir, tmp_path
) -> None:
    encoder = tiny_encoder if index.startswith("faiss") else load_encoder(mlm)
    retriever = Retriever(encoder, index=index).build(tiny_beir, progress=False)
    before = retriever.search(QUERIES, k=4)
    loaded = load_retriever(retriever.save(tmp_path / "r"))
    assert isinstance(loaded, Retriever) and isinstance(loaded, RetrieverProtocol)
    assert loaded.index_spec == index and loaded.name == encoder.name
    after = loaded.search(QUERIES, k=4)
    assert after.ids == before.ids
    np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5)


def test_load_retriever_rejects_folders_that_are_no_retriever(tmp_path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "meta.json").write_text('{"kind": "embeddings"}')
    with pytest.raises(ValueError, match=r"kind 'embeddings' is not a retriever's index; expected one of"):
        load_retriever(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a saved Winnow artefact"):
        load_retriever(tmp_path / "nothing")


def test_evaluate_scores_a_loaded_retriever_without_encoding_the_corpus(
    tiny_encoder, tiny_beir, tmp_path, monkeypatch
) -> None:
    built = Retriever(tiny_encoder).build(tiny_beir, progress=False)
    reference = evaluate(built, tiny_beir, build=False)
    fresh = evaluate(Retriever(tiny_encoder), tiny_beir)  # an empty index is built (the default)
    assert fresh["metrics"] == pytest.approx(reference["metrics"])
    loaded = load_retriever(built.save(tmp_path / "r"))

    def no_documents(*args, **kwargs):
        raise AssertionError("the corpus was encoded again")

    monkeypatch.setattr(loaded.encoder, "encode_documents", no_documents)
    result = evaluate(loaded, tiny_beir)
    assert result["metrics"] == pytest.approx(reference["metrics"])
    assert result["model"] == tiny_encoder.name and result["n_documents"] == 6


def test_evaluate_refuses_an_index_of_another_corpus(tiny_encoder, tiny_beir) -> None:
    partial = Retriever(tiny_encoder).build(load_corpus(tiny_beir)[:4], progress=False)
    with pytest.raises(ValueError, match=r"lacks 2 document\(s\) of .*corpus.jsonl \(first: 'd5'\)"):
        evaluate(partial, tiny_beir)


@pytest.mark.lucene
def test_load_retriever_opens_a_saved_bm25_folder(tiny_beir, tmp_path) -> None:
    pytest.importorskip("pyserini")
    bm25 = BM25Retriever(threads=1).build(tiny_beir)
    before = bm25.search(QUERIES, k=3)
    path = bm25.save(tmp_path / "bm25")
    loaded = load_retriever(path)
    assert isinstance(loaded, BM25Retriever) and loaded.index_spec == "lucene:bm25(k1=0.9,b=0.4)"
    after = loaded.search(QUERIES, k=3)
    assert after.ids == before.ids
    np.testing.assert_allclose(after.scores, before.scores, rtol=1e-6)
    assert sorted(loaded.index.ids) == sorted(d["_id"] for d in load_corpus(tiny_beir))
    result = evaluate(loaded, tiny_beir)  # scored as loaded: nothing is indexed again
    assert result["model"] == "bm25" and result["metrics"]["ndcg@10"] > 0.5
    with pytest.raises(ValueError, match="holds a BM25 index, which has no encoder"):
        Retriever.load(path)
