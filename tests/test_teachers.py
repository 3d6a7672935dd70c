"""Per-query min-max normalisation, weighted aggregation and the score cache."""

from __future__ import annotations

import numpy as np
import pytest

from trainers.teachers import Ensemble, minmax_per_query


class Fixed:
    """A teacher with given scores per document text, counting calls and the pairs it scored."""

    def __init__(self, name: str, scores: dict[str, float]) -> None:
        self.name, self.scores, self.calls, self.pairs = name, scores, 0, 0

    def score(self, queries, candidates):
        self.calls += 1
        self.pairs += sum(map(len, candidates))
        return [np.asarray([self.scores[d] for d in docs], dtype=np.float32) for docs in candidates]


def test_minmax_per_query() -> None:
    out = minmax_per_query([np.array([2.0, 4.0, 3.0]), np.array([5.0, 5.0]), np.array([])])
    assert out[0].tolist() == [0.0, 1.0, 0.5]
    assert out[1].tolist() == [0.5, 0.5]  # all equal: no preference
    assert out[2].size == 0


def test_heterogeneous_scales_are_aggregated_after_normalisation(tmp_path) -> None:
    dense = Fixed("dense", {"a": 0.9, "b": 0.8, "c": 0.1})  # cosine scale
    bm25 = Fixed("bm25", {"a": 2.0, "b": 30.0, "c": 10.0})  # BM25 scale
    ensemble = Ensemble([dense, bm25], weights=[3, 1], cache_dir=tmp_path)
    (scores,) = ensemble.score(["q"], [["a", "b", "c"]])
    d = np.array([1.0, 0.875, 0.0])
    b = np.array([0.0, 1.0, 8 / 28])
    np.testing.assert_allclose(scores, 0.75 * d + 0.25 * b, rtol=1e-6)
    assert scores.min() >= 0 and scores.max() <= 1
    ensemble.score(["q"], [["a", "b", "c"]])
    assert dense.calls == 1 and bm25.calls == 1  # the second call read the cache


def test_the_store_scores_only_pairs_it_has_not_seen(tmp_path) -> None:
    from trainers.pair_scores import PairScoreStore

    teacher = Fixed("dense", {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.4})
    first = Ensemble([teacher], cache_dir=tmp_path).member_scores(["q1", "q2"], [["a", "b"], ["c"]])
    assert teacher.pairs == 3
    # a new process (fresh ensemble) with one new pair and one pair of a new query among the old ones
    again = Ensemble([teacher], cache_dir=tmp_path)
    raw = again._raw(teacher, ["q1", "q2", "q3"], [["a", "d", "b"], ["c"], ["a"]])
    assert teacher.pairs == 3 + 2 and teacher.calls == 2  # (q1, d) and (q3, a) only, in one call
    np.testing.assert_allclose(np.concatenate(raw), [0.9, 0.4, 0.8, 0.1, 0.9])
    assert [len(r) for r in raw] == [3, 1, 1]
    np.testing.assert_allclose(first[0][0], [1.0, 0.0])  # min-max within q1's two candidates
    store = PairScoreStore(tmp_path, "dense")
    assert len(store.keys) == 5 and np.all(np.diff(store.keys.astype(np.float64)) > 0)
    assert store.key("q1", "a") != store.key("q1", "b") != PairScoreStore(tmp_path, "bm25").key("q1", "b")
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name]  # written atomically, nothing left over
    parts = sorted(store.path.glob("part-*.npz"))
    assert [len(np.load(part)["keys"]) for part in parts] in ([3, 2], [2, 3])  # each holds new pairs only


def test_stores_of_two_processes_keep_both_and_an_old_single_file_store_is_read(tmp_path) -> None:
    from trainers.pair_scores import PairScoreStore

    a, b = PairScoreStore(tmp_path, "t"), PairScoreStore(tmp_path, "t")  # opened before either writes
    a.add(np.array([a.key("q", "x")], dtype=np.uint64), np.array([1.0]))
    b.add(np.array([b.key("q", "y"), b.key("q", "x")], dtype=np.uint64), np.array([2.0, 9.0]))
    b.add(np.array([b.key("q", "y")], dtype=np.uint64), np.array([5.0]))  # nothing new: no part
    assert len(list(a.path.glob("part-*.npz"))) == 2
    reopened = PairScoreStore(tmp_path, "t")
    scores, found = reopened.lookup(
        np.array([reopened.key("q", "x"), reopened.key("q", "y")], dtype=np.uint64)
    )
    assert found.all() and scores[1] == 2.0 and scores[0] in (1.0, 9.0)
    legacy = PairScoreStore(tmp_path, "old")
    np.savez(
        legacy.path.with_suffix(".npz"),
        keys=np.array([legacy.key("q", "z")], dtype=np.uint64),
        scores=np.array([3.0], dtype=np.float32),
    )
    assert (
        PairScoreStore(tmp_path, "old").lookup(np.array([legacy.key("q", "z")], dtype=np.uint64))[0][0] == 3.0
    )


def test_a_teacher_returning_the_wrong_number_of_scores_is_named(tmp_path) -> None:
    from trainers.pair_scores import PairScoreStore

    def short(queries, candidates):
        return [np.zeros(1, dtype=np.float32)]

    with pytest.raises(ValueError, match="teacher broken returned 1 scores for 2 pairs"):
        PairScoreStore(tmp_path, "broken").score(["q"], [["a", "b"]], short)


def test_bad_weights() -> None:
    with pytest.raises(ValueError, match="got 1 weights for 2 teachers"):
        Ensemble([Fixed("a", {}), Fixed("b", {})], weights=[1])
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        Ensemble([Fixed("a", {})], weights=[-1])


