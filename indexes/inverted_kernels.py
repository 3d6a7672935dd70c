"""Numba kernels of the embedded inverted index: term-at-a-time scoring and exact top-k.

Each worker thread owns one score accumulator over all documents (float32), a "seen" flag array and
a list of the documents the query touched; after a query only the touched entries are read and reset,
so a query costs O(postings of its terms + touched * log k), independent of the collection size.
Ties are broken towards the lower internal document number (insertion order), as Lucene does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _better(score_a: float, doc_a: int, score_b: float, doc_b: int) -> bool:
    return score_a > score_b or (score_a == score_b and doc_a < doc_b)


@njit(cache=True)
def _sift_down(heap_s: np.ndarray, heap_d: np.ndarray, size: int, pos: int) -> None:
    """Restore a min-heap (worst hit at the root) below ``pos``."""
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _better(heap_s[worst], heap_d[worst], heap_s[right], heap_d[right]):
            worst = right
        if _better(heap_s[pos], heap_d[pos], heap_s[worst], heap_d[worst]):
            heap_s[pos], heap_s[worst] = heap_s[worst], heap_s[pos]
            heap_d[pos], heap_d[worst] = heap_d[worst], heap_d[pos]
            pos = worst
        else:
            return


@njit(cache=True)
def _sift_up(heap_s: np.ndarray, heap_d: np.ndarray, pos: int) -> None:
    """Restore a min-heap above ``pos`` after an insertion there."""
    while pos > 0:
        parent = (pos - 1) // 2
        if not _better(heap_s[parent], heap_d[parent], heap_s[pos], heap_d[pos]):
            return
        heap_s[parent], heap_s[pos] = heap_s[pos], heap_s[parent]
        heap_d[parent], heap_d[pos] = heap_d[pos], heap_d[parent]
        pos = parent


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
        if size < k:
            out_s[size] = score
            out_d[size] = doc
            _sift_up(out_s, out_d, size)
            size += 1
        elif _better(score, doc, out_s[0], out_d[0]):
            out_s[0] = score
            out_d[0] = doc
            _sift_down(out_s, out_d, size, 0)
    # heap sort in place: repeatedly move the worst to the end
    end = size
    while end > 1:
        end -= 1
        out_s[0], out_s[end] = out_s[end], out_s[0]
        out_d[0], out_d[end] = out_d[end], out_d[0]
        _sift_down(out_s, out_d, end, 0)
    return size


@njit(parallel=True, cache=True)
def search_postings(
    indptr: np.ndarray,
    docs: np.ndarray,
    weights: np.ndarray,
    q_indptr: np.ndarray,
    q_terms: np.ndarray,
    q_weights: np.ndarray,
    n_docs: int,
    k: int,
    n_threads: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``sum_t q_t * w_dt`` for every query (CSR ``q_*``) over postings (CSC).

    Returns (doc numbers (nq, k) int64, scores (nq, k) float32, hit counts (nq,) int64).
    """
    n_queries = len(q_indptr) - 1
    out_d = np.full((n_queries, k), -1, dtype=np.int64)
    out_s = np.full((n_queries, k), -np.inf, dtype=np.float32)
    counts = np.zeros(n_queries, dtype=np.int64)
    acc = np.zeros((n_threads, n_docs), dtype=np.float32)
    seen = np.zeros((n_threads, n_docs), dtype=np.bool_)
    touched = np.empty((n_threads, n_docs), dtype=np.int64)
    chunk = (n_queries + n_threads - 1) // n_threads
    for worker in prange(n_threads):
        a = acc[worker]
        s = seen[worker]
        tl = touched[worker]
        for qi in range(worker * chunk, min(n_queries, (worker + 1) * chunk)):
            n_touched = 0
            for j in range(q_indptr[qi], q_indptr[qi + 1]):
                term = q_terms[j]
                qw = np.float32(q_weights[j])
                for p in range(indptr[term], indptr[term + 1]):
                    doc = docs[p]
                    if not s[doc]:
                        s[doc] = True
                        tl[n_touched] = doc
                        n_touched += 1
                    a[doc] += qw * np.float32(weights[p])
            counts[qi] = _top_k(a, tl, n_touched, k, out_s[qi], out_d[qi])
            for t in range(n_touched):
                a[tl[t]] = 0.0
                s[tl[t]] = False
    return out_d, out_s, counts
