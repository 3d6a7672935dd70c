"""Rank fusion of several result lists into one: reciprocal rank fusion and convex combination.

Each member's :class:`~indexes.base.Hits` for a batch of queries are fused in one vectorised pass
(numpy; no Python loop over queries): every (query, document) candidate of every member becomes one
entry of a flat array, equal (query, document) keys are summed with ``np.bincount``, and the fused
lists are cut to ``k`` with one ``np.lexsort``.

- ``rrf`` (Cormack et al., 2009): ``score(d) = sum_i w_i / (rrf_k + rank_i(d))`` with ranks from 1, as
  Milvus and Elasticsearch count them; a document a member did not return adds nothing.
- ``convex``: ``score(d) = sum_i w_i * norm_i(s_i(d))`` where ``norm_i`` rescales member ``i``'s
  candidate scores of that query (``minmax`` to [0, 1], ``zscore`` to mean 0 and unit variance, or
  ``none``); a document a member did not return gets that member's lowest normalised score for the
  query (0 under ``minmax``): it ranked below everything the member returned.

Ties are broken by document id (string order), so fused rankings are deterministic.

Example:
    >>> fused = fuse([dense_hits, bm25_hits], ids, method="convex", weights=[0.5, 0.5], k=10)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from indexes.base import Hits

FUSIONS = ("rrf", "convex")
NORMALIZATIONS = ("minmax", "zscore", "none")
DEFAULT_RRF_K = 60


def check_fusion(method: str, normalize: str = "minmax") -> None:
    """Raise a ValueError naming the valid choices for an unknown fusion or normalisation name."""
    if method not in FUSIONS:
        raise ValueError(f"unknown fusion {method!r}; expected one of {', '.join(FUSIONS)}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {normalize!r}; expected one of {', '.join(NORMALIZATIONS)}")


def check_weights(weights: Sequence[float] | None, n_members: int) -> np.ndarray:
    """``weights`` as a float array of one finite, non-negative value per member (None: all 1).

    Raises:
        ValueError: a wrong length, a negative, NaN or infinite weight, or all weights zero.
    """
    if weights is None:
        return np.ones(n_members)
    values = np.asarray(list(weights), dtype=float)
    if values.ndim != 1 or len(values) != n_members:
        raise ValueError(f"got {values.size} weight(s) for {n_members} members; expected one per member")
    bad = [f"{w!r}" for w in values.tolist() if not math.isfinite(w) or w < 0]
    if bad:
        raise ValueError(f"weights {values.tolist()}: {', '.join(bad)} not a finite number >= 0")
    if not values.any():
        raise ValueError(f"weights {values.tolist()}: at least one must be above 0")
    return values


def _normalise(scores: np.ndarray, valid: np.ndarray, how: str) -> np.ndarray:
    """Rescale each row's valid scores (minmax / zscore / none); invalid cells are left at 0."""
    if how == "none":
        return np.where(valid, scores, 0.0)
    masked = np.where(valid, scores, np.nan)
    with warnings.catch_warnings():  # a query the member returned nothing for is an all-NaN row
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "minmax":
            low, high = np.nanmin(masked, axis=1, keepdims=True), np.nanmax(masked, axis=1, keepdims=True)
            span = high - low
            out = np.where(span > 0, (masked - low) / np.where(span > 0, span, 1.0), 1.0)
        else:
            mean, std = np.nanmean(masked, axis=1, keepdims=True), np.nanstd(masked, axis=1, keepdims=True)
            out = np.where(std > 0, (masked - mean) / np.where(std > 0, std, 1.0), 0.0)
    return np.where(valid, out, 0.0)


