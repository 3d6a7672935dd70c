"""Numba kernels of the embedded inverted index: term-at-a-time scoring and exact top-k.

Exact strategies, chosen per query; all return the same documents with the same scores, in the same
order:

- *touched list* (queries with few postings, or with a weight <= 0): each worker thread owns one score
  accumulator over all documents (float32), a "seen" flag array and a list of the documents the query
  touched; after the query only the touched entries are read and reset, so it costs
  O(postings of its terms + touched * log k), independent of the collection size.
- *blocked* (all weights > 0 and at least ``n_docs / DENSE_RATIO`` postings): the documents are cut into
  blocks of ``BLOCK`` consecutive numbers; for each block the postings of every query term that fall in
  it are added into a block-sized accumulator that stays in the core's L2 cache, which is then scanned
  in document order against the k-th best score so far and zeroed: ``SCAN_CHUNK`` entries at a time are
  first tested together (vectorised) and only a chunk with an entry above the k-th best score is
  walked and offered to the heap. On a 1M-document collection this is ~3x faster than scattering
  into an accumulator over all documents (docs/results.md, "Sparse search speed").
  It reads a *block layout* of the postings (:func:`block_layout`): each posting's document as a uint16
  offset inside its block and, per term, where each block's postings start. A posting then costs 4
  bytes to read instead of 6 and no block boundary has to be searched for.
- *block-max MaxScore* (:mod:`indexes.block_max`, asked for by name, one thread): per-block maxima of
  each term skip blocks and the postings of terms that cannot lift a document into the top k.

Every inner loop runs over a view indexed from 0 (or with unsigned indices): numba checks each index of
a ``range(lo, hi)`` loop over a whole array for a negative value, which keeps LLVM from vectorising the
scan and costs the scatter loops a compare per posting. With the block layout, this made the blocked
kernel 2.6x faster at 1M synthetic documents, one thread, same hits (docs/results.md).

Ties are broken towards the lower internal document number (insertion order), as Lucene does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
from numba import njit, prange

from indexes.kernel_heap import any_above, better, heap_sort, offer

BLOCK = 65536  # documents per block: a 256 KiB float32 accumulator, inside a 1-2 MiB L2 cache; also the
# largest block a uint16 in-block offset can address
DENSE_RATIO = 16  # a query takes the blocked path when its postings number at least n_docs / 16
SCAN_CHUNK = 512  # accumulator entries tested at once (vectorised) before any is offered to the heap


@njit(cache=True)
def _top_k(
    acc: np.ndarray,
    touched: np.ndarray,
    n_touched: int,
    k: int,
    out_s: np.ndarray,
    out_d: np.ndarray,
) -> int:
    """Write the best ``k`` touched documents, best first, into ``out_*``; return how many."""
    size = 0
    for t in range(n_touched):
        doc = touched[t]
        score = acc[doc]
        if size < k or better(score, doc, out_s[0], out_d[0]):  # most documents fail this cheap test
            size = offer(out_s, out_d, size, k, score, doc)
    heap_sort(out_s, out_d, size)
    return size


@njit(cache=True)
def _query_touched(
    indptr: np.ndarray,
    docs: np.ndarray,
    weights: np.ndarray,
    terms: np.ndarray,
    q_weights: np.ndarray,
    k: int,
    acc: np.ndarray,
    seen: np.ndarray,
    touched: np.ndarray,
    out_s: np.ndarray,
    out_d: np.ndarray,
) -> int:
    """One query, touched-list strategy (any weights); ``acc`` and ``seen`` are all zero on return."""
    n_touched = 0
    for j in range(len(terms)):
        term = terms[j]
        qw = np.float32(q_weights[j])
        term_docs = docs[indptr[term] : indptr[term + 1]]  # views indexed from 0: no wraparound checks
        term_weights = weights[indptr[term] : indptr[term + 1]]
        for p in range(len(term_docs)):
            doc = np.uint32(term_docs[p])  # unsigned: no negative-index check either
            if not seen[doc]:
                seen[doc] = True
                touched[n_touched] = doc
                n_touched += 1
            acc[doc] += qw * np.float32(term_weights[p])
    count = _top_k(acc, touched, n_touched, k, out_s, out_d)
    for t in range(n_touched):
        acc[touched[t]] = 0.0
        seen[touched[t]] = False
    return count


@njit(cache=True)
def _block_pointers(indptr: np.ndarray, docs: np.ndarray, block: int, n_blocks: int) -> np.ndarray:
    n_terms = len(indptr) - 1
    bptr = np.empty((n_terms, n_blocks + 1), np.int64)
    for t in range(n_terms):
        p = indptr[t]
        for b in range(n_blocks):
            start = b * block
            while p < indptr[t + 1] and docs[p] < start:
                p += 1
            bptr[t, b] = p
        bptr[t, n_blocks] = indptr[t + 1]
    return bptr


@njit(cache=True)
def _offsets(docs: np.ndarray, block: int) -> np.ndarray:
    local = np.empty(len(docs), np.uint16)
    for p in range(len(docs)):
        local[p] = docs[p] % block
    return local


def block_layout(
    indptr: np.ndarray, docs: np.ndarray, n_docs: int, block: int
) -> tuple[np.ndarray, np.ndarray]:
    """The blocked kernel's view of CSC postings (documents sorted within each term): ``bptr``
    (n_terms, n_blocks + 1), where term t's postings in block b are ``bptr[t, b]:bptr[t, b + 1]``, and
    ``local``, each posting's document minus its block's first document (uint16)."""
    if not 0 < block <= BLOCK:
        raise ValueError(f"block must be between 1 and {BLOCK} documents (uint16 offsets); got {block}")
    n_blocks = max(1, -(-n_docs // block))
    return _block_pointers(indptr, docs, block, n_blocks), _offsets(docs, block)


@njit(cache=True)
def _query_blocked(
    bptr: np.ndarray,
    local: np.ndarray,
    weights: np.ndarray,
    terms: np.ndarray,
    q_weights: np.ndarray,
    n_docs: int,
    k: int,
    block: int,
    acc: np.ndarray,
    out_s: np.ndarray,
    out_d: np.ndarray,
) -> int:
    """One query with weights > 0, blocked strategy over the block layout; uses ``acc[:block]`` and
    leaves it zero."""
    n = len(terms)
    qw = np.empty(n, np.float32)
    for j in range(n):
        qw[j] = q_weights[j]
    size = 0
    threshold = np.float32(0.0)  # every weight is > 0: a touched document scores > 0
    for b in range(bptr.shape[1] - 1):
        first = b * block
        width = min(n_docs, first + block) - first
        for j in range(n):  # each term's postings in this block, as views indexed from 0
            t = terms[j]
            w = qw[j]
            offsets = local[bptr[t, b] : bptr[t, b + 1]]
            block_weights = weights[bptr[t, b] : bptr[t, b + 1]]
            for p in range(len(offsets)):
                acc[offsets[p]] += w * np.float32(block_weights[p])
        for c0 in range(0, width, SCAN_CHUNK):  # document order: a later document never wins a tie
            c1 = min(width, c0 + SCAN_CHUNK)
            if not any_above(acc[c0:c1], threshold):
                continue
            for x in range(c0, c1):
                score = acc[x]
                if score > threshold:  # then it enters: with a full heap, it beats the root's score
                    size = offer(out_s, out_d, size, k, score, first + x)
                    if size == k:
                        threshold = out_s[0]
        acc[:width] = 0.0
    heap_sort(out_s, out_d, size)
    return size


def scratch(n_threads: int, n_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh worker scratch for :func:`search_postings`: (acc, seen, touched), each (n_threads, n_docs)."""
    return (
        np.zeros((n_threads, n_docs), dtype=np.float32),
        np.zeros((n_threads, n_docs), dtype=np.bool_),
        np.empty((n_threads, n_docs), dtype=np.int64),
    )


