"""Lucene ``FeatureField`` scoring: what an OpenSearch ``rank_features`` field and a ``neural_sparse``
(or ``rank_feature`` linear) query compute, reproduced locally through pyserini's Lucene.

OpenSearch stores each token weight of a ``rank_features`` field as a Lucene ``FeatureField``, which
keeps 9 significant bits of the float (the low 15 bits of its IEEE-754 pattern are dropped), and scores
a query as the sum over its tokens of ``query weight x stored weight``. :class:`FeatureFieldIndex` builds
such a Lucene index in memory from the same documents :mod:`indexes.opensearch` exports and searches it
with the same query, so what a cluster would return is checked without a cluster;
:func:`feature_precision` applies the same truncation in numpy, so the embedded inverted index can
score exactly what Lucene stores.

Example:
    >>> index = FeatureFieldIndex(encoder.vocabulary)
    >>> index.add(doc_csr, doc_ids)
    >>> hits = index.search(query_csr, k=10)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from indexes import _jvm
from indexes.base import Hits, check_ids
from indexes.inverted import check_sparse

logger = logging.getLogger(__name__)

FIELD = "passage_embedding"
MAX_QUERY_WEIGHT = 64.0  # Lucene's FeatureField.newLinearQuery takes weights in (0, 64]


def feature_precision(values: np.ndarray) -> np.ndarray:
    """``values`` (float32) as a Lucene ``FeatureField`` stores them: the low 15 bits of each float's
    bit pattern cleared (9 significant bits)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits & np.uint32(0xFFFF8000)).view(np.float32)


class FeatureFieldIndex:
    """An in-memory Lucene index of ``FeatureField`` token weights, searched by summed linear queries.

    Args:
        vocabulary: the token string of every dimension (the feature names, as exported to OpenSearch).
        field: the ``rank_features`` field name.
    """

    def __init__(self, vocabulary: Sequence[str], field: str = FIELD) -> None:
        _jvm.pyserini()
        from jnius import autoclass

        self.vocabulary = list(vocabulary)
        self.dim = len(self.vocabulary)
        self.field = field
        self._java = {
            name: autoclass(path)
            for name, path in {
                "Document": "org.apache.lucene.document.Document",
                "FeatureField": "org.apache.lucene.document.FeatureField",
                "StringField": "org.apache.lucene.document.StringField",
                "Store": "org.apache.lucene.document.Field$Store",
                "BooleanQueryBuilder": "org.apache.lucene.search.BooleanQuery$Builder",
                "Occur": "org.apache.lucene.search.BooleanClause$Occur",
                "IndexSearcher": "org.apache.lucene.search.IndexSearcher",
                "DirectoryReader": "org.apache.lucene.index.DirectoryReader",
            }.items()
        }
        directory = autoclass("org.apache.lucene.store.ByteBuffersDirectory")()
        writer_config = autoclass("org.apache.lucene.index.IndexWriterConfig")()
        self._directory = directory
        self._writer = autoclass("org.apache.lucene.index.IndexWriter")(directory, writer_config)
        self._searcher: Any = None
        self._ids: list[str] = []

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, vectors: Any, ids: Sequence[str]) -> None:
        """Index each CSR row's positive weights as ``FeatureField(field, token, weight)``."""
        matrix = check_sparse(vectors, self.dim, "documents", non_negative=True)
        ids = check_ids(ids, matrix.shape[0], existing=set(self._ids))
        j = self._java
        for doc_id, start, end in zip(ids, matrix.indptr[:-1], matrix.indptr[1:], strict=True):
            document = j["Document"]()
            document.add(j["StringField"]("id", doc_id, j["Store"].YES))
            for t, w in zip(matrix.indices[start:end], matrix.data[start:end], strict=True):
                if w > 0:
                    document.add(j["FeatureField"](self.field, self.vocabulary[t], float(w)))
            self._writer.addDocument(document)
        self._ids.extend(ids)
        self._searcher = None

    def _open(self) -> Any:
        if self._searcher is None:
            from jnius import cast

            self._writer.commit()
            reader = self._java["DirectoryReader"].open(self._directory)
            self._searcher = self._java["IndexSearcher"](cast("org.apache.lucene.index.IndexReader", reader))
        return self._searcher

    def search(self, queries: Any, k: int) -> Hits:
        """Top ``k`` per query: the sum of ``FeatureField.newLinearQuery(field, token, weight)`` over its
        positive tokens (a query without one finds nothing)."""
        matrix = check_sparse(queries, self.dim, "queries")
        if matrix.nnz and matrix.data.max() > MAX_QUERY_WEIGHT:
            raise ValueError(f"a query weight is {matrix.data.max():g}; Lucene takes linear weights up to 64")
        searcher, j = self._open(), self._java
        stored = searcher.storedFields()
        ids: list[list[str]] = []
        scores = np.full((matrix.shape[0], k), -np.inf, dtype=np.float32)
        for row, (start, end) in enumerate(zip(matrix.indptr[:-1], matrix.indptr[1:], strict=True)):
            builder = j["BooleanQueryBuilder"]()
            clauses = 0
            for t, w in zip(matrix.indices[start:end], matrix.data[start:end], strict=True):
                if w > 0:
                    query = j["FeatureField"].newLinearQuery(self.field, self.vocabulary[t], float(w))
                    builder.add(query, j["Occur"].SHOULD)
                    clauses += 1
            found = searcher.search(builder.build(), k).scoreDocs if clauses else []
            ids.append([stored.document(hit.doc).get("id") for hit in found])
            scores[row, : len(found)] = [hit.score for hit in found]
        return Hits(ids, scores)

    def close(self) -> None:
        self._writer.close()
