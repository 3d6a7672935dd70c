"""What every Winnow Milvus index shares: the connection (Milvus Lite or a server), a collection of
string ids and vector fields, resumable batched inserts, flushing, and the index folder.

Without a URI the collection lives in a Milvus Lite database (a folder, ``milvus.db``) that is built in
a working folder and copied into the index folder on save; with ``uri="http://host:19530"`` it lives on
a Milvus server or cluster, and the index folder records only the URI, the collection and its schema.
The token comes from ``$MILVUS_TOKEN``, never from the command line nor ``meta.json``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexes.base import Hits, check_ids, check_metric, check_vectors
from indexes.io import atomic_directory, meta_value, read_json_file, read_meta, require_files, write_meta

logger = logging.getLogger(__name__)

DB_DIR = "milvus.db"
IDS_FILE = "ids.json"
TOKEN_ENV = "MILVUS_TOKEN"
DENSE_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX")
SPARSE_TYPES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
ID_FIELD = "id"
MAX_ID_LENGTH = 1024
QUERY_BATCH = 1000
T = TypeVar("T")


def in_batches(items: Sequence[T], call: Callable[[Sequence[T]], Sequence[Any]]) -> list[Any]:
    """``call`` on consecutive chunks of at most ``QUERY_BATCH`` items (Milvus caps the queries or ids
    of one request), the results joined in order."""
    results: list[Any] = []
    for start in range(0, len(items), QUERY_BATCH):
        results += call(items[start : start + QUERY_BATCH])
    return results


def sparse_rows(matrix: Any) -> list[dict[int, float]]:
    """Milvus sparse vectors (``{dimension: weight}``) from the rows of a scipy CSR matrix."""
    from scipy import sparse

    csr = sparse.csr_matrix(matrix)
    return [
        {int(j): float(v) for j, v in zip(csr.indices[a:b], csr.data[a:b], strict=True) if v != 0}
        for a, b in zip(csr.indptr[:-1], csr.indptr[1:], strict=True)
    ]


@dataclass
class VectorField:
    """One vector field of a collection and its Milvus index.

    Attributes:
        name: the field name.
        dim: vector dimension (the vocabulary size of a sparse field).
        sparse: ``SPARSE_FLOAT_VECTOR`` instead of ``FLOAT_VECTOR``.
        metric: ``ip``; dense fields may also use ``l2``.
        index_type: default ``FLAT`` (dense) or ``SPARSE_INVERTED_INDEX`` (sparse), both exact.
        index_params: build parameters (``{"M": 16, "efConstruction": 200}``).
        search_params: search parameters (``{"ef": 64}``, ``{"nprobe": 16}``).
    """

    name: str
    dim: int
    sparse: bool = False
    metric: str = "ip"
    index_type: str | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dim = int(self.dim)
        self.metric = check_metric(self.metric)
        if self.sparse and self.metric != "ip":
            raise ValueError(f"sparse Milvus collections score inner products; got metric {self.metric!r}")
        valid = SPARSE_TYPES if self.sparse else DENSE_TYPES
        asked = self.index_type
        self.index_type = (asked or valid[0]).upper()
        if self.index_type not in valid:
            what = "sparse" if self.sparse else "dense"
            raise ValueError(
                f"Milvus index type {asked!r} for a {what} collection: expected one of {', '.join(valid)}"
            )
        self.index_params = dict(self.index_params or {})
        self.search_params = dict(self.search_params or {})

    @property
    def milvus_type(self) -> str:
        return "SPARSE_FLOAT_VECTOR" if self.sparse else "FLOAT_VECTOR"

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.milvus_type, **({} if self.sparse else {"dim": self.dim})}

    def index(self) -> dict[str, Any]:
        return {
            "field": self.name,
            "type": self.index_type,
            "metric": self.metric.upper(),
            "params": self.index_params,
        }

    def check(self, vectors: Any, what: str, documents: bool) -> Any:
        """``vectors`` checked (dense (n, dim) float32; sparse CSR (n, dim), documents non-negative)."""
        if not self.sparse:
            return check_vectors(vectors, self.dim, what)
        from indexes.inverted import check_sparse

        return check_sparse(vectors, self.dim, what, non_negative=documents)

    def rows(self, matrix: Any) -> list[Any]:
        """The rows of a checked matrix as Milvus takes them."""
        return sparse_rows(matrix) if self.sparse else np.asarray(matrix).tolist()

    def request(self) -> dict[str, Any]:
        return {"metric_type": self.metric.upper(), "params": self.search_params}


class MilvusCollection:
    """A collection of string ids and ``fields`` in Milvus Lite (``uri=None``) or on a server."""

    def __init__(
        self, fields: Sequence[VectorField], uri: str | None, collection: str, batch_size: int = 1000
    ) -> None:
        self.fields = list(fields)
        self.uri = uri
        self.collection = collection
        self.batch_size = int(batch_size)
        self._ids: list[str] = []
        self._client: Any = None
        self._workdir: Path | None = None
        self._db: Path | None = None
        self._unflushed = False

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

    def schema(self) -> dict[str, Any]:
        """The collection's fields and indexes, as ``meta.json`` records them."""
        id_field = {"name": ID_FIELD, "type": "VARCHAR", "max_length": MAX_ID_LENGTH, "primary": True}
        return {
            "fields": [id_field, *(f.schema() for f in self.fields)],
            "indexes": [f.index() for f in self.fields],
        }

    def connect(self) -> Any:
        """The client, connected and with the collection created (or checked) and loaded."""
        if self._client is None:
            from pymilvus import MilvusClient

            if self.uri is None and self._db is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="winnow-milvus-"))
                self._db = self._workdir / DB_DIR
                # the working copy goes when the index does (save() copies it into the index folder)
                weakref.finalize(self, _discard_lite, self._db)
            if self.uri is None:  # Milvus Lite answers the client's AllocTimestamp call "not implemented"
                logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # and grpc logs a traceback
            token = os.environ.get(TOKEN_ENV, "") if self.uri else ""
            self._client = MilvusClient(uri=self.uri or str(self._db), token=token)
            self._ensure_collection()
        return self._client

    def _ensure_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        client = self._client
        if client.has_collection(self.collection):
            self._check_existing(client.describe_collection(self.collection))
            client.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
        params = client.prepare_index_params()
        for f in self.fields:
            if f.sparse:
                schema.add_field(f.name, DataType.SPARSE_FLOAT_VECTOR)
            else:
                schema.add_field(f.name, DataType.FLOAT_VECTOR, dim=f.dim)
            params.add_index(
                f.name, index_type=f.index_type, metric_type=f.metric.upper(), params=f.index_params
            )
        client.create_collection(self.collection, schema=schema, index_params=params)

    def _check_existing(self, described: dict[str, Any]) -> None:
        """An existing collection (a resumed load) must have this index's vector fields."""
        found = {f["name"]: f for f in described.get("fields", [])}
        for f in self.fields:
            have = found.get(f.name) or {}
            kind = getattr(have.get("type"), "name", str(have.get("type")))
            dim = have.get("params", {}).get("dim")
            if kind != f.milvus_type or (not f.sparse and int(dim or -1) != f.dim):
                raise ValueError(
                    f"Milvus collection {self.collection!r} at {self.uri or self._db} exists with field "
                    f"{f.name!r} = {kind}{f'({dim})' if dim else ''}; this index needs {f.milvus_type}"
                    f"{'' if f.sparse else f'({f.dim})'}: choose another collection name"
                )

    def present(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the collection already holds (an earlier, interrupted load)."""
        client = self.connect()
        rows = in_batches(
            ids, lambda chunk: client.get(self.collection, ids=list(chunk), output_fields=[ID_FIELD])
        )
        return {row[ID_FIELD] for row in rows}

    def insert(self, columns: Sequence[Any], ids: Sequence[str]) -> None:
        """Insert one matrix per field (checked documents) under ``ids``, in batches; ids the collection
        already holds are skipped, so a bulk load that was interrupted resumes by running again."""
        matrices = [
            f.check(c, "documents", documents=True) for f, c in zip(self.fields, columns, strict=True)
        ]
        n = matrices[0].shape[0]
        if any(m.shape[0] != n for m in matrices):
            raise ValueError(f"fields have {[m.shape[0] for m in matrices]} rows; expected equal counts")
        ids = check_ids(ids, n, existing=set(self._ids))
        present = self.present(ids)
        if present:
            logger.info("%d of %d ids already in collection %r: skipped", len(present), n, self.collection)
        client = self.connect()
        for start in range(0, n, self.batch_size):
            keep = [i for i in range(start, min(start + self.batch_size, n)) if ids[i] not in present]
            if not keep:
                continue
            values = [f.rows(m[keep]) for f, m in zip(self.fields, matrices, strict=True)]
            batch = [
                {ID_FIELD: ids[i], **{f.name: v[j] for f, v in zip(self.fields, values, strict=True)}}
                for j, i in enumerate(keep)
            ]
            client.insert(self.collection, batch)
            self._unflushed = True
            logger.debug("milvus: %d of %d rows inserted", keep[-1] + 1, n)
        self._ids.extend(ids)

    def flush(self) -> None:
        """Make inserted rows searchable (Milvus Lite searches unflushed rows very slowly)."""
        if self._unflushed:
            self.connect().flush(self.collection)
            self._unflushed = False

    @staticmethod
    def hits(
        results: Sequence[Sequence[dict[str, Any]]], rows: Sequence[int], n: int, k: int, pad: float
    ) -> Hits:
        """``Hits`` for ``n`` queries from Milvus results for the queries at ``rows``."""
        ids: list[list[str]] = [[] for _ in range(n)]
        scores = np.full((n, k), pad, dtype=np.float32)
        for row, found in zip(rows, results, strict=True):
            ids[row] = [str(h[ID_FIELD] if ID_FIELD in h else h["entity"][ID_FIELD]) for h in found]
            scores[row, : len(found)] = [h["distance"] for h in found]
        return Hits(ids, scores)

    def save_folder(self, directory: str | Path, kind: str, **meta: Any) -> Path:
        """Write ``meta.json`` (URI without token, collection, schema, ``meta``), ``ids.json`` and, for
        Milvus Lite, the database folder, atomically; return the directory."""
        directory = Path(directory)
        self.flush()
        self.connect()
        with atomic_directory(directory, family="index") as tmp:
            if self.uri is None:
                self.close()  # stops the embedded server, so its files are complete and still
                shutil.copytree(self._db, tmp / DB_DIR)  # type: ignore[arg-type]
            (tmp / IDS_FILE).write_text(json.dumps(self._ids), encoding="utf-8")
            write_meta(
                tmp,
                kind,
                uri=self.uri,
                collection=self.collection,
                schema=self.schema(),
                size=len(self),
                **meta,
            )
        return directory

    @staticmethod
    def read_folder(directory: Path, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A saved folder's ``meta.json`` (checked to be ``kind``, with the files its URI needs) and the
        index entry of its first vector field."""
        meta = read_meta(directory, kinds=(kind,))
        require_files(directory, meta, (IDS_FILE,) if meta.get("uri") else (IDS_FILE, DB_DIR))
        return meta, (meta_value(directory, meta, "schema", dict).get("indexes") or [{}])[0]

    def open_folder(self, directory: str | Path) -> None:
        """After construction from a saved folder's ``meta.json``: its Lite database in place, its ids."""
        directory = Path(directory)
        if self.uri is None:
            self._db = directory / DB_DIR
        self._ids = [str(i) for i in read_json_file(directory / IDS_FILE, list)]

    def close(self) -> None:
        """Release the connection and, for Milvus Lite, stop its embedded server (it holds the
        database folder's lock; the working copy of an unsaved database goes with the index)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.uri is None and self._db is not None:
            _release_lite(self._db)


def _discard_lite(db: Path) -> None:
    _release_lite(db)
    shutil.rmtree(db.parent, ignore_errors=True)


def _release_lite(db: Path) -> None:
    """Stop the Milvus Lite server of ``db`` (its files complete, its lock released)."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # pragma: no cover - a pymilvus without milvus-lite
        return
    server_manager_instance.release_server(str(db))