class ScratchPool:
    """The kernels' per-thread scratch, kept between searches (the kernels leave it zeroed; allocating
    and zeroing ``n_docs``-sized arrays per call costs more than a query at 1M documents). A search
    running while another holds it gets fresh arrays.

    Example:
        >>> pool = ScratchPool()
        >>> with pool.borrow(2, 1000) as (acc, seen, touched):
        ...     pass
    """

    def __init__(self) -> None:
        self.kept: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, n_threads: int, n_docs: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if not self._lock.acquire(blocking=False):
            yield scratch(n_threads, n_docs)
            return
        try:
            if self.kept is None or self.kept[0].shape != (n_threads, n_docs):
                self.kept = scratch(n_threads, n_docs)
            yield self.kept
        finally:
            self._lock.release()


@njit(parallel=True, cache=True)
def search_postings(
    indptr: np.ndarray,
    docs: np.ndarray,
    weights: np.ndarray,
    bptr: np.ndarray,
    local: np.ndarray,
    q_indptr: np.ndarray,
    q_terms: np.ndarray,
    q_weights: np.ndarray,
    n_docs: int,
    k: int,
    acc: np.ndarray,
    seen: np.ndarray,
    touched: np.ndarray,
    block: int = BLOCK,
    dense_ratio: int = DENSE_RATIO,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``sum_t q_t * w_dt`` for every query (CSR ``q_*``) over postings (CSC, documents
    sorted within each term; ``bptr`` and ``local`` their :func:`block_layout` for ``block``), each query
    by the strategy that suits it (module docstring; ``block`` and ``dense_ratio`` are exposed for tests).

    ``acc`` (float32), ``seen`` (bool) and ``touched`` (int64), each (threads, n_docs), are the workers'
    scratch (:func:`scratch`): one row per worker thread, all zero (``touched``: anything) on entry and
    left so, so that a caller can keep them from one search to the next (allocating and zeroing them
    costs more than a query at a million documents).

    Returns (doc numbers (nq, k) int64, scores (nq, k) float32, hit counts (nq,) int64).
    """
    n_queries = len(q_indptr) - 1
    out_d = np.full((n_queries, k), -1, dtype=np.int64)
    out_s = np.full((n_queries, k), -np.inf, dtype=np.float32)
    counts = np.zeros(n_queries, dtype=np.int64)
    n_threads = acc.shape[0]
    chunk = (n_queries + n_threads - 1) // n_threads
    for worker in prange(n_threads):
        for qi in range(worker * chunk, min(n_queries, (worker + 1) * chunk)):
            lo, hi = q_indptr[qi], q_indptr[qi + 1]
            terms, weights_q = q_terms[lo:hi], q_weights[lo:hi]
            postings = 0
            positive = True
            for j in range(hi - lo):
                postings += indptr[terms[j] + 1] - indptr[terms[j]]
                positive = positive and weights_q[j] > 0
            if positive and postings * dense_ratio >= n_docs:
                counts[qi] = _query_blocked(
                    bptr,
                    local,
                    weights,
                    terms,
                    weights_q,
                    n_docs,
                    k,
                    block,
                    acc[worker],
                    out_s[qi],
                    out_d[qi],
                )
            else:
                counts[qi] = _query_touched(
                    indptr,
                    docs,
                    weights,
                    terms,
                    weights_q,
                    k,
                    acc[worker],
                    seen[worker],
                    touched[worker],
                    out_s[qi],
                    out_d[qi],
                )
    return out_d, out_s, counts
