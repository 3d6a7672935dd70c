"""Metrics through pytrec_eval on hand-checked examples."""

from __future__ import annotations

import math

import pytest

from eval.metrics import drop_self_hits, evaluate_run, per_query_scores, top_k


def test_hand_checked_values() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d3": 2, "d4": 1}}
    run = {"q1": {"d2": 0.9, "d1": 0.8}, "q2": {"d4": 0.9, "d3": 0.5}}
    scores = per_query_scores(qrels, run, ["ndcg@10", "mrr@10", "recall@100", "recall@1"])
    assert scores["ndcg@10"]["q1"] == pytest.approx(1 / math.log2(3))
    dcg, idcg = 1 + 2 / math.log2(3), 2 + 1 / math.log2(3)  # linear gain, as BEIR and MTEB
    assert scores["ndcg@10"]["q2"] == pytest.approx(dcg / idcg)
    assert scores["mrr@10"] == {"q1": 0.5, "q2": 1.0}
    assert scores["recall@100"] == {"q1": 1.0, "q2": 1.0}
    assert scores["recall@1"] == {"q1": 0.0, "q2": 0.5}


def test_mrr_is_cut_at_k_and_missing_queries_score_zero() -> None:
    qrels = {"q1": {"rel": 1}, "q2": {"x": 1}}
    run = {"q1": {f"n{i:02d}": 1.0 - i / 100 for i in range(10)} | {"rel": 0.0}}
    means = evaluate_run(qrels, run, ["mrr@10", "mrr@11"])
    assert means["mrr@10"] == 0.0
    assert means["mrr@11"] == pytest.approx((1 / 11 + 0) / 2)


def test_drop_self_hits_and_top_k() -> None:
    run = {"q1": {"q1": 9.0, "a": 1.0, "b": 2.0, "c": 2.0}}
    assert drop_self_hits(run) == {"q1": {"a": 1.0, "b": 2.0, "c": 2.0}}
    assert list(top_k(run, 3)["q1"]) == ["q1", "b", "c"]


def test_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match="unknown metric 'ndcg10'"):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, ["ndcg10"])
