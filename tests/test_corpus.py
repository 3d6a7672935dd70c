"""Readers name the file and line of bad input."""

from __future__ import annotations

import json

import pytest

from retrieval.corpus import corpus_texts, document_text, iter_corpus, load_qrels, open_beir
from retrieval.settings import data_root, resolve_beir
from tests.conftest import DOCS, write_beir


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


def test_data_root_is_the_flag_else_winnow_data_else_dot_data(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WINNOW_DATA", raising=False)
    assert data_root(None) == tmp_path.resolve() / "data"
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path / "env"))
    assert data_root(None) == tmp_path.resolve() / "env"
    assert data_root("flag") == tmp_path.resolve() / "flag"  # relative to the current directory
    assert data_root(tmp_path / "other") == tmp_path.resolve() / "other"


def test_resolve_beir_takes_a_folder_or_a_name_under_the_root(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WINNOW_DATA", raising=False)
    folder = write_beir(tmp_path / "root" / "beir" / "mini")
    assert resolve_beir(str(folder), tmp_path / "elsewhere") == folder
    assert resolve_beir("mini", tmp_path / "root") == folder
    with pytest.raises(FileNotFoundError) as caught:
        resolve_beir("scifact", tmp_path / "root")
    assert str(caught.value) == (
        f"data set 'scifact' not found: neither a folder nor {tmp_path / 'root' / 'beir' / 'scifact'} "
        "(data root from --data-dir); run `winnow data fetch scifact` or point WINNOW_DATA at a local copy"
    )
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path / "root"))
    assert resolve_beir("mini") == folder  # no root given: data_root() of no flag
    with pytest.raises(FileNotFoundError, match=r"\(data root from \$WINNOW_DATA\)"):
        resolve_beir("scifact", data_root(None))
    monkeypatch.delenv("WINNOW_DATA")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"\(data root from default \./data\)"):
        resolve_beir("scifact", data_root(None))


def test_corpus_texts_reads_folders_files_and_names_in_order(tmp_path) -> None:
    write_beir(tmp_path / "root" / "beir" / "mini")
    other = write_beir(tmp_path / "other", docs=DOCS[:2])
    texts = list(corpus_texts(["mini", other], tmp_path / "root"))
    assert texts == [document_text({"title": t, "text": x}) for _, t, x in [*DOCS, *DOCS[:2]]]
    assert list(corpus_texts([other / "corpus.jsonl"])) == texts[len(DOCS) :]  # a corpus file
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a BEIR folder .* nor a corpus .jsonl file"):
        list(corpus_texts([tmp_path / "notes.txt"]))
    with pytest.raises(FileNotFoundError, match="data set 'missing' not found"):
        corpus_texts(["mini", "missing"], tmp_path / "root")  # refused when called, before any read