def test_pairwise_accuracy_and_mrr_by_hand() -> None:
    from trainers.teacher_quality import first_positive_mrr, pairwise_accuracy

    # query 1: positive 0.5 beats 0.2, loses to 0.9, ties 0.5 -> 1.5 of 3;
    # query 2: both positives beat the negative -> 2 of 2
    scores = [np.array([0.5, 0.2, 0.9, 0.5]), np.array([0.3, 0.8, 0.1])]
    assert pairwise_accuracy(scores, [1, 2]) == pytest.approx((1.5 + 2) / 5)
    # query 1: two negatives (0.9 and the tying 0.5) rank at or above the positive -> 1/3; query 2 -> 1
    assert first_positive_mrr(scores, [1, 2]) == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="no query"):
        pairwise_accuracy([np.array([0.3])], [1])


def test_weight_grid_and_combine() -> None:
    from trainers.teacher_quality import weight_grid
    from trainers.teachers import combine

    grid = weight_grid(3, 0.25)
    assert len(grid) == 15 and all(sum(w) == pytest.approx(1.0) for w in grid)
    assert (0.25, 0.25, 0.5) in grid
    with pytest.raises(ValueError, match="step"):
        weight_grid(2, 0.3)
    a = [np.array([1.0, 0.0])]
    b = [np.array([0.0, 1.0])]
    np.testing.assert_allclose(combine([a, b], (0.75, 0.25))[0], [0.75, 0.25])


class ByText:
    """A teacher whose score of a candidate is given per document text."""

    name = "by-text"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.seen: list[list[str]] = []

    def score(self, queries, candidates):
        self.seen = [list(c) for c in candidates]
        return [np.asarray([self.table[t] for t in docs], dtype=np.float32) for docs in candidates]


def test_teacher_pool_widens_the_minmax_range_but_adds_no_rows() -> None:
    from trainers.data import TrainingData
    from trainers.rows import build_rows

    data = TrainingData(
        {"q": "query"}, {"q": ["p"]}, {"p": "pos", "n1": "near", "n2": "far", "x": "unrelated"}
    )
    teacher = ByText({"pos": 10.0, "near": 9.0, "far": 8.0, "unrelated": 0.0})
    # Over the positive and the two negatives alone, min-max erases the teacher's view: the weakest
    # negative scores 0 and the positive 1, so the margins are 0.5 and 1.
    rows = build_rows(data, {"q": ["n1", "n2"]}, Ensemble([teacher]))
    assert [round(m, 6) for m in rows.row_margin] == [0.5, 1.0]
    # With an unrelated document in the pool the same teacher says both negatives are close calls.
    rows = build_rows(data, {"q": ["n1", "n2"]}, Ensemble([teacher]), pools={"q": ["n2", "x"]})
    assert [round(m, 6) for m in rows.row_margin] == [0.1, 0.2]
    assert teacher.seen == [["pos", "near", "far", "unrelated"]]  # n2 scored once, x only for the range
    assert len(rows) == 2 and "unrelated" not in rows.columns["negative"]


def test_scoring_resumes_after_the_last_saved_chunk(tmp_path) -> None:
    from trainers.pair_scores import PairScoreStore

    teacher = Fixed("cross", {d: float(i) for i, d in enumerate("abcdef")})
    calls: list[int] = []

    def interrupted(queries, candidates):
        calls.append(sum(map(len, candidates)))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return teacher.score(queries, candidates)

    queries, candidates = ["q1", "q2", "q3"], [["a", "b"], ["c", "d"], ["e", "f"]]
    with pytest.raises(KeyboardInterrupt):
        PairScoreStore(tmp_path, "cross", chunk_pairs=2).score(queries, candidates, interrupted)
    resumed = PairScoreStore(tmp_path, "cross", chunk_pairs=2)
    assert len(resumed.keys) == 2  # the first chunk (q1's pairs) was saved before the interruption
    scores = resumed.score(queries, candidates, teacher.score)
    assert teacher.pairs == 2 + 4  # before the interruption q1's pairs, after it q2's and q3's only
    np.testing.assert_allclose(np.concatenate(scores), np.arange(6))
    with pytest.raises(ValueError, match="chunk_pairs must be at least 1"):
        PairScoreStore(tmp_path, "cross", chunk_pairs=0)


def test_cross_encoder_teacher_splits_scores_per_query(tmp_path) -> None:
    """A tiny local CrossEncoder: scores come back per query, in candidate order, as predict gives them."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config, tiny_tokenizer
    from trainers.teachers import CrossEncoderTeacher

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(tmp_path)
    # wide random weights, so that different pairs get clearly different scores
    config = tiny_bert_config(
        tokenizer.vocab_size,
        num_hidden_layers=1,
        max_position_embeddings=64,
        num_labels=1,
        initializer_range=0.5,
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "cross")
    tokenizer.save_pretrained(tmp_path / "cross")

    teacher = CrossEncoderTeacher(str(tmp_path / "cross"), batch_size=2)
    queries = ["cat on a rock", "heart disease", "sea"]
    candidates = [["the cat sat", "salt and fat", "fish in the sea"], [], ["the blue sea"]]
    scores = teacher.score(queries, candidates)
    assert [s.shape for s in scores] == [(3,), (0,), (1,)]
    reference = CrossEncoder(str(tmp_path / "cross"))
    for query, docs, got in zip(queries, candidates, scores, strict=True):
        for doc, value in zip(docs, got, strict=True):
            assert value == pytest.approx(float(reference.predict([(query, doc)])[0]), abs=1e-5)
    flat = np.concatenate(scores)
    assert np.min(np.abs(flat[:, None] - flat[None, :]) + np.eye(len(flat))) > 1e-3, "pairs must score apart"
    assert teacher.name.startswith("cross:")
