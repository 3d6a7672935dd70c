"""Readers name the file and line of bad input."""

from __future__ import annotations

import json

import pytest

from retrieval.corpus import document_text, iter_corpus, load_qrels, open_beir


def test_beir_folder_round_trip(tiny_beir) -> None:
    data = open_beir(tiny_beir)
    assert data.splits() == ["test"]
    assert len(data.corpus()) == 6
    assert data.queries("test") == {
        "q1": "cat on a rock",
        "q2": "heart disease from salt",
        "q3": "vitamin and bone",
    }
    assert data.qrels("test")["q3"] == {"d3": 2, "d4": 1}


def test_document_text_joins_title_and_text() -> None:
    assert document_text({"_id": "1", "title": "T", "text": "body"}) == "T body"
    assert document_text({"_id": "1", "title": "", "text": " body "}) == "body"


def test_malformed_json_names_file_and_line(tiny_beir) -> None:
    path = tiny_beir / "corpus.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, '{"_id": "x", "text": ')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3: invalid JSON"):
        list(iter_corpus(tiny_beir))


def test_missing_id_and_duplicate_id(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"c\.jsonl:1: document has no '_id'"):
        list(iter_corpus(path))
    path.write_text(
        json.dumps({"_id": "1", "text": "a"}) + "\n\n" + json.dumps({"_id": "1", "text": "b"}) + "\n"
    )
    with pytest.raises(ValueError, match=r"c\.jsonl:3: duplicate document id '1'"):
        list(iter_corpus(path))
    with pytest.raises(ValueError, match="corpus item 1: duplicate"):
        list(iter_corpus([{"_id": "1", "text": "a"}, {"_id": "1", "text": "b"}]))


def test_bad_qrels_and_missing_split(tiny_beir) -> None:
    path = tiny_beir / "qrels" / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2: relevance 'yes' is not a number"):
        load_qrels(path)
    path.write_text("q1\td1\n")
    with pytest.raises(ValueError, match=r"test\.tsv:1: expected 3 tab-separated columns"):
        load_qrels(path)
    with pytest.raises(FileNotFoundError, match="splits in .*: test"):
        open_beir(tiny_beir).qrels("dev")


def test_not_a_beir_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="corpus.jsonl is missing"):
        open_beir(tmp_path)
