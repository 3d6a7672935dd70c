"""Query weights re-estimated on the indexed corpus (``Retriever(..., query_weights="corpus")``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import sparse

from retrieval.cli import main
from retrieval.corpus import document_text, iter_corpus
from retrieval.encoders import load_encoder
from retrieval.query_weights import DocumentFrequencies, idf_from_df, reweight
from retrieval.retriever import Retriever
from tests.test_onnx import build_tiny_mlm


@pytest.fixture(scope="module")
def inference_free(tmp_path_factory):
    """A tiny inference-free model whose IDF table comes from texts unlike the test corpus."""
    from trainers.sparse_model import idf_for, inference_free_model

    root = tmp_path_factory.mktemp("query-weights")
    mlm = build_tiny_mlm(root / "mlm")
    idf = idf_for(str(mlm), ["the cat", "the dog", "fish in the sea", "heart disease"])
    model = inference_free_model(str(mlm), idf)
    model.save_pretrained(str(root / "if"))
    return root / "if"


def test_document_frequencies_count_distinct_tokens_per_document(inference_free) -> None:
    encoder = load_encoder(inference_free)
    counts = DocumentFrequencies(encoder.tokenizer)
    counts.update(["the cat the cat", "the dog", "fish"])
    counts.update([])
    vocab = encoder.tokenizer.get_vocab()
    assert counts.n_documents == 3
    assert counts.df[vocab["the"]] == 2 and counts.df[vocab["cat"]] == 1 and counts.df[vocab["sea"]] == 0
    np.testing.assert_array_equal(counts.idf(), idf_from_df(counts.df, 3))
    assert counts.idf()[vocab["cat"]] > counts.idf()[vocab["the"]]
    kept = counts.idf()
    assert counts.idf() is kept  # computed once between updates
    counts.update(["the sea"])
    assert counts.idf()[vocab["sea"]] < kept[vocab["sea"]] and counts.n_documents == 4
    with pytest.raises(ValueError, match="tokenizer has"):
        DocumentFrequencies(encoder.tokenizer, np.zeros(3, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="n_documents=1"):
        DocumentFrequencies(encoder.tokenizer, np.full(len(encoder.tokenizer), 2), 1)


def test_reweight_keeps_the_tokens_and_replaces_their_weights() -> None:
    queries = sparse.csr_matrix(np.array([[1.0, 0, 2.0, 0], [0, 3.0, 0, 1.0]], dtype=np.float32))
    out = reweight(queries, np.array([5.0, 0.0, 7.0, 9.0], dtype=np.float32))
    np.testing.assert_array_equal(out.toarray(), [[5.0, 0, 7.0, 0], [0, 0, 0, 9.0]])
    assert out.nnz == 3  # a token the table zeroes is dropped
    np.testing.assert_array_equal(queries.toarray()[0], [1.0, 0, 2.0, 0])  # the input is untouched
    with pytest.raises(ValueError, match="4 dimensions; the table has 2"):
        reweight(queries, np.ones(2, dtype=np.float32))


def test_corpus_query_weights_search_with_idf_over_the_indexed_documents(
    inference_free, tiny_beir, tmp_path
) -> None:
    encoder = load_encoder(inference_free)
    retriever = Retriever(encoder, index="inverted", query_weights="corpus").build(tiny_beir, progress=False)
    texts = [document_text(d) for d in iter_corpus(tiny_beir)]
    expected = DocumentFrequencies(encoder.tokenizer)
    expected.update(texts)
    queries = ["cat on a rock", "heart disease from salt", "vitamin and bone"]
    q = encoder.encode_queries(queries)
    np.testing.assert_allclose(reweight(q, expected.idf()).data, expected.idf()[q.indices], rtol=1e-6)
    assert not np.allclose(encoder.query_weights[q.indices], expected.idf()[q.indices])  # the test can fail
    scores = (reweight(q, expected.idf()) @ encoder.encode_documents(texts).T).toarray()
    hits = retriever.search(queries, k=3)
    np.testing.assert_allclose(hits.scores, -np.sort(-scores, axis=1)[:, :3], rtol=1e-5)

    saved = retriever.save(tmp_path / "index")
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["query_weights"] == "corpus" and meta["document_frequency_documents"] == len(texts)
    np.testing.assert_array_equal(np.load(saved / meta["document_frequencies"]), expected.df)
    loaded = Retriever.load(saved)
    assert loaded.query_weights == "corpus"
    again = loaded.search(queries, k=3)
    assert again.ids == hits.ids
    np.testing.assert_allclose(again.scores, hits.scores, rtol=1e-6)
    model_hits = Retriever(encoder, index="inverted").build(tiny_beir, progress=False).search(queries, k=3)
    assert not np.allclose(model_hits.scores, hits.scores)


def test_corpus_query_weights_need_an_inference_free_model(tiny_encoder, tmp_path) -> None:
    siamese = load_encoder(build_tiny_mlm(tmp_path / "mlm"))
    with pytest.raises(ValueError, match="inference-free sparse model"):
        Retriever(siamese, index="inverted", query_weights="corpus")
    with pytest.raises(ValueError, match="inference-free sparse model"):
        Retriever(tiny_encoder, query_weights="corpus")
    with pytest.raises(ValueError, match="query_weights='idf'; expected one of model, corpus"):
        Retriever(siamese, index="inverted", query_weights="idf")


def test_cli_index_with_corpus_query_weights(inference_free, tiny_beir, tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    args = ["index", "--model", str(inference_free), "--corpus", str(tiny_beir), "--output", str(out)]
    assert main([*args, "--query-weights", "corpus"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["query_weights"] == "corpus" and (out / "document_frequencies.npy").is_file()
    capsys.readouterr()
    assert main(["search", "--index-dir", str(out), "--query", "cat on a rock", "-k", "2"]) == 0
    assert "d1" in capsys.readouterr().out


def test_corpus_counts_must_match_the_index(inference_free, tiny_beir, tmp_path) -> None:
    encoder = load_encoder(inference_free)
    built = Retriever(encoder, index="inverted").build(tiny_beir, progress=False)
    with pytest.raises(ValueError, match="counts 0 documents but the index holds 6"):
        Retriever(encoder, index=built.index, query_weights="corpus")
    saved = Retriever(encoder, index="inverted", query_weights="corpus").build(tiny_beir, progress=False)
    folder = saved.save(tmp_path / "index")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "query_weights": "bm25"}))
    with pytest.raises(ValueError, match="query_weights = 'bm25'; expected one of model, corpus"):
        Retriever.load(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "document_frequency_documents": 5}))
    with pytest.raises(ValueError, match="counts 5 documents but the index holds 6"):
        Retriever.load(folder)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "document_frequencies.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="document_frequencies.npy: not a readable .npy array"):
        Retriever.load(folder)


def test_cli_refuses_query_weights_where_they_cannot_apply(
    inference_free, tiny_beir, tmp_path, capsys
) -> None:
    out = tmp_path / "idx"
    index = ["index", "--model", str(inference_free), "--corpus", str(tiny_beir), "--output", str(out)]
    assert main(index) == 0
    beir = ["eval", "beir", "--data", str(tiny_beir)]
    capsys.readouterr()
    assert main([*beir, "--index-dir", str(out), "--query-weights", "corpus"]) == 2
    assert "searches with the query weights it was built with" in capsys.readouterr().err
    assert main([*beir, "--model", "bm25", "--query-weights", "corpus"]) == 2
    assert "applies to an inference-free sparse --model" in capsys.readouterr().err
    result = tmp_path / "corpus.json"
    args = [*beir, "--model", str(inference_free), "--query-weights", "corpus", "--output", str(result)]
    assert main(args) == 0
    from eval.report import result_label

    record = json.loads(result.read_text())
    assert record["query_weights"] == "corpus" and result_label(record).endswith("[corpus query weights]")


def test_hybrid_and_reranked_systems_name_corpus_query_weights(inference_free) -> None:
    from retrieval.bm25 import BM25Retriever
    from retrieval.hybrid import Hybrid
    from retrieval.rerank import Reranker

    member = Retriever(load_encoder(inference_free), index="inverted", query_weights="corpus")
    hybrid = Hybrid([member, BM25Retriever()])
    assert "[corpus query weights]" in hybrid.name
    assert hybrid.describe()["members"][0]["query_weights"] == "corpus"
    assert "query_weights" not in hybrid.describe()["members"][1]
    reranker = Reranker.__new__(Reranker)
    reranker.retriever = member
    assert reranker.query_weights == "corpus"
