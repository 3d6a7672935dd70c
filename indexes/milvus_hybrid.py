"""A dense and a sparse vector field in one Milvus collection, fused by Milvus's own ranker.

Each query runs one ``hybrid_search``: a dense request and a sparse request, each returning its top
``depth``, merged by Milvus's ``RRFRanker(k)`` (``1 / (k + rank)``, ranks from 1, as
:func:`retrieval.fusion.fuse` with ``method="rrf"`` and equal weights computes it) or
``WeightedRanker`` (Milvus's own arctan score normalisation, not Winnow's min-max or z-score). The
collection, the connection and the index folder work as for :class:`~indexes.milvus.MilvusIndex`.

Example:
    >>> index = MilvusHybridIndex(384, 30522, fusion="rrf", rrf_k=60, depth=1000)
    >>> index.add(dense_docs, sparse_docs, doc_ids)
    >>> hits = index.search(dense_queries, sparse_queries, k=10)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Hits
from indexes.io import meta_value
from indexes.milvus_collection import MilvusCollection, VectorField, in_batches

KIND = "milvus-hybrid"
DENSE_FIELD, SPARSE_FIELD = "dense", "sparse"
RANKERS = ("rrf", "weighted")


class MilvusHybridIndex(MilvusCollection):
    """Dense and sparse document vectors in one collection, searched and fused in one Milvus call.

    Args:
        dense_dim: dense vector dimension.
        sparse_dim: sparse dimension (vocabulary size).
        metric: the dense field's metric (``ip`` or ``l2``); the sparse field scores inner products.
        dense_index_type: the dense field's Milvus index (default ``FLAT``); the sparse one is exact.
        dense_index_params: its build parameters.
        search_params: the dense field's search parameters (``{"ef": 64}``).
        fusion: ``rrf`` (``RRFRanker``) or ``weighted`` (``WeightedRanker`` with Milvus's normalisation).
        rrf_k: the RRF constant.
        weights: (dense, sparse) weights of ``weighted`` (default equal); RRF in Milvus takes none.
        depth: candidates each field returns before fusion.
        uri, collection, batch_size: as for :class:`~indexes.milvus.MilvusIndex`.
    """

    def __init__(
        self,
        dense_dim: int,
        sparse_dim: int,
        *,
        metric: str = "ip",
        dense_index_type: str | None = None,
        dense_index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        weights: Sequence[float] | None = None,
        depth: int = 1000,
        uri: str | None = None,
        collection: str = "winnow_hybrid",
        batch_size: int = 1000,
    ) -> None:
        if fusion not in RANKERS:
            raise ValueError(f"Milvus fusion {fusion!r}: expected one of {', '.join(RANKERS)}")
        if fusion == "rrf" and weights is not None and len(set(weights)) > 1:
            raise ValueError(f"Milvus's RRFRanker weighs its requests equally; got weights {list(weights)}")
        w = [float(x) for x in (weights or (1.0, 1.0))]
        if len(w) != 2 or not all(np.isfinite(x) and x >= 0 for x in w):
            raise ValueError(
                f"weights {list(weights or [])}: expected two non-negative numbers (dense, sparse)"
            )
        if not rrf_k > 0 or int(depth) < 1:
            raise ValueError(f"rrf_k {rrf_k!r} must be > 0 and depth {depth!r} >= 1")
        dense = VectorField(
            DENSE_FIELD,
            dense_dim,
            False,
            metric,
            dense_index_type,
            dense_index_params or {},
            search_params or {},
        )
        super().__init__([dense, VectorField(SPARSE_FIELD, sparse_dim, True)], uri, collection, batch_size)
        self.fusion, self.rrf_k, self.weights, self.depth = fusion, float(rrf_k), w, int(depth)

    @property
    def dim(self) -> int:
        return self.fields[0].dim

    def ranker(self) -> Any:
        from pymilvus import RRFRanker, WeightedRanker

        if self.fusion == "rrf":
            return RRFRanker(self.rrf_k)
        return WeightedRanker(*self.weights, norm_score=True)

    def add(self, dense: Any, sparse: Any, ids: Sequence[str]) -> None:
        """Insert each document's dense and sparse vector under its id (rows already present skipped)."""
        self.insert([dense, sparse], ids)

    def search(self, dense_queries: Any, sparse_queries: Any, k: int) -> Hits:
        """The fused top ``k`` per query; a query with no sparse term is fused from its dense hits alone."""
        from pymilvus import AnnSearchRequest

        dense_field, sparse_field = self.fields
        dense = dense_field.rows(dense_field.check(dense_queries, "queries", documents=False))
        sparse = sparse_field.rows(sparse_field.check(sparse_queries, "queries", documents=False))
        if len(dense) != len(sparse) or k < 1:
            raise ValueError(
                f"got {len(dense)} dense and {len(sparse)} sparse queries, k={k}; expected equal, k >= 1"
            )
        self.flush()
        client = self.connect()
        both = [i for i, q in enumerate(sparse) if q]

        def fused(rows: Sequence[int]) -> Any:
            requests = [
                AnnSearchRequest(
                    [dense[i] for i in rows], DENSE_FIELD, dense_field.request(), limit=self.depth
                ),
                AnnSearchRequest(
                    [sparse[i] for i in rows], SPARSE_FIELD, sparse_field.request(), limit=self.depth
                ),
            ]
            ranker = self.ranker()
            return client.hybrid_search(self.collection, requests, ranker, limit=k, output_fields=["id"])

        results = in_batches(both, fused)
        hits = self.hits(results, both, len(dense), k, -np.inf)
        alone = [i for i, q in enumerate(sparse) if not q]
        if alone:
            self._dense_only(client, [dense[i] for i in alone], alone, hits, k)
        return hits

    def _dense_only(self, client: Any, vectors: list[Any], rows: list[int], hits: Hits, k: int) -> None:
        """What the ranker gives a query whose sparse request finds nothing: its dense hits re-scored."""
        found = client.search(
            self.collection,
            data=vectors,
            anns_field=DENSE_FIELD,
            limit=min(k, self.depth),
            search_params=self.fields[0].request(),
            output_fields=["id"],
        )
        l2 = self.fields[0].metric == "l2"
        for row, result in zip(rows, found, strict=True):
            hits.ids[row] = [str(h["id"] if "id" in h else h["entity"]["id"]) for h in result]
            raw = np.array([h["distance"] for h in result], dtype=np.float64)
            if self.fusion == "rrf":
                fused = 1.0 / (self.rrf_k + np.arange(1, len(raw) + 1))
            else:
                norm = 1 - 2 * np.arctan(raw) / np.pi if l2 else 0.5 + np.arctan(raw) / np.pi
                fused = self.weights[0] * norm
            hits.scores[row, : len(raw)] = fused

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write the index folder (as :meth:`MilvusIndex.save`), with the fusion settings."""
        dense_field, sparse_field = self.fields
        return self.save_folder(
            directory,
            KIND,
            dim=self.dim,
            sparse_dim=sparse_field.dim,
            metric=dense_field.metric,
            search_params=dense_field.search_params,
            fusion=self.fusion,
            rrf_k=self.rrf_k,
            weights=self.weights,
            depth=self.depth,
            **(extra_meta or {}),
        )

    @classmethod
    def load(cls, directory: str | Path, uri: str | None = None) -> MilvusHybridIndex:
        """Open a folder written by :meth:`save` (``uri`` overrides the recorded server)."""
        directory = Path(directory)
        meta, dense_index = cls.read_folder(directory, KIND)
        self = cls(
            meta_value(directory, meta, "dim", int),
            meta_value(directory, meta, "sparse_dim", int),
            metric=meta_value(directory, meta, "metric", str),
            dense_index_type=dense_index.get("type"),
            dense_index_params=dense_index.get("params"),
            search_params=meta.get("search_params"),
            fusion=meta_value(directory, meta, "fusion", str),
            rrf_k=meta_value(directory, meta, "rrf_k", float),
            weights=meta_value(directory, meta, "weights", list),
            depth=meta_value(directory, meta, "depth", int),
            uri=uri or meta.get("uri"),
            collection=meta_value(directory, meta, "collection", str),
        )
        self.open_folder(directory)
        return self
