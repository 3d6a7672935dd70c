"""Hard-negative mining windows and margins, the guide filter, and the embedding cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval.embedding_cache import EmbeddingCache
from trainers.config import MiningConfig
from trainers.data import TrainingData
from trainers.guide import Guide
from trainers.mining import mine_hard_negatives


class Ranked:
    """A searcher with a fixed ranking: doc i scores 1 - i/10 for every query."""

    name = "ranked"

    def __init__(self, n: int) -> None:
        self.docs = [f"d{i}" for i in range(n)]

    def search(self, queries, k):
        k = min(k, len(self.docs))
        return [self.docs[:k] for _ in queries], np.tile(1 - np.arange(k) / 10, (len(queries), 1)).astype(
            np.float32
        )

    def pair_scores(self, queries, doc_ids):
        return [np.asarray([1 - int(d[1:]) / 10 for d in docs], np.float32) for docs in doc_ids]


def data(n: int = 8, positive: str = "d2") -> TrainingData:
    return TrainingData({"q": "query"}, {"q": [positive]}, {f"d{i}": f"text {i}" for i in range(n)})


def test_range_and_count() -> None:
    mined = mine_hard_negatives(data(), Ranked(8), MiningConfig(range_min=1, range_max=5, num_negatives=3))
    # Ranking without the positive d2: d0 d1 d3 d4 d5 ...; window [1, 5) -> d1 d3 d4 d5; first 3 kept.
    assert mined == {"q": ["d1", "d3", "d4"]}


def test_absolute_and_relative_margins() -> None:
    # Positive d2 scores 0.8: absolute margin 0.15 keeps scores <= 0.65 -> d4 (0.6) onwards.
    mined = mine_hard_negatives(data(), Ranked(8), MiningConfig(absolute_margin=0.15, num_negatives=2))
    assert mined == {"q": ["d4", "d5"]}
    mined = mine_hard_negatives(data(), Ranked(8), MiningConfig(relative_margin=0.2, num_negatives=2))
    assert mined == {"q": ["d4", "d5"]}  # <= 0.8 * 0.8 = 0.64
    with pytest.raises(ValueError, match="need 0 <= range_min < range_max"):
        mine_hard_negatives(data(), Ranked(8), MiningConfig(range_min=5, range_max=5))


class TableEncoder:
    """An encoder whose vectors are given per text."""

    kind, similarity, dim = "dense", "cosine", 2

    def __init__(self, vectors: dict[str, list[float]], name: str = "table") -> None:
        self.vectors, self.name, self.calls = vectors, name, []

    def _enc(self, texts, batch_size=64):
        self.calls.append(list(texts))
        return np.asarray([self.vectors[t] for t in texts], dtype=np.float32)

    encode_queries = encode_documents = _enc


def test_guide_filter_drops_planted_false_negative(tmp_path) -> None:
    vectors = {
        "query": [1, 0],
        "text 2": [0.8, 0.6],
        "text 0": [0.99, 0.14],
        "text 1": [0.0, 1.0],
        "text 3": [0.6, 0.8],
        "text 4": [0.7, 0.71],
    }
    guide = Guide(TableEncoder(vectors), EmbeddingCache(TableEncoder(vectors), tmp_path))
    mined = mine_hard_negatives(
        data(5), Ranked(5), MiningConfig(num_negatives=4), guide=guide, cache_dir=tmp_path
    )
    # text 0 is closer to the query than the positive (0.99 > 0.8): a probable false negative.
    assert mined == {"q": ["d1", "d3", "d4"]}
    cached = list(tmp_path.glob("negatives-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == mined


def test_positive_reference_picks_which_positive_candidates_are_compared_with(tmp_path) -> None:
    vectors = {
        "query": [1, 0],
        "text 2": [0.8, 0.6],  # positive, guide similarity 0.8
        "text 3": [0.6, 0.8],  # positive, guide similarity 0.6
        "text 0": [0.99, 0.14],  # beats both positives: dropped either way
        "text 1": [0.0, 1.0],  # below both: kept either way
        "text 4": [0.7, 0.71],  # between them: dropped against the least similar positive only
    }
    two = TrainingData({"q": "query"}, {"q": ["d2", "d3"]}, {f"d{i}": f"text {i}" for i in range(5)})
    guide = Guide(TableEncoder(vectors), EmbeddingCache(TableEncoder(vectors), tmp_path))
    mined = {
        reference: mine_hard_negatives(
            two, Ranked(5), MiningConfig(positive_reference=reference), guide=guide, cache_dir=tmp_path
        )
        for reference in ("least", "most")
    }
    assert mined == {"least": {"q": ["d1"]}, "most": {"q": ["d1", "d4"]}}
    assert len(list(tmp_path.glob("negatives-*.json"))) == 2  # each setting has its own cache file
    # Margins compare with the same positive: d2 scores 0.8, d5 0.5 (absolute margin 0.15).
    two_margin = TrainingData({"q": "query"}, {"q": ["d2", "d5"]}, {f"d{i}": f"text {i}" for i in range(8)})
    least = mine_hard_negatives(two_margin, Ranked(8), MiningConfig(absolute_margin=0.15, num_negatives=3))
    most = mine_hard_negatives(
        two_margin, Ranked(8), MiningConfig(absolute_margin=0.15, num_negatives=3, positive_reference="most")
    )
    assert least == {"q": ["d7"]} and most == {"q": ["d4", "d6", "d7"]}
    with pytest.raises(ValueError, match="positive_reference 'median' is not one of least, most"):
        mine_hard_negatives(two, Ranked(5), MiningConfig(positive_reference="median"))  # type: ignore[arg-type]


def test_embedding_cache_computes_each_text_once_and_survives_reload(tmp_path) -> None:
    enc = TableEncoder({"a": [1, 0], "b": [0, 1], "c": [1, 1]})
    cache = EmbeddingCache(enc, tmp_path, shard_size=2)
    first = cache.get(["a", "b", "a"], "document")
    np.testing.assert_array_equal(first, [[1, 0], [0, 1], [1, 0]])
    cache.get(["c", "b"], "document")
    assert enc.calls == [["a", "b"], ["c"]]
    again = EmbeddingCache(enc, tmp_path).get(["c", "a"], "document")  # a new process, same folder
    np.testing.assert_array_equal(again, [[1, 1], [1, 0]])
    assert len(enc.calls) == 2 and not list(tmp_path.rglob("*.tmp"))
    other = EmbeddingCache(TableEncoder({"a": [0, 1]}, name="other"), tmp_path)
    assert other.dir != cache.dir  # a different model never reads these vectors


def test_put_stores_vectors_computed_elsewhere(tmp_path) -> None:
    enc = TableEncoder({"a": [1, 0], "b": [0, 1]})
    cache = EmbeddingCache(enc, tmp_path)
    assert cache.put(["a", "b"], np.array([[0.6, 0.8], [0, 1]]), "query") == 2
    assert cache.put(["a"], np.array([[1, 0]]), "query") == 0  # already there: kept
    np.testing.assert_allclose(cache.get(["a"], "query"), [[0.6, 0.8]])
    assert enc.calls == []
    with pytest.raises(ValueError, match=r"shape \(1, 3\) for 1 texts of dim 2"):
        cache.put(["c"], np.zeros((1, 3)), "query")


def test_queries_whose_negatives_were_all_filtered_get_a_random_one(tmp_path) -> None:
    from trainers.config import TrainConfig
    from trainers.preparation import Preparation

    preparation = Preparation.__new__(Preparation)
    preparation.config = TrainConfig()
    preparation.data = TrainingData(
        {"q": "query", "r": "other"}, {"q": ["d0"], "r": ["d1"]}, {f"d{i}": f"text {i}" for i in range(4)}
    )
    filled = preparation.fill_empty({"q": [], "r": ["d2"]})
    assert filled["r"] == ["d2"] and len(filled["q"]) == 1 and filled["q"][0] in {"d1", "d2", "d3"}


def test_interleave_takes_each_miner_in_turn_and_keeps_first_places() -> None:
    from trainers.mining import interleave

    assert interleave([["a", "b", "c"], ["x", "a", "y"]]) == ["a", "x", "b", "c", "y"]
    assert interleave([[], ["x"]]) == ["x"]
    assert interleave([]) == []


def test_extra_miners_share_the_negative_budget(tmp_path) -> None:
    from trainers.config import TrainConfig
    from trainers.preparation import Preparation

    class Reversed(Ranked):
        name = "reversed"

        def search(self, queries, k):
            ids, scores = super().search(queries, len(self.docs))
            return [d[::-1][:k] for d in ids], scores[:, :k]

    config = TrainConfig()
    config.mining = MiningConfig(model="bm25", extra_models=["other"], num_negatives=4, guide_filter=False)
    config.cache_dir = str(tmp_path)
    preparation = Preparation.__new__(Preparation)
    preparation.config, preparation.cache_root, preparation.guide = config, tmp_path, None
    preparation._searcher = None
    preparation.data = data(8)
    miners = {"bm25": Ranked(8), "other": Reversed(8)}
    preparation._build_searcher = miners.__getitem__  # type: ignore[method-assign]
    # bm25 ranks d0 d1 d3 ...; the other miner d7 d6 d5 ...: two of each, alternating.
    assert preparation.negatives() == {"q": ["d0", "d7", "d1", "d6"]}
    # Each miner's negatives are cached under its own name.
    assert len(list((tmp_path / "negatives").glob("negatives-*.json"))) == 2


def test_cached_negatives_need_no_corpus_encoding(tmp_path) -> None:
    import scipy.sparse as sp

    from trainers.mining import SparseSearcher

    class CountingEncoder:
        """A sparse encoder over 8 dimensions: text 'text i' is the unit vector i; queries hit d3."""

        name = "counting"

        def __init__(self) -> None:
            self.document_calls = 0

        def encode_documents(self, texts, progress=False):
            self.document_calls += 1
            return sp.csr_matrix(np.eye(8, dtype=np.float32)[[int(t.split()[1]) for t in texts]])

        def encode_queries(self, texts):
            return sp.csr_matrix(np.tile(np.linspace(0.1, 0.8, 8, dtype=np.float32), (len(texts), 1)))

    config = MiningConfig(range_max=5, num_negatives=2, guide_filter=False)
    first = CountingEncoder()
    mined = mine_hard_negatives(data(8), SparseSearcher(first, data(8).corpus), config, cache_dir=tmp_path)
    assert first.document_calls == 1 and mined == {"q": ["d7", "d6"]}
    again = CountingEncoder()
    assert (
        mine_hard_negatives(data(8), SparseSearcher(again, data(8).corpus), config, cache_dir=tmp_path)
        == mined
    )
    assert again.document_calls == 0  # the cache hit encoded no document


def test_relevant_documents_past_max_positives_are_never_mined(tmp_path) -> None:
    from tests.conftest import write_beir
    from trainers.data import from_beir, from_rows

    docs = [(f"d{i}", "", f"text {i}") for i in range(8)]
    # q has four relevant documents; with max_positives=2 it trains on d0 (relevance 2) and one more,
    # and the other two must not come back as its hard negatives.
    qrels = [("q", "d0", 2), ("q", "d1", 1), ("q", "d2", 1), ("q", "d3", 1), ("q", "d5", 0)]
    root = write_beir(tmp_path / "b", docs=docs, queries={"q": "query"}, qrels=qrels, split="train")
    beir = from_beir(root, "train", max_positives=2)
    assert beir.positives["q"][0] == "d0" and len(beir.positives["q"]) == 2
    assert sorted([*beir.positives["q"][1:], *beir.not_negative["q"]]) == ["d1", "d2", "d3"]
    mined = mine_hard_negatives(beir, Ranked(8), MiningConfig(num_negatives=3))
    assert mined == {"q": ["d4", "d5", "d6"]}  # judged non-relevant d5 stays a negative

    rows = [("f:1", {"query": "query", "positive": f"text {i}"}) for i in range(3)]
    from_jsonl = from_rows(rows, max_positives=1)
    (query_id,) = from_jsonl.positives
    assert len(from_jsonl.positives[query_id]) == 1 and len(from_jsonl.not_negative[query_id]) == 2
    assert not set(from_jsonl.not_negative[query_id]) & set(from_jsonl.positives[query_id])
