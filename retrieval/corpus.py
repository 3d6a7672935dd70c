"""Read corpora, queries and qrels: BEIR folders, JSONL files, Hugging Face datasets and plain iterables.

Every reader checks its input and names the file and line of a bad record. Documents are dicts with
``_id``, ``title`` and ``text``; queries are ``{query_id: text}``; qrels are
``{query_id: {doc_id: relevance}}``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from retrieval.settings import resolve_beir


class Document(TypedDict):
    _id: str
    title: str
    text: str


Qrels = dict[str, dict[str, int]]
CorpusSource = str | Path | Iterable[Mapping[str, Any]]


def document_text(doc: Mapping[str, Any]) -> str:
    """The text a document encoder sees: ``title + " " + text`` (BEIR's convention), stripped."""
    title = (doc.get("title") or "").strip()
    text = (doc.get("text") or "").strip()
    return f"{title} {text}".strip() if title else text


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; bad JSON names the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
            yield line_no, record


def _check_document(record: Mapping[str, Any], where: str) -> Document:
    if "_id" not in record:
        raise ValueError(f"{where}: document has no '_id' field (fields: {', '.join(record) or 'none'})")
    text, title = record.get("text"), record.get("title", "")
    if text is None and not title:
        raise ValueError(f"{where}: document {record['_id']!r} has neither 'text' nor 'title'")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: 'text' of document {record['_id']!r} must be a string")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"{where}: 'title' of document {record['_id']!r} must be a string")
    return Document(_id=str(record["_id"]), title=title or "", text=text or "")


def iter_corpus(source: CorpusSource) -> Iterator[Document]:
    """Stream documents from a BEIR folder, a ``corpus.jsonl`` path, or an iterable of dicts.

    Duplicate ids raise a ValueError naming the file and line of the second one.
    """
    seen: set[str] = set()
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            path = path / "corpus.jsonl"
        records: Iterable[tuple[str, Mapping[str, Any]]] = (
            (f"{path}:{line_no}", rec) for line_no, rec in iter_jsonl(path)
        )
    else:
        records = ((f"corpus item {i}", rec) for i, rec in enumerate(source))
    for where, record in records:
        doc = _check_document(record, where)
        if doc["_id"] in seen:
            raise ValueError(f"{where}: duplicate document id {doc['_id']!r}")
        seen.add(doc["_id"])
        yield doc


def corpus_texts(datasets: Iterable[str | Path], root: Path | None = None) -> Iterator[str]:
    """The document texts (:func:`document_text`) of several BEIR corpora, one after another.

    Args:
        datasets: BEIR folders, or data set names looked up as ``root/beir/<name>``
            (:func:`retrieval.settings.resolve_beir`).
        root: the data root for names (``None``: :func:`retrieval.settings.data_root` with no
            explicit root).

    Example:
        >>> texts = corpus_texts(["scifact", "/data/beir/nfcorpus"], root=Path("data"))  # doctest: +SKIP
        >>> next(texts)[:30]  # doctest: +SKIP
    """
    for name in datasets:
        path = resolve_beir(name, root)
        if not path.is_dir():
            raise ValueError(f"{name!r} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
        yield from (document_text(doc) for doc in iter_corpus(path))


def load_corpus(source: CorpusSource) -> list[Document]:
    """Read a whole corpus into memory (see :func:`iter_corpus`)."""
    return list(iter_corpus(source))


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl`` (``_id``, ``text``) into ``{query_id: text}``."""
    path = Path(path)
    queries: dict[str, str] = {}
    for line_no, record in iter_jsonl(path):
        if "_id" not in record or not isinstance(record.get("text"), str):
            raise ValueError(f"{path}:{line_no}: a query needs '_id' and a string 'text'")
        queries[str(record["_id"])] = record["text"]
    return queries


def load_qrels(path: str | Path) -> Qrels:
    """Read a BEIR qrels TSV (``query-id``, ``corpus-id``, ``score`` with a header line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for line_no, row in enumerate(reader, start=1):
            if not row or not "".join(row).strip():
                continue
            if (
                line_no == 1
                and len(row) >= 3
                and not row[2].strip().lstrip("-").replace(".", "", 1).isdigit()
            ):
                continue  # header line
            if len(row) < 3:
                raise ValueError(
                    f"{path}:{line_no}: expected 3 tab-separated columns, got {len(row)}: {row!r}"
                )
            query_id, doc_id, score = row[0], row[1], row[2]
            try:
                relevance = int(float(score))
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: relevance {score!r} is not a number") from exc
            qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


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

    def queries(self, split: str) -> dict[str, str]:
        """The queries that have judgements in ``split``."""
        qrels = self.qrels(split)
        queries = load_queries(self.root / "queries.jsonl")
        missing = [q for q in qrels if q not in queries]
        if missing:
            raise ValueError(
                f"{self.root / 'qrels' / (split + '.tsv')}: {len(missing)} judged queries are not in "
                f"queries.jsonl (first: {missing[0]!r})"
            )
        return {qid: queries[qid] for qid in qrels}

    def qrels(self, split: str) -> Qrels:
        path = self.root / "qrels" / f"{split}.tsv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found; splits in {self.root}: {', '.join(self.splits()) or 'none'}"
            )
        return load_qrels(path)


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
