"""Title queries: which documents become pairs, and that mining never returns a title query's own document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import QRELS, QUERIES, write_beir
from trainers.bm25 import BM25
from trainers.config import DataConfig, MiningConfig
from trainers.data import load_training_data
from trainers.mining import build_searcher, mine_hard_negatives
from trainers.title_queries import title_queries

DOCS = [
    ("d1", "Cats sit on rocks", "the cat sat on the rock in the sun"),
    ("d2", "Dogs", "dogs run fast in the forest with the wind"),  # title too short
    ("d3", "Vitamin d and bone", "vitamin d lower risk of bone disease in patients"),
    ("d4", "Salt causes heart disease", "salt and fat increase heart disease risk"),
    ("d5", "Cancer genes in mice", ""),  # no body
    ("d6", "Fish of the sea", "fish in the blue sea and the river"),
    ("d7", "Rock and sun cats", "a cat on a warm rock in the sun"),
]


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "titled", docs=DOCS, queries=QUERIES, qrels=QRELS, split="train")


def test_titles_become_queries_and_bodies_their_unsearchable_positives(beir: Path) -> None:
    data = title_queries(beir / "corpus.jsonl", 10)
    assert sorted(data.queries) == ["title:d1", "title:d3", "title:d4", "title:d6", "title:d7"]
    assert data.queries["title:d4"] == "Salt causes heart disease"
    assert data.corpus["title:d4"] == "salt and fat increase heart disease risk"  # body without the title
    assert data.corpus["d4"].startswith("Salt causes heart disease ")  # the full document stays
    assert data.positives["title:d4"] == ["title:d4"]
    assert data.not_negative["title:d4"] == ["d4"]
    assert data.unsearchable == set(data.queries)
    assert "title:d4" not in data.search_corpus and "d4" in data.search_corpus
    # A fixed seed draws the same documents; a count below the eligible ones draws that many.
    assert title_queries(beir / "corpus.jsonl", 3).queries == title_queries(beir / "corpus.jsonl", 3).queries
    assert len(title_queries(beir / "corpus.jsonl", 3).queries) == 3
    with pytest.raises(ValueError, match="positive number"):
        title_queries(beir / "corpus.jsonl", 0)


def test_mining_skips_the_title_querys_own_document_and_every_body(beir: Path) -> None:
    data = load_training_data(DataConfig(dataset=str(beir), title_queries=10))
    assert {"q1", "q2", "q3", "title:d1", "title:d7"} <= set(data.queries)
    searcher = build_searcher("bm25", data, None)
    assert isinstance(searcher, BM25) and not set(searcher.doc_ids) & data.unsearchable
    mined = mine_hard_negatives(data, searcher, MiningConfig(range_max=10, num_negatives=10))
    for qid, docs in mined.items():
        assert not set(docs) & data.unsearchable, qid
        assert not set(docs) & data.excluded(qid), qid
    # The title "Cats sit on rocks" matches its own document best; it is never its negative, while
    # the other cat document (d7) is.
    assert "d1" not in mined["title:d1"] and mined["title:d1"][0] == "d7"
    with pytest.raises(ValueError, match="unsearchable positives"):
        mine_hard_negatives(data, searcher, MiningConfig(absolute_margin=0.1))


def test_title_queries_need_a_beir_corpus(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n")
    with pytest.raises(ValueError, match="needs a BEIR corpus"):
        load_training_data(DataConfig(dataset=str(rows), title_queries=5))
