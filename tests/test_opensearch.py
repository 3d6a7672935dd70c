"""OpenSearch export: bulk NDJSON round-trip, the rank_features mapping, the neural_sparse query, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import sparse

from indexes.opensearch import index_body, neural_sparse_query, read_bulk, write_bulk

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
            ]
        )
        == 0
    )
    ids, maps = read_bulk(tmp_path / "os" / "bulk.ndjson")
    assert len(ids) == 6 and all(maps) and all(w > 0 for m in maps for w in m.values())
    assert json.loads((tmp_path / "os" / "index.json").read_text()) == index_body()
    assert "query_tokens" in (tmp_path / "os" / "query.json").read_text()
