"""Export sparse document vectors for OpenSearch neural sparse search (``rank_features`` fields).

Writes what a cluster ingests with the ``_bulk`` API: NDJSON pairs of an action line and a document
``{"id", "<text_field>", "<vector_field>": {token: weight}}``, plus the index body (mapping with a
``rank_features`` field) and a sample ``neural_sparse`` query with ``query_tokens``. Weights are the
encoder's own floats (positive, as ``rank_features`` requires); zero weights are dropped.

Example:
    >>> write_bulk("docs.ndjson", doc_csr, ids, encoder.vocabulary, index="scifact", texts=texts)
    >>> json.dumps(index_body())                 # PUT /scifact
    >>> json.dumps(neural_sparse_query(query_csr[0], encoder.vocabulary))  # GET /scifact/_search
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexes.inverted import check_sparse

VECTOR_FIELD = "passage_embedding"
TEXT_FIELD = "passage_text"


def token_weights(row: Any, vocabulary: Sequence[str], decimals: int = 6) -> dict[str, float]:
    """``{token: weight}`` of one CSR row (positive weights only)."""
    return {
        vocabulary[t]: round(float(w), decimals)
        for t, w in zip(row.indices, row.data, strict=True)
        if w > 0 and round(float(w), decimals) > 0
    }


def index_body(vector_field: str = VECTOR_FIELD, text_field: str = TEXT_FIELD) -> dict[str, Any]:
    """The ``PUT /<index>`` body: a ``rank_features`` vector field, the text and the document id."""
    return {
        "mappings": {
            "properties": {
                "id": {"type": "keyword"},
                text_field: {"type": "text"},
                vector_field: {"type": "rank_features"},
            }
        }
    }


def neural_sparse_query(
    query: Any, vocabulary: Sequence[str], vector_field: str = VECTOR_FIELD, size: int = 10
) -> dict[str, Any]:
    """A ``_search`` body with raw ``query_tokens`` (an inference-free query: its IDF-weighted tokens)."""
    row = check_sparse(query, len(vocabulary), "query")
    if row.shape[0] != 1:
        raise ValueError(f"one query vector expected; got {row.shape[0]}")
    tokens = token_weights(row[0], vocabulary)
    return {"size": size, "query": {"neural_sparse": {vector_field: {"query_tokens": tokens}}}}


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


__all__ = ["index_body", "neural_sparse_query", "read_bulk", "token_weights", "write_bulk"]