def _member_arrays(
    hits: Hits, position: Mapping[str, int], depth: int, lower_is_better: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_queries, depth) arrays: document positions (-1: absent), scores (higher: better), validity."""
    n = len(hits.ids)
    docs = np.full((n, depth), -1, dtype=np.int64)
    for row, ids in enumerate(hits.ids):
        cut = ids[:depth]
        if cut:
            docs[row, : len(cut)] = [position[d] for d in cut]
    valid = docs >= 0
    width = min(depth, hits.scores.shape[1]) if hits.scores.ndim == 2 else 0
    scores = np.zeros((n, depth), dtype=np.float64)
    scores[:, :width] = hits.scores[:, :width]
    if lower_is_better:
        scores = -scores
    return docs, np.where(valid, scores, 0.0), valid


def fuse(
    member_hits: Sequence[Hits],
    doc_ids: Sequence[str],
    *,
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    depths: Sequence[int] | None = None,
    normalize: str = "minmax",
    rrf_k: float = DEFAULT_RRF_K,
    k: int = 10,
    lower_is_better: Sequence[bool] | None = None,
) -> Hits:
    """Fuse the result lists of several retrievers over the same documents into one top-``k`` list.

    Args:
        member_hits: one :class:`~indexes.base.Hits` per member, for the same queries in the same order.
        doc_ids: every document id the members may return, sorted (string order is the tie-break order).
        method: ``rrf`` or ``convex``.
        weights: one non-negative weight per member (None: equal weights).
        depths: how many of each member's hits to fuse (None: all it returned).
        normalize: ``minmax``, ``zscore`` or ``none``: how ``convex`` rescales a member's scores per query.
        rrf_k: the constant of reciprocal rank fusion (60 in the original paper).
        k: hits per query in the fused list.
        lower_is_better: per member, whether its scores are distances (FAISS ``l2``); None: all similarities.

    Returns:
        ``Hits`` with at most ``k`` ids per query; scores padded with ``-inf`` where fewer.

    Raises:
        ValueError: unknown method or normalisation, bad weights, members with different numbers of
            queries, or a returned id missing from ``doc_ids``.
    """
    check_fusion(method, normalize)
    n_members = len(member_hits)
    if n_members == 0:
        raise ValueError("fuse needs at least one member's hits")
    w = check_weights(weights, n_members)
    n_queries = len(member_hits[0].ids)
    if any(len(h.ids) != n_queries for h in member_hits):
        counts = [len(h.ids) for h in member_hits]
        raise ValueError(f"members answered {counts} queries; expected equal counts")
    if depths is None:
        depths = [max((len(r) for r in h.ids), default=0) for h in member_hits]
    flips = list(lower_is_better) if lower_is_better is not None else [False] * n_members
    position = _positions(doc_ids)
    all_docs, all_scores = [], []
    for hits, member_depth, weight, flip in zip(member_hits, depths, w, flips, strict=True):
        depth = max(int(member_depth), 1)
        try:
            docs, scores, valid = _member_arrays(hits, position, depth, flip)
        except KeyError as exc:
            raise ValueError(f"a member returned document {exc.args[0]!r}, which is not in doc_ids") from None
        if method == "rrf":
            contribution = np.broadcast_to(weight / (rrf_k + np.arange(1, depth + 1)), docs.shape)
        else:
            normalised = _normalise(scores, valid, normalize)
            floor = np.where(valid, normalised, np.inf).min(axis=1, keepdims=True)
            floor = np.where(np.isfinite(floor), floor, 0.0)
            # every candidate gets the member's floor; its own score adds (normalised - floor) on top,
            # so a document the member did not return counts as that member's lowest score
            contribution = weight * (normalised - floor)
            all_docs.append(np.full((n_queries, 1), -2, dtype=np.int64))  # the floors, summed apart
            all_scores.append(weight * floor)
        all_docs.append(np.where(valid, docs, -1))
        all_scores.append(np.where(valid, contribution, 0.0))
    return _top_k(np.concatenate(all_docs, axis=1), np.concatenate(all_scores, axis=1), doc_ids, k)


def _positions(doc_ids: Sequence[str]) -> dict[str, int]:
    return {doc: i for i, doc in enumerate(doc_ids)}


def _top_k(docs: np.ndarray, scores: np.ndarray, doc_ids: Sequence[str], k: int) -> Hits:
    """Sum contributions per (query, document) and keep each query's ``k`` best, ties by document id."""
    n_queries = docs.shape[0]
    floors = np.where(docs == -2, scores, 0.0).sum(axis=1)  # constant per query: added to every document
    rows = np.repeat(np.arange(n_queries), docs.shape[1])
    flat_docs, flat_scores = docs.ravel(), scores.ravel()
    keep = flat_docs >= 0
    n_docs = max(len(doc_ids), 1)
    keys = rows[keep] * n_docs + flat_docs[keep]
    unique, inverse = np.unique(keys, return_inverse=True)
    totals = np.bincount(inverse, weights=flat_scores[keep], minlength=len(unique))
    query_of, doc_of = unique // n_docs, unique % n_docs
    totals = totals + floors[query_of]
    order = np.lexsort((doc_of, -totals, query_of))  # by query, best score first, then document id
    query_sorted = query_of[order]
    starts = np.searchsorted(query_sorted, np.arange(n_queries))
    rank = np.arange(len(order)) - starts[query_sorted]
    top = order[rank < k]
    counts = np.bincount(query_of[top], minlength=n_queries)
    out_scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
    columns = rank[rank < k]
    out_scores[query_of[top], columns] = totals[top]
    ids_flat = [doc_ids[i] for i in doc_of[top].tolist()]
    out_ids, start = [], 0
    for count in counts.tolist():
        out_ids.append(ids_flat[start : start + count])
        start += count
    return Hits(ids=out_ids, scores=out_scores)
