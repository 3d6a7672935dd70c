"""Top-k helpers the numba search kernels share: a min-heap of (score, document) hits whose root is the
worst hit kept, and a vectorisable "any entry above" test.

Ties are broken towards the lower document number, as Lucene does.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always", cache=True)
def better(score_a: float, doc_a: int, score_b: float, doc_b: int) -> bool:
    return score_a > score_b or (score_a == score_b and doc_a < doc_b)


@njit(cache=True)
def sift_down(heap_s: np.ndarray, heap_d: np.ndarray, size: int, pos: int) -> None:
    """Restore a min-heap (worst hit at the root) below ``pos``."""
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and better(heap_s[worst], heap_d[worst], heap_s[right], heap_d[right]):
            worst = right
        if better(heap_s[pos], heap_d[pos], heap_s[worst], heap_d[worst]):
            heap_s[pos], heap_s[worst] = heap_s[worst], heap_s[pos]
            heap_d[pos], heap_d[worst] = heap_d[worst], heap_d[pos]
            pos = worst
        else:
            return


@njit(cache=True)
def sift_up(heap_s: np.ndarray, heap_d: np.ndarray, pos: int) -> None:
    """Restore a min-heap above ``pos`` after an insertion there."""
    while pos > 0:
        parent = (pos - 1) // 2
        if not better(heap_s[parent], heap_d[parent], heap_s[pos], heap_d[pos]):
            return
        heap_s[parent], heap_s[pos] = heap_s[pos], heap_s[parent]
        heap_d[parent], heap_d[pos] = heap_d[pos], heap_d[parent]
        pos = parent


@njit(inline="always", cache=True)
def offer(heap_s: np.ndarray, heap_d: np.ndarray, size: int, k: int, score: float, doc: int) -> int:
    """Offer a hit to a min-heap of at most ``k``: fill it, or replace the root if the hit is better;
    returns the new size."""
    if size < k:
        heap_s[size] = score
        heap_d[size] = doc
        sift_up(heap_s, heap_d, size)
        return size + 1
    if better(score, doc, heap_s[0], heap_d[0]):
        heap_s[0] = score
        heap_d[0] = doc
        sift_down(heap_s, heap_d, size, 0)
    return size


@njit(cache=True)
def heap_sort(heap_s: np.ndarray, heap_d: np.ndarray, size: int) -> None:
    """Sort a min-heap of ``size`` hits in place, best first."""
    end = size
    while end > 1:
        end -= 1
        heap_s[0], heap_s[end] = heap_s[end], heap_s[0]
        heap_d[0], heap_d[end] = heap_d[end], heap_d[0]
        sift_down(heap_s, heap_d, end, 0)


@njit(cache=True)
def any_above(values: np.ndarray, threshold: float) -> bool:
    """Whether any of ``values`` exceeds ``threshold``; a loop from 0 over a view, which LLVM vectorises
    (a loop over ``range(lo, hi)`` of the whole array keeps numba's negative-index check per element
    and runs scalar)."""
    count = 0
    for x in range(len(values)):
        count += np.int32(values[x] > threshold)
    return count > 0


@njit(cache=True)
def count_above(values: np.ndarray, threshold: float) -> int:
    """How many of ``values`` exceed ``threshold`` (vectorised, as :func:`any_above`)."""
    count = 0
    for x in range(len(values)):
        count += np.int32(values[x] > threshold)
    return count
