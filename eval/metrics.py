"""Retrieval metrics through pytrec_eval (the TREC tool BEIR and MTEB use); nothing is hand-written.

Metric names are ``ndcg@K``, ``recall@K``, ``map@K``, ``precision@K`` and ``mrr@K``. MRR@K is
pytrec_eval's reciprocal rank over each run cut to its top K documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pytrec_eval

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10")
_TREC_NAMES = {"ndcg": "ndcg_cut", "recall": "recall", "map": "map_cut", "precision": "P"}
_METRIC_RE = re.compile(r"^(ndcg|recall|map|precision|mrr)@(\d+)$")

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _parse(name: str) -> tuple[str, int]:
    match = _METRIC_RE.match(name.lower())
    if not match:
        raise ValueError(
            f"unknown metric {name!r}; expected NAME@K with NAME in ndcg, recall, map, precision, mrr"
        )
    k = int(match.group(2))
    if k < 1:
        raise ValueError(f"metric {name!r}: K must be at least 1")
    return match.group(1), k


def check_metrics(metrics: Iterable[str], top_k: int | None = None) -> list[str]:
    """Parse every metric name before any work; with ``top_k``, refuse a cut-off beyond it.

    Example:
        >>> check_metrics(["ndcg@10", "recall@100"], top_k=100)
        ['ndcg@10', 'recall@100']
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("no metric given; expected NAME@K, e.g. ndcg@10")
    for metric in metrics:
        _, k = _parse(metric)
        if top_k is not None and k > top_k:
            raise ValueError(
                f"metric {metric!r} cuts at {k} but only top_k={top_k} documents are retrieved per "
                f"query; expected top_k >= {k}"
            )
    return metrics


def _integer_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for q, docs in qrels.items():
        for d, r in docs.items():
            if isinstance(r, bool) or not float(r).is_integer():
                raise ValueError(
                    f"qrels: relevance {r!r} of query {q!r}, document {d!r} is not an integer; "
                    "expected an integer grade (pytrec_eval would truncate it)"
                )
        out[q] = {d: int(r) for d, r in docs.items()}
    return out


def drop_self_hits(run: Run) -> dict[str, dict[str, float]]:
    """Remove documents whose id equals the query id (BEIR's ``ignore_identical_ids``)."""
    return {qid: {d: s for d, s in docs.items() if d != qid} for qid, docs in run.items()}


def top_k(run: Run, k: int) -> dict[str, dict[str, float]]:
    """Cut every query's run to its ``k`` best-scored documents (ties broken by doc id, as trec_eval does)."""
    return {
        qid: dict(sorted(docs.items(), key=lambda item: (-item[1], item[0]))[:k]) for qid, docs in run.items()
    }


def per_query_scores(
    qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS
) -> dict[str, dict[str, float]]:
    """Score every judged query: ``{metric: {query_id: value}}``; queries absent from the run score 0."""
    metrics = list(metrics)
    parsed = {m: _parse(m) for m in metrics}
    qrels = _integer_qrels(qrels)
    run = {q: {d: float(s) for d, s in run.get(q, {}).items()} for q in qrels}
    out: dict[str, dict[str, float]] = {}
    trec = {m: (name, k) for m, (name, k) in parsed.items() if name != "mrr"}
    if trec:
        measures = {f"{_TREC_NAMES[name]}.{k}" for name, k in trec.values()}
        results = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        for metric, (name, k) in trec.items():
            key = f"{_TREC_NAMES[name]}_{k}"
            out[metric] = {q: results.get(q, {}).get(key, 0.0) for q in qrels}
    for metric, (name, k) in parsed.items():
        if name == "mrr":
            results = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top_k(run, k))
            out[metric] = {q: results.get(q, {}).get("recip_rank", 0.0) for q in qrels}
    return {m: out[m] for m in metrics}


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{metric: mean over queries}`` of :func:`per_query_scores`' output (0 for no query)."""
    return {m: (sum(v.values()) / len(v) if v else 0.0) for m, v in per_query.items()}


def evaluate_run(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries (those with at least one judgement)."""
    return mean_scores(per_query_scores(qrels, run, metrics))
