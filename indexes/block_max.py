"""Block-max MaxScore: exact dynamic pruning for the blocked term-at-a-time kernel.

The documents are cut into the blocked kernel's blocks (:func:`indexes.inverted_kernels.block_layout`);
for every term the largest weight it has in each block is kept (:func:`block_maxima`, one float32 per
term and block). Within block ``b`` a query term ``j`` can add at most ``q_j * max_b(t_j)`` to a
document's score. With ``theta`` the k-th best score found so far (documents arrive in increasing
order, so a later document enters the top k only with a score strictly above it):

- *block skip*: when the sum of the bounds of all query terms is at most ``theta``, no document of the
  block can enter and its postings are not read;
- *MaxScore split*: the terms are sorted by bound; the longest prefix whose bounds sum to at most
  ``theta`` is *non-essential*: a document holding only those terms cannot enter. Only the essential
  terms' postings are added into the block accumulator; a document is a *candidate* when its partial
  score plus the non-essential bounds exceeds ``theta``, and only candidates are scored in full.

Inference-free queries weight tokens by IDF, so the terms with the smallest bounds are the frequent ones
with the longest postings: those are the lists the split stops reading.

A candidate's score is recomputed term by term in query order (a galloping cursor per term over the
block's postings), the very sequence of float32 additions the unpruned kernels make, so pruned and
unpruned search return identical scores and, ties broken by document number, identical top-k lists.
Bounds are compared with a margin for float32 rounding, so no document is dropped by rounding.

When too many documents qualify as candidates for lookups to pay (each costs about ``SEEK_COST``
postings' worth of accumulation), the block's non-essential postings are added as well and only the
documents whose sum comes near the k-th best are re-scored in query order.

Measured (docs/results.md, "Sparse search speed"): on collections in random document order the per-block
maxima are close to each term's global maximum, most documents qualify as candidates and the pruned
search is slower than the blocked kernel, so ``InvertedIndex.search``'s ``auto`` strategy does not use
it; ``strategy="maxscore"`` runs it (one thread).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from indexes.kernel_heap import any_above, count_above, heap_sort, offer

SCAN_CHUNK = 512  # accumulator entries tested at once before any is looked at (as the blocked kernel)
SEEK_COST = 48  # a candidate's lookup in one term's postings costs about as much as adding this many postings
_ULP = 1.2e-7  # float32 unit roundoff; a sum of n positive float32 terms is within n * _ULP of exact


@njit(cache=True)
def block_maxima(bptr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n_terms, n_blocks) float32: each term's largest weight in each block (0 where it has none)."""
    n_terms, n_blocks = bptr.shape[0], bptr.shape[1] - 1
    out = np.zeros((n_terms, n_blocks), np.float32)
    for t in range(n_terms):
        for b in range(n_blocks):
            values = weights[bptr[t, b] : bptr[t, b + 1]]
            best = np.float32(0.0)
            for p in range(len(values)):
                best = max(best, np.float32(values[p]))
            out[t, b] = best
    return out


