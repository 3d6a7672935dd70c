"""Read corpora, queries and qrels: BEIR folders, JSONL files, Hugging Face datasets and plain iterables.

Every reader checks its input and names the file and line of a bad record. Documents are dicts with
``_id``, ``title`` and ``text``; queries are ``{query_id: text}``; qrels are
``{query_id: {doc_id: relevance}}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from retrieval.judgements import Qrels, load_qrels, match_judgements
from retrieval.settings import resolve_beir
from retrieval.textfile import iter_text_lines, warn_counted

logger = logging.getLogger(__name__)

__all__ = [
    "BeirDataset",
    "Document",
    "Qrels",
    "corpus_texts",
    "document_text",
    "iter_corpus",
    "iter_jsonl",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "open_beir",
]


class Document(TypedDict):
    _id: str
    title: str
    text: str


CorpusSource = str | Path | Iterable[Mapping[str, Any]]


def document_text(doc: Mapping[str, Any]) -> str:
    """The text a document encoder sees: ``title + " " + text`` (BEIR's convention), stripped."""
    title = (doc.get("title") or "").strip()
    text = (doc.get("text") or "").strip()
    return f"{title} {text}".strip() if title else text


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; bad UTF-8 or JSON names the file and line."""
    for line_no, line in iter_text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
        yield line_no, record


def record_id(record: Mapping[str, Any], where: str, what: str = "document") -> str:
    """A record's ``_id`` as a string: a non-empty string or an integer, else a ValueError naming it."""
    if "_id" not in record:
        raise ValueError(f"{where}: {what} has no '_id' field (fields: {', '.join(record) or 'none'})")
    value = record["_id"]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{where}: {what} '_id' is {json.dumps(value)}; expected a non-empty string")
    if not str(value).strip():
        raise ValueError(f"{where}: {what} '_id' is {json.dumps(value)}; expected a non-empty string")
    return str(value)


def _check_document(record: Mapping[str, Any], where: str) -> Document:
    doc_id = record_id(record, where)
    text, title = record.get("text"), record.get("title")
    if text is None and title is None:
        raise ValueError(f"{where}: document {doc_id!r} has neither 'text' nor 'title'")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: 'text' of document {doc_id!r} must be a string, got {json.dumps(text)}")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"{where}: 'title' of document {doc_id!r} must be a string, got {json.dumps(title)}")
    return Document(_id=doc_id, title=title or "", text=text or "")


def iter_corpus(source: CorpusSource) -> Iterator[Document]:
    """Stream documents from a BEIR folder, a ``corpus.jsonl`` path, or an iterable of dicts.

    Refused with a ValueError naming the file and line: a missing, null or empty ``_id``, a second
    document with the same id, a non-string title or text, neither field. A document whose title and
    text are both empty is kept (it can never be retrieved usefully) and counted: one warning when
    the source is exhausted.
    """
    seen: set[str] = set()
    empty: list[str] = []
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            path = path / "corpus.jsonl"
        name = str(path)
        records: Iterable[tuple[str, str, Mapping[str, Any]]] = (
            (f"{path}:{line_no}", f"line {line_no}", rec) for line_no, rec in iter_jsonl(path)
        )
    else:
        name = "corpus"
        records = ((f"corpus item {i}", f"item {i}", rec) for i, rec in enumerate(source))
    for where, label, record in records:
        doc = _check_document(record, where)
        if doc["_id"] in seen:
            raise ValueError(f"{where}: duplicate document id {doc['_id']!r}; expected unique ids")
        seen.add(doc["_id"])
        if not document_text(doc):
            empty.append(f"{doc['_id']!r} ({label})")
        yield doc
    warn_counted(logger, name, "documents with an empty title and text (indexed, never useful)", empty)


def corpus_texts(datasets: Iterable[str | Path], root: Path | None = None) -> Iterator[str]:
    """The document texts (:func:`document_text`) of several BEIR corpora, one after another; every
    name is checked when this is called, before any document is read.

    Args:
        datasets: BEIR folders, corpus ``.jsonl`` files (a large general corpus for an IDF table, for
            example), or data set names looked up as ``root/beir/<name>``
            (:func:`retrieval.settings.resolve_beir`).
        root: the data root for names (``None``: :func:`retrieval.settings.data_root` with no
            explicit root).

    Example:
        >>> texts = corpus_texts(["scifact", "/data/beir/nfcorpus"], root=Path("data"))  # doctest: +SKIP
        >>> next(texts)[:30]  # doctest: +SKIP
    """
    datasets = list(datasets)
    paths = [resolve_beir(name, root) for name in datasets]
    for name, path in zip(datasets, paths, strict=True):
        if not path.is_dir() and not (path.is_file() and path.suffix == ".jsonl"):
            raise ValueError(
                f"{name!r} is neither a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) nor a "
                "corpus .jsonl file"
            )
    return (document_text(doc) for path in paths for doc in iter_corpus(path))


def load_corpus(source: CorpusSource) -> list[Document]:
    """Read a whole corpus into memory (see :func:`iter_corpus`)."""
    return list(iter_corpus(source))


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl`` (``_id``, ``text``) into ``{query_id: text}``.

    Refused with a ValueError naming the file and line: a missing, null or empty ``_id``, a ``text``
    that is not a string or is blank, an id given twice.
    """
    path = Path(path)
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line_no, record in iter_jsonl(path):
        where = f"{path}:{line_no}"
        query_id = record_id(record, where, "query")
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"{where}: query {query_id!r} has text {json.dumps(text)}; expected a non-empty string"
            )
        if query_id in queries:
            raise ValueError(
                f"{where}: duplicate query id {query_id!r} (first on line {lines[query_id]}); "
                "expected unique ids"
            )
        queries[query_id] = text
        lines[query_id] = line_no
    return queries


_JUDGED: dict[tuple[str, str, tuple[tuple[int, int], ...]], tuple[dict[str, str], Qrels]] = {}


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR-layout folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))

    def corpus(self) -> list[Document]:
        return load_corpus(self.root / "corpus.jsonl")

    def qrels_path(self, split: str) -> Path:
        path = self.root / "qrels" / f"{split}.tsv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: split {split!r} does not exist; splits in {self.root}: "
                f"{', '.join(self.splits()) or 'none'}"
            )
        return path

    def judged(self, split: str) -> tuple[dict[str, str], Qrels]:
        """The scorable queries of ``split`` and their judgements (:func:`match_judgements`).

        Reads qrels, queries and corpus ids once per process and file state; a bad file raises here,
        before any model is loaded.
        """
        files = [self.qrels_path(split), self.root / "queries.jsonl", self.root / "corpus.jsonl"]
        stats = [os.stat(f) for f in files]
        key = (str(self.root.resolve()), split, tuple((s.st_mtime_ns, s.st_size) for s in stats))
        if key not in _JUDGED:
            qrels = load_qrels(files[0])
            queries = load_queries(files[1])
            doc_ids = {doc["_id"] for doc in iter_corpus(files[2])}
            _JUDGED[key] = match_judgements(qrels, queries, doc_ids, files[0])
        queries, qrels = _JUDGED[key]
        return dict(queries), {q: dict(docs) for q, docs in qrels.items()}

    def queries(self, split: str) -> dict[str, str]:
        """The scorable judged queries of ``split`` (see :meth:`judged`)."""
        return self.judged(split)[0]

    def qrels(self, split: str) -> Qrels:
        """The judgements of the scorable queries of ``split`` (see :meth:`judged`)."""
        return self.judged(split)[1]


def open_beir(path: str | Path) -> BeirDataset:
    """Check that ``path`` is a BEIR folder and return it."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"BEIR folder {root} not found")
    for needed in ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (root / needed).exists():
            raise FileNotFoundError(
                f"{root} is not a BEIR folder: {needed} is missing "
                "(expected corpus.jsonl, queries.jsonl, qrels/)"
            )
    return BeirDataset(root)
