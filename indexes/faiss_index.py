"""A FAISS index with string ids, built from a factory string, on CPU or on every visible GPU.

The wrapper keeps FAISS's own index (``index_factory`` strings such as ``Flat``, ``HNSW32``,
``IVF1024,Flat``, ``IVF1024,PQ32``) and adds what retrieval needs around it: string ids, input
checks, training on first add, search-time parameters (``nprobe``, ``efSearch``), GPU placement and
atomic save/load. ``bench.search_speed`` measures its overhead against calling faiss directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexes.base import Hits, check_ids, check_metric, check_vectors
from indexes.io import atomic_directory, meta_value, read_json_file, read_meta, require_files, write_meta

logger = logging.getLogger(__name__)

KIND = "faiss"
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
_FAISS_METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 for a CPU-only faiss build)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover - broken CUDA set-ups
        return 0


class FaissIndex:
    """Dense vector index with string ids on top of ``faiss.index_factory``.

    Args:
        dim: vector dimension.
        factory: a faiss factory string (``Flat``, ``HNSW32``, ``IVF1024,Flat``, ``IVF1024,PQ32`` ...).
        metric: ``ip`` (inner product; cosine on normalised vectors) or ``l2``.
        device: ``auto`` (all GPUs when faiss has GPU support and one is visible, else CPU),
            ``cpu`` or ``gpu``.
        search_params: faiss search-time parameters, e.g. ``{"nprobe": 16}`` or ``{"efSearch": 128}``.

    Example:
        >>> index = FaissIndex(384, "HNSW32", metric="ip", search_params={"efSearch": 64})
        >>> index.add(doc_vectors, doc_ids)
        >>> hits = index.search(query_vectors, k=10)
        >>> index.save("runs/my-index")
    """

    def __init__(
        self,
        dim: int,
        factory: str = "Flat",
        metric: str = "ip",
        device: str = "auto",
        search_params: dict[str, Any] | None = None,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive; got {dim}")
        self.dim = int(dim)
        self.factory = factory
        self.metric = check_metric(metric)
        try:
            cpu_index = faiss.index_factory(self.dim, factory, _FAISS_METRICS[metric])
        except RuntimeError as exc:
            raise ValueError(
                f"faiss cannot build factory string {factory!r} for dim {dim}: "
                f"{str(exc).strip().splitlines()[-1]}"
            ) from exc
        self._ids: list[str] = []
        self._positions: dict[str, int] = {}
        self.search_params = dict(search_params or {})
        self.device = self._resolve_device(device)
        self._index = self._place(cpu_index)
        self._apply_search_params()

    # -- placement -------------------------------------------------------------------------------
    @staticmethod
    def _resolve_device(device: str) -> str:
        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"unknown device {device!r}; expected auto, cpu or gpu")
        n_gpu = gpu_count()
        if device == "gpu" and n_gpu == 0:
            raise ValueError("device='gpu' but faiss has no GPU support or no GPU is visible; use 'cpu'")
        return "gpu" if device == "gpu" or (device == "auto" and n_gpu > 0) else "cpu"

    def _place(self, cpu_index: faiss.Index) -> faiss.Index:
        if self.device == "gpu":
            logger.info("faiss index %s on %d GPU(s)", self.factory, gpu_count())
            return faiss.index_cpu_to_all_gpus(cpu_index)
        logger.info("faiss index %s on CPU (%d threads)", self.factory, faiss.omp_get_max_threads())
        return cpu_index

    def _apply_search_params(self) -> None:
        if not self.search_params:
            return
        space = faiss.GpuParameterSpace() if self.device == "gpu" else faiss.ParameterSpace()
        for name, value in self.search_params.items():
            try:
                space.set_index_parameter(self._index, name, value)
            except RuntimeError as exc:
                raise ValueError(
                    f"search parameter {name}={value!r} does not apply to factory {self.factory!r}"
                ) from exc

    # -- data ------------------------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def train(self, vectors: np.ndarray) -> None:
        """Train the index (IVF centroids, PQ codebooks); a no-op for indexes that need none."""
        vectors = check_vectors(vectors, self.dim, "training vectors")
        if self._index.is_trained:
            return
        logger.info("training faiss %s on %d vectors", self.factory, len(vectors))
        try:
            self._index.train(vectors)
        except RuntimeError as exc:
            raise ValueError(
                f"faiss could not train {self.factory!r} on {len(vectors)} vectors: "
                f"{str(exc).strip().splitlines()[-1]} (an IVF index with N lists needs at least N vectors)"
            ) from exc

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Add vectors with their string ids; trains the index first if it needs it."""
        vectors = check_vectors(vectors, self.dim)
        ids = check_ids(ids, len(vectors), self._positions)
        if not self._index.is_trained:
            self.train(vectors)
        self._index.add(vectors)
        start = len(self._ids)
        self._ids.extend(ids)
        self._positions.update({doc_id: start + i for i, doc_id in enumerate(ids)})

    def vectors(self) -> np.ndarray:
        """The stored vectors, row ``i`` for ``ids[i]`` (``Flat`` and ``HNSW`` keep them; compressed
        indexes such as ``PQ`` return their approximation or refuse)."""
        cpu_index = faiss.index_gpu_to_cpu(self._index) if self.device == "gpu" else self._index
        try:
            return cpu_index.reconstruct_n(0, cpu_index.ntotal)
        except RuntimeError as exc:
            raise ValueError(f"faiss:{self.factory} cannot return its vectors: {str(exc).strip()}") from exc

    def search(self, queries: np.ndarray, k: int) -> Hits:
        """Return the top ``k`` ids and scores for each query (inner product or squared L2)."""
        if k <= 0:
            raise ValueError(f"k must be positive; got {k}")
        queries = check_vectors(queries, self.dim, "queries")
        if len(self) == 0:
            raise ValueError("the index is empty: add vectors before searching")
        k_eff = min(k, len(self))
        scores, labels = self._index.search(queries, k_eff)
        ids = self._ids
        if (labels < 0).any():  # IVF/HNSW may return fewer than k results
            hit_ids = [[ids[j] for j in row if j >= 0] for row in labels.tolist()]
        else:
            hit_ids = [[ids[j] for j in row] for row in labels.tolist()]
        return Hits(ids=hit_ids, scores=scores)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write ``index.faiss``, ``ids.json`` and ``meta.json`` atomically to ``directory``.

        ``extra_meta`` adds fields to ``meta.json`` (the retriever records its encoder there).
        """
        directory = Path(directory)
        cpu_index = faiss.index_gpu_to_cpu(self._index) if self.device == "gpu" else self._index
        with atomic_directory(directory, family="index") as tmp:
            faiss.write_index(cpu_index, str(tmp / INDEX_FILE))
            (tmp / IDS_FILE).write_text(json.dumps(self._ids), encoding="utf-8")
            write_meta(
                tmp,
                KIND,
                dim=self.dim,
                factory=self.factory,
                metric=self.metric,
                size=len(self),
                search_params=self.search_params,
                **(extra_meta or {}),
            )
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> FaissIndex:
        """Load an index written by :meth:`save`.

        Raises:
            FileNotFoundError: a file the index needs is missing.
            ValueError: a damaged ``index.faiss``, ``ids.json`` or ``meta.json``, naming the file.
        """
        directory = Path(directory)
        meta = read_meta(directory, kinds=(KIND,))
        require_files(directory, meta, (INDEX_FILE, IDS_FILE))
        self = cls.__new__(cls)
        self.dim = meta_value(directory, meta, "dim", int)
        self.factory = meta_value(directory, meta, "factory", str)
        self.metric = check_metric(meta_value(directory, meta, "metric", str))
        self.search_params = dict(meta.get("search_params") or {})
        self.device = self._resolve_device(device)
        try:
            cpu_index = faiss.read_index(str(directory / INDEX_FILE))
        except RuntimeError as exc:
            size = (directory / INDEX_FILE).stat().st_size
            raise ValueError(
                f"{directory / INDEX_FILE}: not a readable faiss index ({size} bytes; truncated or "
                f"damaged): {str(exc).strip().splitlines()[-1]}"
            ) from exc
        if cpu_index.d != self.dim:
            raise ValueError(
                f"{directory / INDEX_FILE} holds vectors of dimension {cpu_index.d}; "
                f"meta.json says {self.dim}"
            )
        ids = read_json_file(directory / IDS_FILE, list)
        if len(ids) != cpu_index.ntotal:
            raise ValueError(
                f"{directory}: {IDS_FILE} holds {len(ids)} ids but {INDEX_FILE} holds "
                f"{cpu_index.ntotal} vectors"
            )
        self._ids = ids
        self._positions = {doc_id: i for i, doc_id in enumerate(ids)}
        self._index = self._place(cpu_index)
        self._apply_search_params()
        return self