@njit(cache=True)
def _seek(offsets: np.ndarray, start: int, target: int) -> int:
    """First position >= ``start`` whose offset is >= ``target`` (offsets sorted): galloping, then
    binary search."""
    n = len(offsets)
    if start >= n or offsets[start] >= target:
        return start
    step = 1
    lo = start
    while lo + step < n and offsets[lo + step] < target:
        lo += step
        step *= 2
    hi = min(n, lo + step + 1)
    lo += 1
    while lo < hi:  # offsets[lo - 1] < target; find the first >= target in [lo, hi)
        mid = (lo + hi) // 2
        if offsets[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _add_postings(
    acc: np.ndarray, local: np.ndarray, weights: np.ndarray, lo: int, hi: int, w: float
) -> None:
    """Add ``w`` times the weights of postings ``lo:hi`` (one term in one block) into ``acc``."""
    offsets = local[lo:hi]  # views indexed from 0, as the blocked kernel reads them
    block_weights = weights[lo:hi]
    for p in range(len(offsets)):
        acc[offsets[p]] += w * np.float32(block_weights[p])


@njit(cache=True)
def _contribution(
    x: int,
    j: int,
    b: int,
    bptr: np.ndarray,
    local: np.ndarray,
    weights: np.ndarray,
    terms: np.ndarray,
    qw: np.ndarray,
    cursor: np.ndarray,
) -> np.float32:
    """Query term ``j``'s addition to the score of document ``x`` of block ``b`` (0 if the document lacks
    the term); ``cursor[j]``, a position in the term's postings that only moves forward, finds it."""
    offsets = local[cursor[j] : bptr[terms[j], b + 1]]
    c = _seek(offsets, 0, x)
    cursor[j] += c
    if c < len(offsets) and offsets[c] == x:
        return qw[j] * np.float32(weights[cursor[j]])
    return np.float32(0.0)


@njit(cache=True)
def _full_score(
    x: int,
    b: int,
    bptr: np.ndarray,
    local: np.ndarray,
    weights: np.ndarray,
    terms: np.ndarray,
    qw: np.ndarray,
    cursor: np.ndarray,
) -> np.float32:
    """Document ``x`` of block ``b`` scored term by term in query order: the float32 additions of unpruned
    search (adding 0 for an absent term changes no sum)."""
    score = np.float32(0.0)
    for j in range(len(terms)):
        score += _contribution(x, j, b, bptr, local, weights, terms, qw, cursor)
    return score


@njit(cache=True)
def query_maxscore(
    bptr: np.ndarray,
    local: np.ndarray,
    weights: np.ndarray,
    bmax: np.ndarray,
    terms: np.ndarray,
    q_weights: np.ndarray,
    n_docs: int,
    k: int,
    block: int,
    acc: np.ndarray,
    out_s: np.ndarray,
    out_d: np.ndarray,
) -> int:
    """One query with weights > 0 over the block layout, pruned by block-max MaxScore (module doc);
    uses ``acc[:block]`` and leaves it zero. Returns the number of hits written to ``out_*``."""
    n = len(terms)
    qw = np.empty(n, np.float32)
    for j in range(n):
        qw[j] = q_weights[j]
    bound = np.empty(n, np.float32)
    order = np.empty(n, np.int64)
    essential = np.empty(n, np.bool_)
    ne = np.empty(n, np.int64)
    cursor = np.zeros(n, np.int64)
    margin = 2 * (n + 2) * _ULP  # both sums being compared may each be off by (n + 2) ulp
    size = 0
    threshold = np.float32(0.0)  # every weight is > 0: a touched document scores > 0
    for b in range(bptr.shape[1] - 1):
        first = b * block
        width = min(n_docs, first + block) - first
        theta = np.float64(threshold) if size == k else 0.0
        total = 0.0
        for j in range(n):
            bound[j] = qw[j] * bmax[terms[j], b]
            total += np.float64(bound[j])
        if size == k and total * (1.0 + margin) <= theta:
            continue  # no document of this block can enter
        # MaxScore split: insertion sort of the (few) terms by bound, then the non-essential prefix
        for j in range(n):
            order[j] = j
            essential[j] = True
        for j in range(1, n):
            x = order[j]
            i = j - 1
            while i >= 0 and bound[order[i]] > bound[x]:
                order[i + 1] = order[i]
                i -= 1
            order[i + 1] = x
        rest = 0.0
        if size == k:
            for i in range(n):
                nxt = rest + np.float64(bound[order[i]])
                if nxt * (1.0 + margin) > theta:
                    break
                rest = nxt
                essential[order[i]] = False
        for j in range(n):  # essential terms, in query order
            if essential[j]:
                _add_postings(acc, local, weights, bptr[terms[j], b], bptr[terms[j], b + 1], qw[j])
        if rest == 0.0:  # nothing skipped: the accumulator holds the exact scores, as in the blocked kernel
            for c0 in range(0, width, SCAN_CHUNK):
                c1 = min(width, c0 + SCAN_CHUNK)
                if not any_above(acc[c0:c1], threshold):
                    continue
                for x in range(c0, c1):
                    score = acc[x]
                    if score > threshold:
                        size = offer(out_s, out_d, size, k, score, first + x)
                        if size == k:
                            threshold = out_s[0]
        else:
            n_ne = 0  # non-essential terms, largest bound first: the lookups most likely to end a candidate
            ne_postings = 0
            for i in range(n - 1, -1, -1):
                if not essential[order[i]]:
                    ne[n_ne] = order[i]
                    n_ne += 1
                    ne_postings += bptr[terms[order[i]], b + 1] - bptr[terms[order[i]], b]
            low = np.float32(max(0.0, theta - rest - margin * (theta + rest)))
            for j in range(n):
                cursor[j] = bptr[terms[j], b]
            if count_above(acc[:width], low) * n_ne * SEEK_COST > ne_postings:
                # too many candidates for lookups to pay: add the non-essential postings as well, then
                # re-score in query order only the documents whose sum comes near the k-th best
                for i in range(n_ne):
                    j = ne[i]
                    _add_postings(acc, local, weights, bptr[terms[j], b], bptr[terms[j], b + 1], qw[j])
                near = np.float32(threshold * (1.0 - margin))
                for c0 in range(0, width, SCAN_CHUNK):
                    c1 = min(width, c0 + SCAN_CHUNK)
                    if not any_above(acc[c0:c1], near):
                        continue
                    for x in range(c0, c1):
                        if acc[x] > near:
                            score = _full_score(x, b, bptr, local, weights, terms, qw, cursor)
                            if score > threshold:
                                size = offer(out_s, out_d, size, k, score, first + x)
                                if size == k:
                                    threshold = out_s[0]
                                    near = np.float32(threshold * (1.0 - margin))
                acc[:width] = 0.0
                continue
            for c0 in range(0, width, SCAN_CHUNK):
                c1 = min(width, c0 + SCAN_CHUNK)
                if not any_above(acc[c0:c1], low):
                    continue
                for x in range(c0, c1):
                    if acc[x] <= low:
                        continue
                    # MaxScore: replace each non-essential bound by the real contribution, largest first,
                    # and drop the candidate as soon as its bound cannot beat theta
                    bound_x = np.float64(acc[x]) + rest
                    alive = True
                    for i in range(n_ne):
                        j = ne[i]
                        real = _contribution(x, j, b, bptr, local, weights, terms, qw, cursor)
                        bound_x += np.float64(real) - np.float64(bound[j])
                        if bound_x * (1.0 + margin) <= theta:
                            alive = False
                            break
                    if not alive:
                        continue
                    score = _full_score(x, b, bptr, local, weights, terms, qw, cursor)
                    if score > threshold:
                        size = offer(out_s, out_d, size, k, score, first + x)
                        if size == k:
                            threshold = out_s[0]
                            theta = np.float64(threshold)
                            low = np.float32(max(0.0, theta - rest - margin * (theta + rest)))
        acc[:width] = 0.0
    heap_sort(out_s, out_d, size)
    return size


@njit(cache=True)
def search_maxscore(
    bptr: np.ndarray,
    local: np.ndarray,
    weights: np.ndarray,
    bmax: np.ndarray,
    q_indptr: np.ndarray,
    q_terms: np.ndarray,
    q_weights: np.ndarray,
    n_docs: int,
    k: int,
    block: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-``k`` of every query (CSR ``q_*``, all weights > 0) by :func:`query_maxscore`, one thread;
    returns (doc numbers (nq, k) int64, scores (nq, k) float32, hit counts (nq,) int64)."""
    n_queries = len(q_indptr) - 1
    out_d = np.full((n_queries, k), -1, dtype=np.int64)
    out_s = np.full((n_queries, k), -np.inf, dtype=np.float32)
    counts = np.zeros(n_queries, dtype=np.int64)
    acc = np.zeros(min(block, n_docs), dtype=np.float32)
    for qi in range(n_queries):
        lo, hi = q_indptr[qi], q_indptr[qi + 1]
        counts[qi] = query_maxscore(
            bptr,
            local,
            weights,
            bmax,
            q_terms[lo:hi],
            q_weights[lo:hi],
            n_docs,
            k,
            block,
            acc,
            out_s[qi],
            out_d[qi],
        )
    return out_d, out_s, counts
