"""A Milvus collection as a Winnow index: Milvus Lite embedded in the index folder, or a server.

The same code serves both (:mod:`indexes.milvus_collection`). A collection holds string ids and one
vector field: ``FLOAT_VECTOR`` for dense encoders (index types ``FLAT``, exact and the default,
``HNSW``, ``IVF_FLAT`` where the server supports them) or ``SPARSE_FLOAT_VECTOR`` for sparse ones
(``SPARSE_INVERTED_INDEX``, exact), scored by inner product (dense ``l2`` too). Queries of an
inference-free sparse model are its IDF-weighted query tokens, so no model runs at query time. Inserts
go in batches; rows whose id the collection already holds are skipped, so an interrupted bulk load
resumes by running it again. The collection is flushed before the first search.

Example:
    >>> index = MilvusIndex(384)                                  # Milvus Lite, FLAT, inner product
    >>> index.add(doc_vectors, doc_ids)
    >>> hits = index.search(query_vectors, k=10)
    >>> index.save("runs/scifact-milvus")
    >>> remote = MilvusIndex(384, uri="http://milvus:19530", collection="scifact")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Hits
from indexes.io import meta_value
from indexes.milvus_collection import MilvusCollection, VectorField, in_batches

KIND = "milvus"
VECTOR_FIELD = "vector"


class MilvusIndex(MilvusCollection):
    """The :class:`~indexes.base.Index` protocol over one Milvus collection with one vector field.

    Args:
        dim: vector dimension (the vocabulary size of a sparse index).
        metric: ``ip``; dense collections may also use ``l2``.
        sparse: a ``SPARSE_FLOAT_VECTOR`` collection (sparse encoders) instead of a dense one.
        index_type: the Milvus index (default ``FLAT`` dense, ``SPARSE_INVERTED_INDEX`` sparse; both exact).
        index_params: build parameters of that index (``{"M": 16, "efConstruction": 200}``).
        search_params: search parameters (``{"ef": 64}``, ``{"nprobe": 16}``, ``{"drop_ratio_search": 0.2}``).
        uri: a Milvus server (``http://host:19530``); ``None``: Milvus Lite inside the index folder.
        collection: the collection name.
        batch_size: rows per insert call.
    """

    def __init__(
        self,
        dim: int,
        metric: str = "ip",
        *,
        sparse: bool = False,
        index_type: str | None = None,
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        uri: str | None = None,
        collection: str = "winnow",
        batch_size: int = 1000,
    ) -> None:
        vector = VectorField(
            VECTOR_FIELD, dim, sparse, metric, index_type, index_params or {}, search_params or {}
        )
        super().__init__([vector], uri, collection, batch_size)
        self.field = vector

    dim = property(lambda self: self.field.dim)
    metric = property(lambda self: self.field.metric)
    sparse = property(lambda self: self.field.sparse)
    index_type = property(lambda self: self.field.index_type)
    index_params = property(lambda self: self.field.index_params)
    search_params = property(lambda self: self.field.search_params)

    def add(self, vectors: Any, ids: Sequence[str]) -> None:
        """Insert ``vectors`` (dense: (n, dim) float32; sparse: CSR (n, dim)) under ``ids``, in batches;
        ids the collection already holds are skipped (a resumed bulk load)."""
        self.insert([vectors], ids)

    def search(self, queries: Any, k: int) -> Hits:
        """Top ``k`` ids and scores per query (dense rows or sparse CSR rows), best first."""
        data = self.field.rows(self.field.check(queries, "queries", documents=False))
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        self.flush()
        client = self.connect()
        asked = [i for i, q in enumerate(data) if not self.sparse or q]  # an empty sparse query finds nothing
        results = in_batches(
            asked,
            lambda chunk: client.search(
                self.collection,
                data=[data[i] for i in chunk],
                anns_field=VECTOR_FIELD,
                limit=k,
                search_params=self.field.request(),
                output_fields=["id"],
            ),
        )
        return self.hits(results, asked, len(data), k, np.inf if self.metric == "l2" else -np.inf)

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write ``meta.json`` (URI without token, collection, schema, ids) and, for Milvus Lite, the
        database folder, atomically; return the directory."""
        return self.save_folder(
            directory,
            KIND,
            dim=self.dim,
            metric=self.metric,
            sparse=self.sparse,
            search_params=self.search_params,
            **(extra_meta or {}),
        )

    @classmethod
    def load(cls, directory: str | Path, uri: str | None = None) -> MilvusIndex:
        """Open an index folder written by :meth:`save`: its Milvus Lite database in place, or its
        server (``uri`` overrides the recorded one; the token comes from ``$MILVUS_TOKEN``)."""
        directory = Path(directory)
        meta, index = cls.read_folder(directory, KIND)
        self = cls(
            meta_value(directory, meta, "dim", int),
            meta_value(directory, meta, "metric", str),
            sparse=meta_value(directory, meta, "sparse", bool),
            index_type=index.get("type"),
            index_params=index.get("params"),
            search_params=meta.get("search_params"),
            uri=uri or meta.get("uri"),
            collection=meta_value(directory, meta, "collection", str),
        )
        self.open_folder(directory)
        return self
