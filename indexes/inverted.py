"""``InvertedIndex``: an embedded (in-process, serverless) exact inverted index for sparse vectors.

Postings are kept per term in CSC form (``indptr`` per term, document numbers int32, weights float32 or
integer impacts), so memory scales with the number of postings; the first search adds the blocked
kernel's view of them (uint16 in-block offsets and per-term block pointers, 2 bytes per posting more).
Search is exact term-at-a-time accumulation compiled with numba (:mod:`indexes.inverted_kernels`),
parallel over queries.

Quantisation (``impact_scale``) stores ``round(w * impact_scale)`` as uint16 impacts and quantises
query weights with ``query_scale``, exactly as a Lucene impact index built from the same
``JsonVectorCollection`` does; scores are reported divided by ``impact_scale * query_scale``.

Example:
    >>> index = InvertedIndex(dim=30522)
    >>> index.add(doc_csr, ids)          # scipy CSR (n_docs, vocab), non-negative weights
    >>> hits = index.search(query_csr, k=10)
    >>> index.save("runs/scifact-inverted"); InvertedIndex.load("runs/scifact-inverted")
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy import sparse

from indexes.base import Hits, check_ids
from indexes.block_max import block_maxima, search_maxscore
from indexes.inverted_kernels import BLOCK, DENSE_RATIO, ScratchPool, block_layout, search_postings
from indexes.io import atomic_directory, meta_value, read_json_file, read_meta, require_files, write_meta

logger = logging.getLogger(__name__)

KIND = "inverted"
# strategy -> the kernel's dense_ratio: blocked when postings * dense_ratio >= documents (int32 numbers,
# so 2**31 makes every query with a posting blocked); "maxscore" runs indexes.block_max instead
STRATEGIES = {"auto": DENSE_RATIO, "touched": 0, "blocked": 2**31, "maxscore": 2**31}
MAX_IMPACT = np.iinfo(np.uint16).max


def check_sparse(
    matrix: Any, dim: int, what: str = "vectors", non_negative: bool = False
) -> sparse.csr_matrix:
    """Return ``matrix`` as a float32 CSR with ``dim`` columns and finite (with ``non_negative``: >= 0)
    values, or raise saying why not and where."""
    if not sparse.issparse(matrix):
        arr = np.asarray(matrix)
        if arr.ndim != 2:
            raise ValueError(f"{what} must be a 2-D (n, {dim}) matrix; got shape {arr.shape}")
        matrix = sparse.csr_matrix(arr)
    csr = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)  # cleaned in place below
    if csr.shape[1] != dim:
        raise ValueError(f"{what} have {csr.shape[1]} dimensions; this index has {dim} (vocabulary size)")
    if not np.isfinite(csr.data).all():
        bad = int(np.flatnonzero(~np.isfinite(csr.data))[0])
        row = int(np.searchsorted(csr.indptr, bad, side="right") - 1)
        raise ValueError(f"{what} contain NaN or infinite weights, first in row {row}")
    csr.sum_duplicates()
    if non_negative and csr.nnz and csr.data.min() < 0:
        bad = int(np.flatnonzero(csr.data < 0)[0])
        row = int(np.searchsorted(csr.indptr, bad, side="right") - 1)
        raise ValueError(
            f"{what} must have non-negative weights (SPLADE weights are log(1 + relu(x))); "
            f"row {row} has {float(csr.data[bad]):g}"
        )
    csr.eliminate_zeros()
    return csr


def to_impacts(weights: np.ndarray, scale: float) -> np.ndarray:
    """Document impacts ``round(w * scale)`` capped at uint16, as both this index and Lucene store them."""
    return np.minimum(np.rint(weights * scale), MAX_IMPACT)


def quantize_queries(queries: Any, dim: int, scale: float) -> sparse.csr_matrix:
    """Queries with integer weights ``round(q * scale)`` (zeros dropped), as impact search sends them."""
    q = check_sparse(queries, dim, "queries")
    q.data = np.rint(q.data * scale)
    q.eliminate_zeros()
    return q


class InvertedIndex:
    """Exact top-k sparse dot-product search over postings lists.

    Args:
        dim: vocabulary size (columns of the sparse vectors).
        impact_scale: store integer impacts ``round(w * impact_scale)`` (uint16) instead of float weights.
        query_scale: with ``impact_scale``, quantise query weights as ``round(q * query_scale)``.
        threads: search threads (default: all numba threads).
        vocabulary: optional token strings, saved with the index (exports name terms with them).
    """

    metric = "ip"

    def __init__(
        self,
        dim: int,
        impact_scale: float | None = None,
        query_scale: float = 100.0,
        threads: int | None = None,
        vocabulary: Sequence[str] | None = None,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive; got {dim}")
        if impact_scale is not None and impact_scale <= 0:
            raise ValueError(f"impact_scale must be positive or None (float weights); got {impact_scale}")
        if vocabulary is not None and len(vocabulary) != dim:
            raise ValueError(f"vocabulary has {len(vocabulary)} tokens; expected dim={dim}")
        self.dim = dim
        self.impact_scale = impact_scale
        self.query_scale = float(query_scale)
        self.threads = threads
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        self.ids: list[str] = []
        self._id_pos: dict[str, int] = {}
        self._pending: list[sparse.csr_matrix] = []
        self._postings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._layouts: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # block -> (bptr, local)
        self._maxima: dict[int, np.ndarray] = {}  # block -> per-term block maxima (MaxScore only)
        self._scratch = ScratchPool()

    # -- building -------------------------------------------------------------------------------------
    def add(self, vectors: Any, ids: Sequence[str]) -> None:
        """Add sparse document vectors (CSR or dense (n, dim); weights must be non-negative)."""
        csr = check_sparse(vectors, self.dim, "document vectors", non_negative=True)
        ids = check_ids(ids, csr.shape[0], self._id_pos)
        if self.impact_scale is not None:
            csr.data = to_impacts(csr.data, self.impact_scale)
            csr.eliminate_zeros()  # weights below 0.5 / impact_scale quantise to nothing
        for i, doc_id in enumerate(ids, start=len(self.ids)):
            self._id_pos[doc_id] = i
        self.ids.extend(ids)
        self._pending.append(csr)

    def _finalize(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._pending:
            parts = self._pending
            if self._postings is not None:
                indptr, docs, weights = self._postings
                old = sparse.csc_matrix(
                    (weights, docs, indptr), shape=(len(self.ids) - sum(p.shape[0] for p in parts), self.dim)
                )
                parts = [old.tocsr(), *parts]
            csc = sparse.vstack(parts, format="csr").tocsc()
            csc.sort_indices()
            dtype = np.uint16 if self.impact_scale is not None else np.float32
            self._postings = (
                csc.indptr.astype(np.int64),
                csc.indices.astype(np.int32),
                csc.data.astype(dtype),
            )
            self._pending = []
            self._layouts, self._maxima = {}, {}
        if self._postings is None:
            empty = (np.zeros(self.dim + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
            return empty
        return self._postings

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_trained(self) -> bool:
        """Always True: an inverted index needs no training."""
        return True

    def train(self, vectors: Any) -> None:
        """A no-op (nothing to train); here so that every index answers the same calls."""

    def document_matrix(self) -> sparse.csr_matrix:
        """The indexed weights as a (documents x vocabulary) CSR matrix, row ``i`` for ``ids[i]``
        (integer impacts, as float32, for an impact index)."""
        indptr, docs, weights = self._finalize()
        shape = (len(self.ids), self.dim)
        return sparse.csc_matrix((weights.astype(np.float32), docs, indptr), shape=shape).tocsr()

    @property
    def n_postings(self) -> int:
        return len(self._finalize()[1])

    def term_frequencies(self) -> np.ndarray:
        """Document frequency of every term (postings per term)."""
        return np.diff(self._finalize()[0])

    # -- searching ------------------------------------------------------------------------------------
    def quantize_queries(self, queries: Any) -> sparse.csr_matrix:
        """Query vectors as the index scores them: float, or integer weights with ``impact_scale``."""
        if self.impact_scale is not None:
            return quantize_queries(queries, self.dim, self.query_scale)
        return check_sparse(queries, self.dim, "queries")

    def search(
        self,
        queries: Any,
        k: int,
        threads: int | None = None,
        strategy: str = "auto",
        block: int = BLOCK,
    ) -> Hits:
        """Exact top-``k`` documents by dot product for each query (CSR or dense (n, dim)).

        ``strategy`` picks the kernel's way of scoring (:mod:`indexes.inverted_kernels`): ``auto`` (per
        query), ``touched``, ``blocked`` (where the query's weights allow) or ``maxscore`` (block-max
        MaxScore, one thread, queries with positive weights; :mod:`indexes.block_max`); all give the same
        hits and scores. The last three exist to measure one against another, as ``block`` (documents per
        block of the blocked strategies) exists to tune them.
        """
        if k <= 0:
            raise ValueError(f"k must be positive; got {k}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        q = self.quantize_queries(queries)
        indptr, docs, weights = self._finalize()
        n_docs = len(self.ids)
        bptr, local = self._block_layout(int(block))
        kk = max(1, min(k, n_docs))
        n_threads = max(1, min(threads or self.threads or numba.get_num_threads(), max(q.shape[0], 1)))
        previous = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            q_args = (q.indptr.astype(np.int64), q.indices.astype(np.int64), q.data.astype(np.float32))
            if strategy == "maxscore":
                if (q_args[2] <= 0).any():
                    raise ValueError("strategy 'maxscore' needs positive query weights")
                bmax = self._maxima.get(int(block))
                if bmax is None:
                    bmax = self._maxima[int(block)] = block_maxima(bptr, weights)
                top_d, top_s, counts = search_maxscore(
                    bptr, local, weights, bmax, *q_args, max(n_docs, 1), kk, int(block)
                )
            else:
                with self._scratch.borrow(n_threads, max(n_docs, 1)) as buffers:
                    top_d, top_s, counts = search_postings(
                        indptr,
                        docs,
                        weights,
                        bptr,
                        local,
                        *q_args,
                        max(n_docs, 1),
                        kk,
                        *buffers,
                        int(block),
                        STRATEGIES[strategy],
                    )
        finally:
            numba.set_num_threads(previous)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        scores[:, :kk] = top_s
        if self.impact_scale is not None:
            scores /= np.float32(self.impact_scale * self.query_scale)
        hits = [[self.ids[d] for d in row[:c]] for row, c in zip(top_d, counts, strict=True)]
        return Hits(ids=hits, scores=scores)

    def _block_layout(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """The blocked kernels' view of the postings for ``block``, built once per block size and kept
        until documents are added (a block size other than the default costs 2 bytes per posting more);
        :func:`~indexes.inverted_kernels.block_layout` refuses a size it cannot address. The per-term
        block maxima MaxScore reads are built beside it on its first use only."""
        indptr, docs, _ = self._finalize()
        if block not in self._layouts:
            self._layouts[block] = block_layout(indptr, docs, max(len(self.ids), 1), block)
        return self._layouts[block]

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write postings, ids (and vocabulary) and ``meta.json`` atomically; return the directory."""
        indptr, docs, weights = self._finalize()
        with atomic_directory(directory, family="index") as tmp:
            np.save(tmp / "indptr.npy", indptr)
            np.save(tmp / "docs.npy", docs)
            np.save(tmp / "weights.npy", weights)
            (tmp / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")
            if self.vocabulary is not None:
                (tmp / "vocabulary.json").write_text(json.dumps(self.vocabulary), encoding="utf-8")
            write_meta(
                tmp,
                KIND,
                dim=self.dim,
                metric=self.metric,
                n_documents=len(self.ids),
                n_postings=len(docs),
                impact_scale=self.impact_scale,
                query_scale=self.query_scale,
                **(extra_meta or {}),
            )
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False, threads: int | None = None) -> InvertedIndex:
        """Load an index written by :meth:`save` (``mmap`` maps the postings instead of reading them).

        Raises:
            FileNotFoundError: a file the index needs is missing.
            ValueError: a damaged postings file, ``ids.json`` or ``meta.json``, naming the file.
        """
        directory = Path(directory)
        meta = read_meta(directory, kinds=(KIND,))
        names = ("indptr", "docs", "weights")
        require_files(directory, meta, (*(f"{name}.npy" for name in names), "ids.json"))
        vocab_file = directory / "vocabulary.json"
        vocabulary = read_json_file(vocab_file, list) if vocab_file.is_file() else None
        n_documents = meta_value(directory, meta, "n_documents", int)
        index = cls(
            meta_value(directory, meta, "dim", int),
            impact_scale=meta.get("impact_scale"),
            query_scale=float(meta.get("query_scale", 100.0)),
            threads=threads,
            vocabulary=vocabulary,
        )
        index._postings = tuple(_load_array(directory / f"{name}.npy", mmap) for name in names)  # type: ignore[assignment]
        indptr, docs, weights = index._postings
        if len(indptr) != index.dim + 1 or len(docs) != len(weights) or int(indptr[-1]) != len(docs):
            raise ValueError(
                f"{directory}: postings do not fit together (indptr.npy {len(indptr)} entries for dim "
                f"{index.dim}, docs.npy {len(docs)}, weights.npy {len(weights)}); the index is damaged"
            )
        index.ids = read_json_file(directory / "ids.json", list)
        index._id_pos = {d: i for i, d in enumerate(index.ids)}
        if len(index.ids) != n_documents:
            raise ValueError(
                f"{directory}: ids.json has {len(index.ids)} ids but meta.json says {n_documents}"
            )
        return index


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    """``np.load`` of one postings file, or a ValueError naming it when it is truncated or damaged."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npy array (truncated or damaged): {exc}") from exc
