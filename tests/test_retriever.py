"""Encoder, chunked embedding with resume, and Retriever build/search/save/load on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexes.factory import parse_index_spec
from retrieval.corpus import document_text, load_corpus
from retrieval.embed import PROGRESS_FILE, embed_corpus
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever


def test_encoder_outputs_normalised_float32(tiny_encoder) -> None:
    assert tiny_encoder.similarity == "cosine" and tiny_encoder.dim == 32
    q = tiny_encoder.encode_queries(["cat on a rock", "blue sea"])
    d = tiny_encoder.encode_documents(["the cat"])
    assert q.dtype == np.float32 and q.shape == (2, 32) and d.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    assert tiny_encoder.encode_queries([]).shape == (0, 32)


def test_bad_model_paths_are_explained(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model directory ./no/such/model not found"):
        load_encoder("./no/such/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither modules.json"):
        load_encoder(tmp_path / "empty")


def test_exact_text_finds_its_document(tiny_encoder, tiny_beir) -> None:
    retriever = Retriever(tiny_encoder, index="faiss:Flat").build(tiny_beir, progress=False)
    docs = load_corpus(tiny_beir)
    hits = retriever.search({d["_id"]: document_text(d) for d in docs}, k=3)
    assert [ids[0] for ids in hits.ids] == [d["_id"] for d in docs]
    np.testing.assert_allclose(hits.scores[:, 0], 1.0, atol=1e-5)  # cosine of a text with itself
    assert (np.diff(hits.scores, axis=1) <= 1e-6).all()  # best first


def test_save_and_load_give_the_same_hits(tiny_encoder, tiny_beir, tmp_path) -> None:
    retriever = Retriever(tiny_encoder, index="faiss:HNSW8").build(tiny_beir, progress=False)
    retriever.save(tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["encoder"] == str(tiny_encoder.name) and meta["dim"] == 32 and meta["metric"] == "ip"
    loaded = Retriever.load(tmp_path / "r")
    queries = ["cat on a rock", "vitamin and bone"]
    a, b = retriever.search(queries, k=4), loaded.search(queries, k=4)
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_embedding_resumes_after_interruption(tiny_encoder, tiny_beir, tmp_path) -> None:
    full = embed_corpus(tiny_encoder, tiny_beir, progress=False)
    calls = {"n": 0}

    class Flaky:
        """Wraps the encoder and dies on the third call (the third chunk)."""

        name, dim, similarity, kind = tiny_encoder.name, tiny_encoder.dim, "cosine", "dense"

        def encode_documents(self, texts, batch_size=64):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return tiny_encoder.encode_documents(texts, batch_size)

    with pytest.raises(KeyboardInterrupt):
        embed_corpus(Flaky(), tiny_beir, out_dir=tmp_path / "emb", chunk_size=2, batch_size=1, progress=False)
    (progress_file,) = (tmp_path / "emb").glob(f"*/{PROGRESS_FILE}")  # one folder per fingerprint
    assert json.loads(progress_file.read_text())["chunks_done"] == 2
    calls["n"] = 10  # no more failures; count what the resumed run encodes
    resumed = embed_corpus(
        Flaky(), tiny_beir, out_dir=tmp_path / "emb", chunk_size=2, batch_size=1, progress=False
    )
    assert calls["n"] == 11  # only the last of three chunks was encoded again
    assert resumed.ids == full.ids
    np.testing.assert_allclose(np.asarray(resumed.vectors), full.vectors, atol=1e-6)


def test_changed_corpus_is_not_resumed(tiny_encoder, tiny_beir, tmp_path) -> None:
    embed_corpus(tiny_encoder, tiny_beir, out_dir=tmp_path / "emb", chunk_size=2, progress=False)
    docs = load_corpus(tiny_beir)
    docs[0]["text"] = "snow and rain in the cold sky"
    again = embed_corpus(tiny_encoder, docs, out_dir=tmp_path / "emb", chunk_size=2, progress=False)
    np.testing.assert_allclose(
        again.vectors[0], tiny_encoder.encode_documents([document_text(docs[0])])[0], atol=1e-6
    )


def test_ivf_index_is_trained_from_the_corpus(tiny_encoder, tiny_beir) -> None:
    retriever = Retriever(tiny_encoder, index="faiss:IVF2,Flat", search_params={"nprobe": 2})
    retriever.build(tiny_beir, progress=False)
    assert retriever.index.is_trained and len(retriever.index) == 6


def test_index_spec_errors() -> None:
    assert parse_index_spec("faiss:IVF16,PQ4") == ("faiss", "IVF16,PQ4")
    assert parse_index_spec("faiss") == ("faiss", "Flat")
    with pytest.raises(ValueError, match="unknown index 'annoy'"):
        parse_index_spec("annoy")
