"""Milvus as an index kind, on Milvus Lite: the same top-10 ids and scores as FAISS Flat (dense) and the
embedded inverted index (sparse), save/load, a resumed bulk load, the CLI, and refusals. A live server
is tested only when ``WINNOW_MILVUS_URI`` is set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from indexes.factory import index_factory, index_spec, load_index, milvus_options, parse_index_spec
from indexes.faiss_index import FaissIndex
from indexes.inverted import InvertedIndex
from indexes.milvus import MilvusIndex
from indexes.milvus_hybrid import MilvusHybridIndex
from retrieval import Hybrid, HybridConfig, MilvusHybrid, load_retriever
from retrieval.cli import main
from retrieval.encoders import load_encoder
from retrieval.fusion import fuse
from retrieval.retriever import Retriever
from tests.test_onnx import build_tiny_mlm

N_DOCS, DIM, VOCAB = 1500, 24, 400


@pytest.fixture(scope="module")
def dense_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(N_DOCS, DIM)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:40] + 0.3 * rng.normal(size=(40, DIM)).astype(np.float32)
    return docs, queries, [f"doc-{i}" for i in range(N_DOCS)]


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    return build_tiny_mlm(tmp_path_factory.mktemp("milvus-mlm") / "mlm")


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_dense_top10_equals_faiss_flat(dense_data, metric: str) -> None:
    docs, queries, ids = dense_data
    milvus = MilvusIndex(DIM, metric)
    milvus.add(docs[:700], ids[:700])  # two batches, flushed before the first search
    milvus.add(docs[700:], ids[700:])
    flat = FaissIndex(DIM, "Flat", metric=metric)
    flat.add(docs, ids)
    got, want = milvus.search(queries, 10), flat.search(queries, 10)
    assert got.ids == want.ids
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_sparse_top10_equals_the_inverted_index() -> None:
    docs = sparse.random(N_DOCS, VOCAB, density=0.03, random_state=1, format="csr", dtype=np.float32)
    queries = sparse.random(30, VOCAB, density=0.03, random_state=2, format="lil", dtype=np.float32)
    queries[3, :] = 0  # an empty query finds nothing, in both
    ids = [f"doc-{i}" for i in range(N_DOCS)]
    milvus = MilvusIndex(VOCAB, sparse=True, batch_size=400)
    milvus.add(docs, ids)
    inverted = InvertedIndex(VOCAB)
    inverted.add(docs, ids)
    got, want = milvus.search(queries.tocsr(), 10), inverted.search(queries.tocsr(), 10)
    assert got.ids == want.ids and got.ids[3] == []
    finite = np.isfinite(want.scores)
    assert (np.isfinite(got.scores) == finite).all()
    np.testing.assert_allclose(got.scores[finite], want.scores[finite], rtol=1e-5)


def test_save_load_round_trip_keeps_lite_inside_the_folder(dense_data, tmp_path: Path) -> None:
    docs, queries, ids = dense_data
    index = MilvusIndex(DIM)
    index.add(docs, ids)
    before = index.search(queries, 10)
    index.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["kind"] == "milvus" and meta["uri"] is None and meta["size"] == N_DOCS
    assert meta["schema"]["fields"][1] == {"name": "vector", "type": "FLOAT_VECTOR", "dim": DIM}
    assert meta["schema"]["indexes"] == [{"field": "vector", "type": "FLAT", "metric": "IP", "params": {}}]
    assert (tmp_path / "m" / "milvus.db").is_dir()
    assert index.search(queries, 10).ids == before.ids, "the index still searches after save"
    index.close()
    again = load_index(tmp_path / "m")
    assert isinstance(again, MilvusIndex) and again.ids == ids
    assert again.search(queries, 10).ids == before.ids
    again.close()


def test_a_rerun_bulk_load_skips_the_rows_already_inserted(dense_data, tmp_path: Path, caplog) -> None:
    docs, queries, ids = dense_data
    uri = str(tmp_path / "server.db")  # a Lite file named as a URI: what a server keeps between runs
    first = MilvusIndex(DIM, uri=uri, collection="corpus")
    first.add(docs[:500], ids[:500])  # then the run is killed
    first.flush()
    first.close()
    second = MilvusIndex(DIM, uri=uri, collection="corpus")
    with caplog.at_level("INFO", logger="indexes.milvus_collection"):
        second.add(docs, ids)
    assert "500 of 1500 ids already in collection 'corpus': skipped" in caplog.text
    flat = FaissIndex(DIM, "Flat")
    flat.add(docs, ids)
    assert second.search(queries, 10).ids == flat.search(queries, 10).ids
    assert second.connect().get_collection_stats("corpus")["row_count"] == N_DOCS
    second.close()


def test_a_collection_with_another_schema_is_refused(tmp_path: Path) -> None:
    uri = str(tmp_path / "server.db")
    index = MilvusIndex(DIM, uri=uri, collection="c")
    index.connect()
    index.close()
    with pytest.raises(
        ValueError, match=r"collection 'c' .* exists with field 'vector' = FLOAT_VECTOR\(24\)"
    ):
        MilvusIndex(DIM + 1, uri=uri, collection="c").connect()


def test_specs_and_options() -> None:
    assert parse_index_spec("milvus") == ("milvus", "")
    assert milvus_options("HNSW,M=16,efConstruction=200") == ("HNSW", {"M": 16, "efConstruction": 200})
    index = index_factory("milvus:IVF_FLAT,nlist=8", DIM, search_params={"nprobe": 4})
    assert isinstance(index, MilvusIndex) and index_spec(index) == "milvus:IVF_FLAT,nlist=8"
    with pytest.raises(ValueError, match="'M16' is not NAME=VALUE"):
        parse_index_spec("milvus:HNSW,M16")
    with pytest.raises(ValueError, match="index type 'HNSW' for a sparse collection: expected one of"):
        index_factory("milvus:HNSW", VOCAB, sparse=True)
    with pytest.raises(ValueError, match="sparse Milvus collections score inner products"):
        MilvusIndex(VOCAB, "l2", sparse=True)


def test_retrievers_on_milvus_match_faiss_and_inverted(tiny_encoder, mlm, tiny_beir, tmp_path) -> None:
    queries = ["cat on a rock", "heart disease from salt", "vitamin and bone"]
    for encoder, exact in ((tiny_encoder, "faiss:Flat"), (load_encoder(mlm), "inverted")):
        milvus = Retriever(encoder, index="milvus").build(tiny_beir, progress=False)
        reference = Retriever(encoder, index=exact).build(tiny_beir, progress=False)
        got, want = milvus.search(queries, k=5), reference.search(queries, k=5)
        assert got.ids == want.ids
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-6)
        milvus.save(tmp_path / encoder.kind)
        again = Retriever.load(tmp_path / encoder.kind)
        assert again.search(queries, k=5).ids == want.ids
        assert again.index_spec == (
            "milvus:FLAT" if encoder.kind == "dense" else "milvus:SPARSE_INVERTED_INDEX"
        )


def test_cli_index_search_and_eval_on_milvus(tiny_model_dir, tiny_beir, tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    argv = ["-q", "index", "--model", str(tiny_model_dir), "--corpus", str(tiny_beir), "--output", str(out)]
    assert main([*argv, "--index", "milvus"]) == 0
    assert main(["-q", "search", "--index-dir", str(out), "--query", "vitamin and bone", "-k", "2"]) == 0
    assert "Q0" in capsys.readouterr().out
    scores = {}
    for spec in ("milvus", "faiss:Flat"):
        result = tmp_path / f"{spec}.json"
        args = [
            "-q",
            "eval",
            "beir",
            "--model",
            str(tiny_model_dir),
            "--data",
            str(tiny_beir),
            "--index",
            spec,
        ]
        assert main([*args, "--output", str(result)]) == 0
        scores[spec] = json.loads(result.read_text())["metrics"]["ndcg@10"]
    assert scores["milvus"] == pytest.approx(scores["faiss:Flat"], abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--milvus-uri", "http://localhost:19530"], "only with --index milvus"),
        (["--index", "milvus", "--milvus-uri", "http://root:Milvus@host:19530"], "no credentials in the URI"),
        (["--index", "milvus", "--milvus-uri", "http://host:19530?token=x"], "no credentials in the URI"),
    ],
)
def test_cli_refuses_bad_milvus_uris(tiny_model_dir, tiny_beir, tmp_path, capsys, extra, message) -> None:
    argv = [
        "index",
        "--model",
        str(tiny_model_dir),
        "--corpus",
        str(tiny_beir),
        "--output",
        str(tmp_path / "x"),
    ]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not os.environ.get("WINNOW_MILVUS_URI"), reason="set WINNOW_MILVUS_URI to test a server")
def test_live_server_equals_faiss_flat(dense_data) -> None:  # pragma: no cover - needs a server
    docs, queries, ids = dense_data
    index = MilvusIndex(DIM, uri=os.environ["WINNOW_MILVUS_URI"], collection=f"winnow_test_{os.getpid()}")
    try:
        index.add(docs, ids)
        flat = FaissIndex(DIM, "Flat")
        flat.add(docs, ids)
        assert index.search(queries, 10).ids == flat.search(queries, 10).ids
    finally:
        index.connect().drop_collection(index.collection)
        index.close()


def sparse_data(n: int, seed: int, empty_row: int | None = None) -> sparse.csr_matrix:
    matrix = sparse.random(n, VOCAB, density=0.03, random_state=seed, format="lil", dtype=np.float32)
    if empty_row is not None:
        matrix[empty_row, :] = 0
    return matrix.tocsr()


@pytest.mark.parametrize("depth", [30, 200])
def test_milvus_rrf_equals_winnow_rrf(dense_data, depth: int) -> None:
    """Milvus's RRFRanker over a dense and a sparse field gives Winnow's RRF of FAISS Flat and the
    inverted index: the same ids with the same scores (a query without sparse terms included)."""
    docs, queries, ids = dense_data
    doc_terms, query_terms = sparse_data(N_DOCS, 1), sparse_data(len(queries), 2, empty_row=5)
    milvus = MilvusHybridIndex(DIM, VOCAB, depth=depth)
    milvus.add(docs, doc_terms, ids)
    flat, inverted = FaissIndex(DIM, "Flat"), InvertedIndex(VOCAB)
    flat.add(docs, ids)
    inverted.add(doc_terms, ids)
    members = [flat.search(queries, depth), inverted.search(query_terms, depth)]
    want = fuse(members, sorted(ids), method="rrf", rrf_k=60, k=10)
    got = milvus.search(queries, query_terms, 10)
    for q in range(len(queries)):
        ours = dict(zip(want.ids[q], want.scores[q].tolist(), strict=True))
        theirs = dict(zip(got.ids[q], got.scores[q].tolist(), strict=True))
        np.testing.assert_allclose(sorted(theirs.values()), sorted(ours.values()), rtol=1e-6)
        tied_at_cut = sorted(ours.values())[0]
        for doc, score in theirs.items():
            assert doc in ours or score == pytest.approx(tied_at_cut), (q, doc)


def test_milvus_hybrid_folder_round_trip_and_refusals(dense_data, tmp_path: Path) -> None:
    docs, queries, ids = dense_data
    terms = sparse_data(N_DOCS, 1)
    index = MilvusHybridIndex(DIM, VOCAB, fusion="weighted", weights=[0.7, 0.3], depth=50)
    index.add(docs, terms, ids)
    query_terms = sparse_data(len(queries), 2)
    before = index.search(queries, query_terms, 10)
    assert (np.diff(before.scores, axis=1) <= 1e-6).all() and (before.scores[:, 0] <= 1.0).all()
    index.save(tmp_path / "h")
    index.close()
    meta = json.loads((tmp_path / "h" / "meta.json").read_text())
    assert meta["kind"] == "milvus-hybrid" and meta["fusion"] == "weighted" and meta["weights"] == [0.7, 0.3]
    assert [f["name"] for f in meta["schema"]["fields"]] == ["id", "dense", "sparse"]
    again = MilvusHybridIndex.load(tmp_path / "h")
    assert again.search(queries, query_terms, 10).ids == before.ids
    again.close()
    with pytest.raises(ValueError, match="RRFRanker weighs its requests equally"):
        MilvusHybridIndex(DIM, VOCAB, fusion="rrf", weights=[0.6, 0.4])
    with pytest.raises(ValueError, match="Milvus fusion 'convex': expected one of rrf, weighted"):
        MilvusHybridIndex(DIM, VOCAB, fusion="convex")


def test_milvus_hybrid_retriever_equals_hybrid_rrf(tiny_model_dir, mlm, tiny_beir, tmp_path, capsys) -> None:
    queries = ["cat on a rock", "heart disease from salt", "vitamin and bone"]
    members = ["--member", f"dense={tiny_model_dir}", "--member", f"sparse={mlm}", "--depth", "4"]
    out = tmp_path / "mh"
    argv = ["-q", "index", *members, "--corpus", str(tiny_beir), "--output", str(out), "--index", "milvus"]
    assert main(argv) == 0
    milvus = load_retriever(out)
    assert isinstance(milvus, MilvusHybrid) and milvus.index_spec == "milvus-hybrid:rrf(depth=4)"
    dense, sparse_ = load_encoder(tiny_model_dir), load_encoder(mlm)
    ours = Hybrid([Retriever(dense), Retriever(sparse_)], fusion="rrf", depth=4).build(
        tiny_beir, progress=False
    )
    got, want = milvus.search(queries, k=4), ours.search(queries, k=4)
    for q in range(len(queries)):
        np.testing.assert_allclose(sorted(got.scores[q]), sorted(want.scores[q]), rtol=1e-6)
    assert main(["-q", "search", "--index-dir", str(out), "--query", "vitamin and bone", "-k", "2"]) == 0
    assert "Q0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="one dense=MODEL and one sparse=MODEL"):
        MilvusHybrid.from_config(HybridConfig.from_args([f"dense={tiny_model_dir}", "bm25"]))
    bad = [
        "index",
        "--member",
        f"dense={tiny_model_dir}",
        "--member",
        f"sparse={mlm}",
        "--corpus",
        str(tiny_beir),
    ]
    assert main([*bad, "--output", str(tmp_path / "x"), "--index", "milvus:HNSW"]) == 2
    assert "a Milvus hybrid is exact (--index milvus)" in capsys.readouterr().err


def test_requests_are_cut_into_query_batches_and_joined_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import indexes.milvus_collection as collection

    monkeypatch.setattr(collection, "QUERY_BATCH", 3)
    calls: list[list[int]] = []

    def call(chunk):
        calls.append(list(chunk))
        return [10 * i for i in chunk]

    assert collection.in_batches(list(range(7)), call) == [0, 10, 20, 30, 40, 50, 60]
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]
    assert collection.in_batches([], call) == [] and len(calls) == 3
