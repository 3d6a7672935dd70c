"""A Milvus collection as a Winnow index: Milvus Lite embedded in the index folder, or a server.

The same code serves both. Without a URI the collection lives in a Milvus Lite database (a folder,
``milvus.db``) that is built in a working folder and copied into the index folder by :meth:`save`;
with ``uri="http://host:19530"`` it lives on a Milvus server or cluster, and the index folder records
only the URI, the collection and its schema (the token comes from ``$MILVUS_TOKEN``, never from the
command line nor ``meta.json``).

A collection holds string ids and one vector field: ``FLOAT_VECTOR`` for dense encoders (index types
``FLAT``, exact and the default, ``HNSW``, ``IVF_FLAT`` where the server supports them) or
``SPARSE_FLOAT_VECTOR`` for sparse ones (``SPARSE_INVERTED_INDEX``, exact), scored by inner product
(dense ``l2`` too). Queries of an inference-free sparse model are its IDF-weighted query tokens, so no
model runs at query time. Inserts go in batches with progress; rows whose id the collection already
holds are skipped, so an interrupted bulk load resumes by running it again. The collection is
flushed before the first search (Milvus Lite searches unflushed rows very slowly).

Example:
    >>> index = MilvusIndex(384)                                  # Milvus Lite, FLAT, inner product
    >>> index.add(doc_vectors, doc_ids)
    >>> hits = index.search(query_vectors, k=10)
    >>> index.save("runs/scifact-milvus")
    >>> remote = MilvusIndex(384, uri="http://milvus:19530", collection="scifact")
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Hits, check_ids, check_metric, check_vectors
from indexes.io import atomic_directory, meta_value, read_json_file, read_meta, require_files, write_meta

logger = logging.getLogger(__name__)

KIND = "milvus"
DB_DIR = "milvus.db"
IDS_FILE = "ids.json"
TOKEN_ENV = "MILVUS_TOKEN"
DENSE_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX")
SPARSE_TYPES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
ID_FIELD, VECTOR_FIELD = "id", "vector"
MAX_ID_LENGTH = 1024
QUERY_BATCH = 1000


def sparse_rows(matrix: Any) -> list[dict[int, float]]:
    """Milvus sparse vectors (``{dimension: weight}``) from the rows of a scipy CSR matrix."""
    from scipy import sparse

    csr = sparse.csr_matrix(matrix)
    return [
        {int(j): float(v) for j, v in zip(csr.indices[a:b], csr.data[a:b], strict=True) if v != 0}
        for a, b in zip(csr.indptr[:-1], csr.indptr[1:], strict=True)
    ]


class MilvusIndex:
    """The :class:`~indexes.base.Index` protocol over one Milvus collection.

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
        self.dim = int(dim)
        self.metric = check_metric(metric)
        self.sparse = bool(sparse)
        if self.sparse and self.metric != "ip":
            raise ValueError(f"sparse Milvus collections score inner products; got metric {metric!r}")
        valid = SPARSE_TYPES if self.sparse else DENSE_TYPES
        self.index_type = (index_type or valid[0]).upper()
        if self.index_type not in valid:
            what = "sparse" if self.sparse else "dense"
            raise ValueError(
                f"Milvus index type {index_type!r} for a {what} collection: expected one of "
                f"{', '.join(valid)}"
            )
        self.index_params = dict(index_params or {})
        self.search_params = dict(search_params or {})
        self.uri = uri
        self.collection = collection
        self.batch_size = int(batch_size)
        self._ids: list[str] = []
        self._client: Any = None
        self._workdir: Path | None = None
        self._db: Path | None = None
        self._unflushed = False

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient

            if self.uri is None and self._db is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="winnow-milvus-"))
                self._db = self._workdir / DB_DIR
                # the working copy goes when the index does (save() copies it into the index folder)
                weakref.finalize(self, shutil.rmtree, self._workdir, True)
            target = self.uri or str(self._db)
            self._client = MilvusClient(uri=target, token=os.environ.get(TOKEN_ENV, "") if self.uri else "")
            self._ensure_collection()
        return self._client

    def schema(self) -> dict[str, Any]:
        """The collection's fields and index, as ``meta.json`` records them."""
        vector = {"name": VECTOR_FIELD, "type": "SPARSE_FLOAT_VECTOR" if self.sparse else "FLOAT_VECTOR"}
        if not self.sparse:
            vector["dim"] = self.dim
        return {
            "fields": [
                {"name": ID_FIELD, "type": "VARCHAR", "max_length": MAX_ID_LENGTH, "primary": True},
                vector,
            ],
            "index": {"type": self.index_type, "metric": self.metric.upper(), "params": self.index_params},
        }

    def _ensure_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        client = self._client
        if client.has_collection(self.collection):
            self._check_existing(client.describe_collection(self.collection))
            client.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
        if self.sparse:
            schema.add_field(VECTOR_FIELD, DataType.SPARSE_FLOAT_VECTOR)
        else:
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dim)
        params = client.prepare_index_params()
        metric = self.metric.upper()
        params.add_index(
            VECTOR_FIELD, index_type=self.index_type, metric_type=metric, params=self.index_params
        )
        client.create_collection(self.collection, schema=schema, index_params=params)

    def _check_existing(self, described: dict[str, Any]) -> None:
        """An existing collection (a resumed load) must have this index's vector field."""
        fields = {f["name"]: f for f in described.get("fields", [])}
        vector = fields.get(VECTOR_FIELD)
        want = "SPARSE_FLOAT_VECTOR" if self.sparse else "FLOAT_VECTOR"
        got = getattr((vector or {}).get("type"), "name", str((vector or {}).get("type")))
        dim = (vector or {}).get("params", {}).get("dim")
        if vector is None or got != want or (not self.sparse and int(dim or -1) != self.dim):
            raise ValueError(
                f"Milvus collection {self.collection!r} at {self.uri or self._db} exists with field "
                f"{VECTOR_FIELD!r} = {got}{f'({dim})' if dim else ''}; this index needs {want}"
                f"{'' if self.sparse else f'({self.dim})'}: choose another collection name"
            )

    # -- the Index protocol ---------------------------------------------------------------------------

    @property
    def is_trained(self) -> bool:
        return True

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def train(self, vectors: Any) -> None:
        """Milvus trains its own IVF indexes when it builds them; nothing to do."""

    def _present(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the collection already holds (an earlier, interrupted load)."""
        client, found = self._connect(), set()
        for start in range(0, len(ids), QUERY_BATCH):
            chunk = ids[start : start + QUERY_BATCH]
            rows = client.get(self.collection, ids=chunk, output_fields=[ID_FIELD])
            found |= {row[ID_FIELD] for row in rows}
        return found

    def add(self, vectors: Any, ids: Sequence[str]) -> None:
        """Insert ``vectors`` (dense: (n, dim) float32; sparse: CSR (n, dim)) under ``ids``, in batches;
        ids the collection already holds are skipped (a resumed bulk load)."""
        if self.sparse:
            from indexes.inverted import check_sparse

            matrix = check_sparse(vectors, self.dim, "documents", non_negative=True)
            n = matrix.shape[0]
        else:
            matrix = check_vectors(vectors, self.dim, "documents")
            n = len(matrix)
        ids = check_ids(ids, n, existing=set(self._ids))
        present = self._present(ids)
        if present:
            logger.info("%d of %d ids already in collection %r: skipped", len(present), n, self.collection)
        client = self._connect()
        done = 0
        for start in range(0, n, self.batch_size):
            rows = range(start, min(start + self.batch_size, n))
            keep = [i for i in rows if ids[i] not in present]
            if keep:
                vecs = sparse_rows(matrix[keep]) if self.sparse else matrix[keep].tolist()
                batch = [{ID_FIELD: ids[i], VECTOR_FIELD: v} for i, v in zip(keep, vecs, strict=True)]
                client.insert(self.collection, batch)
                self._unflushed = True
            done += len(rows)
            logger.debug("milvus: %d of %d rows inserted", done, n)
        self._ids.extend(ids)

    def _flush(self) -> None:
        if self._unflushed:
            self._connect().flush(self.collection)
            self._unflushed = False

    def search(self, queries: Any, k: int) -> Hits:
        """Top ``k`` ids and scores per query (dense rows or sparse CSR rows), best first."""
        if self.sparse:
            from indexes.inverted import check_sparse

            data: list[Any] = sparse_rows(check_sparse(queries, self.dim, "queries"))
        else:
            data = check_vectors(queries, self.dim, "queries").tolist()
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        self._flush()
        client = self._connect()
        pad = np.inf if self.metric == "l2" else -np.inf
        scores = np.full((len(data), k), pad, dtype=np.float32)
        out: list[list[str]] = [[] for _ in data]
        asked = [i for i, q in enumerate(data) if not self.sparse or q]  # an empty sparse query finds nothing
        params = {"metric_type": self.metric.upper(), "params": self.search_params}
        for start in range(0, len(asked), QUERY_BATCH):
            chunk = asked[start : start + QUERY_BATCH]
            results = client.search(
                self.collection,
                data=[data[i] for i in chunk],
                anns_field=VECTOR_FIELD,
                limit=k,
                search_params=params,
                output_fields=[ID_FIELD],
            )
            for i, hits in zip(chunk, results, strict=True):
                out[i] = [str(h[ID_FIELD] if ID_FIELD in h else h["entity"][ID_FIELD]) for h in hits]
                scores[i, : len(hits)] = [h["distance"] for h in hits]
        return Hits(out, scores)

    # -- persistence ----------------------------------------------------------------------------------

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write ``meta.json`` (URI without token, collection, schema, ids) and, for Milvus Lite, the
        database folder, atomically; return the directory."""
        directory = Path(directory)
        self._flush()
        self._connect()
        with atomic_directory(directory, family="index") as tmp:
            if self.uri is None:
                self._client.close()  # Milvus Lite writes its files on close
                self._client = None
                shutil.copytree(self._db, tmp / DB_DIR)  # type: ignore[arg-type]
            (tmp / IDS_FILE).write_text(json.dumps(self._ids), encoding="utf-8")
            write_meta(
                tmp,
                KIND,
                dim=self.dim,
                metric=self.metric,
                sparse=self.sparse,
                uri=self.uri,
                collection=self.collection,
                schema=self.schema(),
                search_params=self.search_params,
                size=len(self),
                **(extra_meta or {}),
            )
        return directory

    @classmethod
    def load(cls, directory: str | Path, uri: str | None = None) -> MilvusIndex:
        """Open an index folder written by :meth:`save`: its Milvus Lite database in place, or its
        server (``uri`` overrides the recorded one; the token comes from ``$MILVUS_TOKEN``)."""
        directory = Path(directory)
        meta = read_meta(directory, kinds=(KIND,))
        recorded = meta.get("uri")
        require_files(directory, meta, (IDS_FILE,) if recorded else (IDS_FILE, DB_DIR))
        schema = meta_value(directory, meta, "schema", dict)
        index = schema.get("index", {})
        self = cls(
            meta_value(directory, meta, "dim", int),
            meta_value(directory, meta, "metric", str),
            sparse=meta_value(directory, meta, "sparse", bool),
            index_type=index.get("type"),
            index_params=index.get("params"),
            search_params=meta.get("search_params"),
            uri=uri or recorded,
            collection=meta_value(directory, meta, "collection", str),
        )
        if self.uri is None:
            self._db = directory / DB_DIR
        self._ids = [str(i) for i in read_json_file(directory / IDS_FILE, list)]
        return self

    def close(self) -> None:
        """Release the connection (and the working copy of a Lite database that was never saved)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
