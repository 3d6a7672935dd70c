"""OpenSearch export: bulk NDJSON round-trip, the rank_features mapping, the neural_sparse query, the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import sparse

from indexes.feature_field import FeatureFieldIndex, feature_precision
from indexes.inverted import InvertedIndex
from indexes.opensearch import (
    bulk_load,
    bulk_matrix,
    index_body,
    knn_query,
    neural_sparse_query,
    rank_feature_query,
    read_bulk,
    write_bulk,
)

VOCAB = ["[PAD]", "cat", "dog", "sun", "##s"]


def test_bulk_round_trip_keeps_ids_tokens_and_weights(tmp_path) -> None:
    vectors = sparse.csr_matrix(np.array([[0, 1.5, 0, 0.25, 0], [0, 0, 2.0, 0, 1.0]], dtype=np.float32))
    assert (
        write_bulk(tmp_path / "b.ndjson", vectors, ["d1", "d2"], VOCAB, "idx", texts=["a cat", "dogs"]) == 2
    )
    ids, maps = read_bulk(tmp_path / "b.ndjson")
    assert ids == ["d1", "d2"]
    assert maps == [{"cat": 1.5, "sun": 0.25}, {"dog": 2.0, "##s": 1.0}]
    first = json.loads((tmp_path / "b.ndjson").read_text().splitlines()[1])
    assert first["passage_text"] == "a cat" and first["id"] == "d1"
    write_bulk(tmp_path / "b.ndjson", vectors[:1], ["d3"], VOCAB, "idx", append=True)
    assert read_bulk(tmp_path / "b.ndjson")[0] == ["d1", "d2", "d3"]


def test_mapping_and_query_shapes() -> None:
    assert index_body()["mappings"]["properties"]["passage_embedding"] == {"type": "rank_features"}
    query = neural_sparse_query(sparse.csr_matrix(np.array([[0, 0, 0, 3.0, 0]])), VOCAB, size=5)
    assert query == {
        "size": 5,
        "query": {"neural_sparse": {"passage_embedding": {"query_tokens": {"sun": 3.0}}}},
    }


def test_negative_weights_and_mismatched_ids_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="non-negative weights"):
        write_bulk(tmp_path / "x", np.array([[0, -1.0, 0, 0, 0]]), ["a"], VOCAB, "idx")
    with pytest.raises(ValueError, match="got 2 ids and 0 texts for 1 vectors"):
        write_bulk(tmp_path / "x", np.array([[0, 1.0, 0, 0, 0]]), ["a", "b"], VOCAB, "idx")


def test_cli_exports_a_sparse_model(tmp_path, tiny_beir) -> None:
    from retrieval.cli import main
    from tests.test_onnx import build_tiny_mlm

    mlm = build_tiny_mlm(tmp_path / "mlm")
    assert (
        main(
            [
                "export",
                "opensearch",
                "--model",
                str(mlm),
                "--corpus",
                str(tiny_beir),
                "--out",
                str(tmp_path / "os"),
                "--prune-ratio",
                "0.5",
            ]
        )
        == 0
    )
    ids, maps = read_bulk(tmp_path / "os" / "bulk.ndjson")
    assert len(ids) == 6 and all(maps) and all(w > 0 for m in maps for w in m.values())
    assert json.loads((tmp_path / "os" / "index.json").read_text()) == index_body()
    assert "query_tokens" in (tmp_path / "os" / "query.json").read_text()
    assert "rank_feature" in (tmp_path / "os" / "query_rank_feature.json").read_text()
    pipeline = json.loads((tmp_path / "os" / "search_pipeline.json").read_text())
    processor = pipeline["request_processors"][0]["neural_sparse_two_phase_processor"]
    assert processor["two_phase_parameter"] == {
        "prune_ratio": 0.5,
        "expansion_rate": 5.0,
        "max_window_size": 10_000,
    }


def test_export_refuses_a_bad_two_phase_setting_before_loading_the_model(tmp_path, capsys) -> None:
    from retrieval.cli import main

    args = ["export", "opensearch", "--model", "absent", "--corpus", "c", "--out", str(tmp_path / "o")]
    assert main([*args, "--prune-ratio", "2"]) == 2
    assert "prune_ratio must be in [0, 1]; got 2.0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_dense_mapping_rank_feature_and_knn_queries() -> None:
    body = index_body(dense_dim=384)
    assert body["settings"] == {"index": {"knn": True}}
    assert body["mappings"]["properties"]["passage_vector"] == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {"name": "hnsw", "engine": "lucene", "space_type": "innerproduct"},
    }
    query = rank_feature_query(sparse.csr_matrix(np.array([[0, 0.5, 0, 3.0, 0]])), VOCAB, size=5)
    assert query["size"] == 5
    assert query["query"]["bool"]["should"] == [
        {"rank_feature": {"field": "passage_embedding.cat", "linear": {}, "boost": 0.5}},
        {"rank_feature": {"field": "passage_embedding.sun", "linear": {}, "boost": 3.0}},
    ]
    assert knn_query([0.5, -1.0], k=3) == {
        "size": 3,
        "query": {"knn": {"passage_vector": {"vector": [0.5, -1.0], "k": 3}}},
    }


def test_feature_precision_keeps_nine_significant_bits() -> None:
    values = np.array([1.0, 1.1397161, 0.3, 1e-3], dtype=np.float32)
    kept = feature_precision(values)
    assert kept[0] == 1.0 and kept[1] == pytest.approx(1.1367188) and (kept <= values).all()
    assert (np.abs(values - kept) / values < 2.0**-8).all()


@pytest.mark.lucene
def test_lucene_feature_field_scores_the_exported_documents_as_the_inverted_index(tmp_path) -> None:
    """What a cluster would return for the exported bulk file (Lucene FeatureField, as OpenSearch's
    rank_features) equals the embedded inverted index over the same weights at FeatureField precision."""
    vocabulary = [f"tok{i}" for i in range(300)]
    docs = sparse.random(800, 300, density=0.04, random_state=3, format="csr", dtype=np.float32)
    queries = sparse.random(25, 300, density=0.03, random_state=4, format="csr", dtype=np.float32) * 8
    ids = [f"doc-{i}" for i in range(800)]
    write_bulk(tmp_path / "bulk.ndjson", docs, ids, vocabulary, "idx")
    exported_ids, exported = bulk_matrix(tmp_path / "bulk.ndjson", vocabulary)
    assert exported_ids == ids
    lucene = FeatureFieldIndex(vocabulary)
    lucene.add(exported, exported_ids)
    stored = exported.copy()
    stored.data = feature_precision(stored.data)
    inverted = InvertedIndex(300)
    inverted.add(stored, ids)
    got, want = lucene.search(queries, 10), inverted.search(queries, 10)
    assert got.ids == want.ids
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    lucene.close()


@pytest.mark.skipif(
    not os.environ.get("WINNOW_OPENSEARCH_URL"), reason="set WINNOW_OPENSEARCH_URL to test a cluster"
)
def test_live_cluster_returns_the_feature_field_ranking(
    tmp_path,
) -> None:  # pragma: no cover - needs a cluster
    from opensearchpy import OpenSearch

    vocabulary = [f"tok{i}" for i in range(300)]
    docs = sparse.random(500, 300, density=0.04, random_state=3, format="csr", dtype=np.float32)
    query = sparse.random(1, 300, density=0.05, random_state=5, format="csr", dtype=np.float32)
    ids = [f"doc-{i}" for i in range(500)]
    name = f"winnow-test-{os.getpid()}"
    write_bulk(tmp_path / "bulk.ndjson", docs, ids, vocabulary, name)
    client = OpenSearch(os.environ["WINNOW_OPENSEARCH_URL"])
    client.indices.create(name, body=index_body())
    try:
        assert bulk_load(client, tmp_path / "bulk.ndjson") == 500
        client.indices.refresh(name)
        found = client.search(index=name, body=rank_feature_query(query, vocabulary, size=10))
        lucene = FeatureFieldIndex(vocabulary)
        lucene.add(*reversed(bulk_matrix(tmp_path / "bulk.ndjson", vocabulary)))
        assert [h["_id"] for h in found["hits"]["hits"]] == lucene.search(query, 10).ids[0]
    finally:
        client.indices.delete(name)
