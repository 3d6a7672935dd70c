"""Relevance judgements: read a BEIR qrels file strictly, and match it to the queries and corpus.

A qrels file is UTF-8 TSV with the header ``query-id  corpus-id  score`` and one judgement per line;
relevance is an integer (graded; 0 or negative: not relevant). What is refused and what is a counted
warning is listed in ``docs/reliability.md``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Collection, Mapping
from pathlib import Path

from retrieval.textfile import iter_text_lines, warn_counted

logger = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]
HEADER = ("query-id", "corpus-id", "score")


def _relevance(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{where}: relevance {value!r} is not a number; expected an integer grade") from exc
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError(
            f"{where}: relevance {value!r} is not an integer; expected an integer grade (0, 1, 2...): "
            "pytrec_eval would truncate it"
        )
    return int(number)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_qrels(path: str | Path) -> Qrels:
    """Read a BEIR qrels TSV into ``{query_id: {doc_id: relevance}}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and line: not UTF-8, no header line, a line without exactly 3
            tab-separated columns, an empty id, a relevance that is not an integer, or one pair
            judged twice with different grades.

    Example:
        >>> load_qrels("data/beir/scifact/qrels/test.tsv")["1"]  # doctest: +SKIP
        {'31715818': 1}
    """
    path = Path(path)
    qrels: Qrels = {}
    seen: dict[tuple[str, str], int] = {}
    header = False
    for line_no, line in iter_text_lines(path):
        if not line.strip():
            continue
        row = next(csv.reader([line.rstrip("\r\n")], delimiter="\t"))
        where = f"{path}:{line_no}"
        if len(row) != 3:
            raise ValueError(f"{where}: expected 3 tab-separated columns, got {len(row)}: {row!r}")
        if not header:
            header = True
            if _is_number(row[2]):
                raise ValueError(
                    f"{where}: expected the header line {chr(9).join(HEADER)!r} (BEIR qrels), got {row!r}"
                )
            continue
        query_id, doc_id = row[0].strip(), row[1].strip()
        if not query_id or not doc_id:
            raise ValueError(f"{where}: empty query id or document id in {row!r}")
        relevance = _relevance(row[2].strip(), where)
        first = seen.setdefault((query_id, doc_id), line_no)
        previous = qrels.get(query_id, {}).get(doc_id)
        if previous is not None and previous != relevance:
            raise ValueError(
                f"{where}: query {query_id!r}, document {doc_id!r} judged {relevance} here and "
                f"{previous} on line {first}; expected one grade per pair"
            )
        qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def match_judgements(
    qrels: Qrels, queries: Mapping[str, str], doc_ids: Collection[str], where: str | Path
) -> tuple[dict[str, str], Qrels]:
    """The judged queries that can be scored, and their judgements.

    Args:
        qrels: the judgements of one split.
        queries: every query text (``queries.jsonl``).
        doc_ids: every corpus document id.
        where: the qrels file, for messages.

    Returns:
        ``(queries, qrels)`` of the same query ids, in qrels-file order: a judged query absent from
        ``queries`` is dropped; so is a query that has relevant documents, none of them in the corpus.
        Judgements of absent documents are kept otherwise (a relevant document that cannot be
        retrieved counts as a miss, as in BEIR). Each kind of drop is one counted warning.

    Raises:
        ValueError: no judged query is left.
    """
    absent_queries = [q for q in qrels if q not in queries]
    absent_docs = [f"{q!r}->{d!r}" for q, docs in qrels.items() for d in docs if d not in doc_ids]
    unreachable = [
        q
        for q, docs in qrels.items()
        if q in queries
        and any(r > 0 for r in docs.values())
        and not any(r > 0 and d in doc_ids for d, r in docs.items())
    ]
    warn_counted(
        logger, where, "judged queries not in queries.jsonl: not scored", list(map(repr, absent_queries))
    )
    warn_counted(logger, where, "judgements name documents not in corpus.jsonl", absent_docs)
    warn_counted(
        logger,
        where,
        "queries whose every relevant document is absent from the corpus: not scored",
        list(map(repr, unreachable)),
    )
    dropped = set(absent_queries) | set(unreachable)
    kept = {q: docs for q, docs in qrels.items() if q not in dropped}
    if not kept:
        raise ValueError(
            f"{where}: none of its {len(qrels)} judged queries can be scored "
            f"({len(absent_queries)} not in queries.jsonl, {len(unreachable)} with every relevant "
            "document absent from corpus.jsonl); expected the qrels of this data set"
        )
    return {q: queries[q] for q in kept}, kept
