"""The index protocol shared by every Winnow index, the ``Hits`` result type, and input checks.

Every index (FAISS, inverted, Lucene) takes vectors with string ids and answers
``search(queries, k) -> Hits``; ids are the corpus ``_id`` values everywhere.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

METRICS = ("ip", "l2")


@dataclass(frozen=True)
class Hits:
    """Top-k results for a batch of queries.

    Attributes:
        ids: one list of document ids per query, best first (shorter than k when
            the index holds fewer than k documents).
        scores: float32 array of shape (n_queries, k); padded with ``-inf`` (``ip``)
            or ``+inf`` (``l2``) where a query has fewer than k hits.
    """

    ids: list[list[str]]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def as_run(self, query_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Return a TREC-style run ``{query_id: {doc_id: score}}`` for metric libraries."""
        if len(query_ids) != len(self.ids):
            raise ValueError(f"got {len(query_ids)} query ids for {len(self.ids)} result lists")
        return {
            qid: {doc: float(score) for doc, score in zip(docs, row, strict=False)}
            for qid, docs, row in zip(query_ids, self.ids, self.scores, strict=True)
        }


@runtime_checkable
class Index(Protocol):
    """What every Winnow vector index offers (FAISS, inverted, Lucene impact), faiss-style.

    Attributes:
        dim: vector dimension (the vocabulary size of a sparse index).
        metric: ``ip`` (inner product) or ``l2``.
        is_trained: False until an index that needs training (FAISS IVF/PQ) has been trained.
        ids: the document ids, in the order they were added.

    Example:
        >>> index = index_factory("faiss:IVF256,Flat", 384)
        >>> index.train(sample)            # a no-op where nothing needs training
        >>> index.add(vectors, ids)
        >>> hits = index.search(queries, k=10)
        >>> same = type(index).load(index.save("runs/my-index"))
    """

    dim: int
    metric: str

    @property
    def is_trained(self) -> bool: ...

    @property
    def ids(self) -> list[str]: ...

    def train(self, vectors: Any) -> None: ...

    def add(self, vectors: Any, ids: Sequence[str]) -> None: ...

    def search(self, queries: Any, k: int) -> Hits: ...

    def save(self, directory: str | Path) -> Path: ...

    @classmethod
    def load(cls, directory: str | Path) -> Index: ...

    def __len__(self) -> int: ...


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return metric


def check_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 (n, dim) array, or raise a ValueError saying why not."""
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D array of shape (n, {dim}); got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.shape[1] != dim:
        raise ValueError(f"{what} have dimension {arr.shape[1]}; this index expects dimension {dim}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be numeric; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{what} contain NaN or infinite values in {bad.size} row(s), first at row {int(bad[0])}"
        )
    return arr


def check_ids(ids: Sequence[str], n_vectors: int, existing: Container[str] | None = None) -> list[str]:
    """Check that ``ids`` are strings, one per vector, unique, and not already indexed."""
    ids = [str(i) for i in ids]
    if len(ids) != n_vectors:
        raise ValueError(f"got {len(ids)} ids for {n_vectors} vectors; expected one id per vector")
    seen: set[str] = set()
    for i, doc_id in enumerate(ids):
        if doc_id in seen:
            raise ValueError(f"duplicate id {doc_id!r} at position {i} of this batch; ids must be unique")
        seen.add(doc_id)
    if existing:
        clash = next((d for d in ids if d in existing), None)
        if clash is not None:
            raise ValueError(f"id {clash!r} is already in the index; ids must be unique")
    return ids
