"""Export sparse document vectors for OpenSearch neural sparse search (``rank_features`` fields).

Writes what a cluster ingests with the ``_bulk`` API: NDJSON pairs of an action line and a document
``{"id", "<text_field>", "<vector_field>": {token: weight}}``, plus the index body (mapping with a
``rank_features`` field, and a ``knn_vector`` field for dense embeddings when asked) and search bodies:
``neural_sparse`` with ``query_tokens``, the same scoring as plain ``rank_feature`` clauses, and
``knn``, and the search pipeline of two-phase search (:func:`two_phase_pipeline`). Weights are the
encoder's own floats (positive, as ``rank_features`` requires); zero weights
are dropped. :func:`bulk_load` sends a bulk file with ``opensearch-py``; :mod:`indexes.feature_field`
scores the exported documents as the cluster's Lucene does, without a cluster.

Example:
    >>> write_bulk("docs.ndjson", doc_csr, ids, encoder.vocabulary, index="scifact", texts=texts)
    >>> json.dumps(index_body())                 # PUT /scifact
    >>> json.dumps(neural_sparse_query(query_csr[0], encoder.vocabulary))  # GET /scifact/_search
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.inverted import check_sparse
from indexes.two_phase import TwoPhase

logger = logging.getLogger(__name__)

VECTOR_FIELD = "passage_embedding"
TEXT_FIELD = "passage_text"
DENSE_FIELD = "passage_vector"


def token_weights(row: Any, vocabulary: Sequence[str], decimals: int = 6) -> dict[str, float]:
    """``{token: weight}`` of one CSR row (positive weights only)."""
    return {
        vocabulary[t]: round(float(w), decimals)
        for t, w in zip(row.indices, row.data, strict=True)
        if w > 0 and round(float(w), decimals) > 0
    }


def index_body(
    vector_field: str = VECTOR_FIELD,
    text_field: str = TEXT_FIELD,
    *,
    dense_dim: int | None = None,
    dense_field: str = DENSE_FIELD,
    space_type: str = "innerproduct",
) -> dict[str, Any]:
    """The ``PUT /<index>`` body: a ``rank_features`` vector field, the text and the document id, and
    with ``dense_dim`` a ``knn_vector`` field for dense embeddings (Lucene HNSW, approximate; ``space_type``
    ``innerproduct`` for normalised models, ``l2`` otherwise)."""
    properties: dict[str, Any] = {
        "id": {"type": "keyword"},
        text_field: {"type": "text"},
        vector_field: {"type": "rank_features"},
    }
    body: dict[str, Any] = {"mappings": {"properties": properties}}
    if dense_dim is not None:
        properties[dense_field] = {
            "type": "knn_vector",
            "dimension": int(dense_dim),
            "method": {"name": "hnsw", "engine": "lucene", "space_type": space_type},
        }
        body["settings"] = {"index": {"knn": True}}
    return body


def query_tokens(query: Any, vocabulary: Sequence[str]) -> dict[str, float]:
    """``{token: weight}`` of one query vector (an inference-free query: its IDF-weighted tokens)."""
    row = check_sparse(query, len(vocabulary), "query")
    if row.shape[0] != 1:
        raise ValueError(f"one query vector expected; got {row.shape[0]}")
    return token_weights(row[0], vocabulary)


def rank_feature_query(
    query: Any, vocabulary: Sequence[str], vector_field: str = VECTOR_FIELD, size: int = 10
) -> dict[str, Any]:
    """The same scoring without the neural-search plugin: a ``bool`` of ``should`` clauses, one
    ``rank_feature`` (linear, boosted by the query weight) per query token. A token with a dot
    (``.``, ``u.s``) cannot be named as ``field.token`` and is left out, with a warning; the
    ``neural_sparse`` query keeps it."""
    tokens = query_tokens(query, vocabulary)
    dotted = [t for t in tokens if "." in t]
    if dotted:
        logger.warning(
            "rank_feature query: %d tokens with a dot left out (%s)", len(dotted), ", ".join(dotted[:5])
        )
    clauses = [
        {"rank_feature": {"field": f"{vector_field}.{token}", "linear": {}, "boost": weight}}
        for token, weight in tokens.items()
        if "." not in token
    ]
    return {"size": size, "query": {"bool": {"should": clauses}}}


def knn_query(vector: Sequence[float], k: int = 10, dense_field: str = DENSE_FIELD) -> dict[str, Any]:
    """A ``knn`` ``_search`` body for one dense query embedding."""
    return {"size": k, "query": {"knn": {dense_field: {"vector": [float(x) for x in vector], "k": k}}}}


def neural_sparse_query(
    query: Any, vocabulary: Sequence[str], vector_field: str = VECTOR_FIELD, size: int = 10
) -> dict[str, Any]:
    """A ``_search`` body with raw ``query_tokens`` (an inference-free query: its IDF-weighted tokens)."""
    tokens = query_tokens(query, vocabulary)
    return {"size": size, "query": {"neural_sparse": {vector_field: {"query_tokens": tokens}}}}


def two_phase_pipeline(setting: TwoPhase | None = None, tag: str = "winnow-two-phase") -> dict[str, Any]:
    """The ``PUT /_search/pipeline/<name>`` body of OpenSearch's ``neural_sparse_two_phase_processor``
    (2.15+) with ``setting``'s parameters (default: the processor's own, prune ratio 0.4 and expansion
    rate 5); search with ``?search_pipeline=<name>`` or make it the index's ``search.default_pipeline``.
    :class:`~indexes.lucene.LuceneImpactIndex` searches the same way with ``search_params``."""
    setting = setting or TwoPhase()
    processor = {
        "tag": tag,
        "description": "heavy query tokens search, the light ones rescore their candidates",
        "enabled": True,
        "two_phase_parameter": setting.params(),
    }
    return {"request_processors": [{"neural_sparse_two_phase_processor": processor}]}


def write_bulk(
    path: str | Path,
    vectors: Any,
    ids: Sequence[str],
    vocabulary: Sequence[str],
    index: str,
    *,
    texts: Sequence[str] | None = None,
    vector_field: str = VECTOR_FIELD,
    text_field: str = TEXT_FIELD,
    append: bool = False,
) -> int:
    """Write (or append) ``_bulk`` NDJSON for documents; return the number written."""
    csr = check_sparse(vectors, len(vocabulary), "rank_features document vectors", non_negative=True)
    if len(ids) != csr.shape[0] or (texts is not None and len(texts) != csr.shape[0]):
        raise ValueError(f"got {len(ids)} ids and {len(texts or [])} texts for {csr.shape[0]} vectors")
    with Path(path).open("a" if append else "w", encoding="utf-8") as out:
        for i, doc_id in enumerate(ids):
            out.write(json.dumps({"index": {"_index": index, "_id": str(doc_id)}}) + "\n")
            source: dict[str, Any] = {"id": str(doc_id)}
            if texts is not None:
                source[text_field] = texts[i]
            source[vector_field] = token_weights(csr[i], vocabulary)
            out.write(json.dumps(source, ensure_ascii=False) + "\n")
    return csr.shape[0]


def read_bulk(path: str | Path, vector_field: str = VECTOR_FIELD) -> tuple[list[str], list[dict[str, float]]]:
    """Ids and ``{token: weight}`` maps back from a bulk file (for checks and tests)."""
    ids, vectors = [], []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if len(lines) % 2:
        raise ValueError(f"{path}: {len(lines)} lines; a bulk file holds action/document pairs")
    for number in range(0, len(lines), 2):
        action = json.loads(lines[number])
        if "index" not in action:
            raise ValueError(f"{path}:{number + 1}: expected an index action, got {lines[number][:80]}")
        ids.append(action["index"]["_id"])
        vectors.append(json.loads(lines[number + 1])[vector_field])
    return ids, vectors


def bulk_matrix(
    path: str | Path, vocabulary: Sequence[str], vector_field: str = VECTOR_FIELD
) -> tuple[list[str], Any]:
    """Ids and a CSR matrix over ``vocabulary`` from a bulk file: the documents exactly as exported."""
    from scipy import sparse

    ids, maps = read_bulk(path, vector_field)
    column = {token: i for i, token in enumerate(vocabulary)}
    rows, cols, vals = [], [], []
    for row, weights in enumerate(maps):
        for token, weight in weights.items():
            if token not in column:
                raise ValueError(f"{path}: document {ids[row]!r} has token {token!r}, not in the vocabulary")
            rows.append(row)
            cols.append(column[token])
            vals.append(weight)
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(ids), len(vocabulary)), dtype=np.float32)
    return ids, matrix


def bulk_load(client: Any, path: str | Path, chunk_size: int = 500) -> int:
    """Send a bulk file to a cluster with ``opensearch-py``'s ``helpers.bulk`` (``pip install
    opensearch-py``); return the number of documents indexed. ``client`` is an ``OpenSearch`` client."""
    from opensearchpy import helpers

    def actions():
        with Path(path).open(encoding="utf-8") as lines:
            for action_line in lines:
                meta = json.loads(action_line)["index"]
                yield {
                    "_op_type": "index",
                    "_index": meta["_index"],
                    "_id": meta["_id"],
                    "_source": json.loads(next(lines)),
                }

    indexed, _ = helpers.bulk(client, actions(), chunk_size=chunk_size, raise_on_error=True)
    return int(indexed)


__all__ = [
    "bulk_load",
    "bulk_matrix",
    "index_body",
    "knn_query",
    "neural_sparse_query",
    "query_tokens",
    "rank_feature_query",
    "read_bulk",
    "token_weights",
    "two_phase_pipeline",
    "write_bulk",
]
