"""``winnow search``: query a saved index; prints a TREC run or writes JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexes.io import write_file_atomic
from retrieval.base import load_retriever
from retrieval.cli.hybrid_options import (
    add_hybrid_options,
    add_rerank_options,
    check_rerank_args,
    hybrid_config,
    hybrid_retriever,
    with_reranker,
)
from retrieval.cli.options import add_data_dir_option, add_device_option, resolve_corpus
from retrieval.corpus import load_queries


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("search", help="search a saved index")
    system = parser.add_mutually_exclusive_group(required=True)
    system.add_argument(
        "--index-dir",
        metavar="DIR",
        help="directory written by `winnow index` (dense, sparse, BM25, hybrid or reranked)",
    )
    add_hybrid_options(parser, system)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--query", action="append", help="a query text (repeatable)")
    source.add_argument("--queries", help="queries.jsonl with _id and text")
    parser.add_argument("-k", "--top-k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--output", default=None, help="write a TREC run file here instead of stdout")
    parser.add_argument("--format", choices=("trec", "jsonl"), default="trec", help="output format")
    add_device_option(parser)
    add_rerank_options(parser)
    parser.add_argument(
        "--corpus",
        default=None,
        help="with --rerank: the corpus the index was built from (BEIR folder, corpus.jsonl or data set "
        "name), where the cross-encoder reads document texts",
    )
    add_data_dir_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.queries:
        queries = load_queries(args.queries)  # bad queries are refused before the index loads
    else:
        for i, text in enumerate(args.query, start=1):
            if not text.strip():
                raise ValueError(f"--query number {i} is {text!r}; expected a non-empty text")
        queries = {str(i): q for i, q in enumerate(args.query)}
    if not queries:
        raise ValueError(f"{args.queries}: no query in the file; expected JSON lines with _id and text")
    check_rerank_args(args)
    if args.rerank and not args.corpus:
        raise ValueError("--rerank reads document texts: add --corpus (the corpus the index was built from)")
    config = hybrid_config(args)
    if args.index_dir:
        retriever = load_retriever(args.index_dir, device=args.device)
    else:
        unsaved = [str(m) for m in config.members if m.folder is None] if config is not None else []
        if unsaved:
            raise ValueError(
                f"hybrid member(s) {', '.join(unsaved)} have no index to search: give folders saved by "
                "`winnow index` (or build the hybrid with `winnow index --member ...`)"
            )
        retriever = hybrid_retriever(args, config)
    if args.rerank:
        retriever = with_reranker(args, retriever, documents=resolve_corpus(args.corpus, args.data_dir))
    query_ids = list(queries)
    hits = retriever.search([queries[q] for q in query_ids], k=args.top_k)
    lines = []
    for qid, ids, padded in zip(query_ids, hits.ids, hits.scores, strict=True):
        scores = padded[: len(ids)]  # fewer hits than k: the scores are padded, the ids are not
        if args.format == "jsonl":
            lines.append(
                json.dumps({"query_id": qid, "ids": ids, "scores": [round(float(s), 6) for s in scores]})
            )
        else:
            lines.extend(
                f"{qid} Q0 {doc} {rank} {score:.6f} winnow"
                for rank, (doc, score) in enumerate(zip(ids, scores, strict=True), 1)
            )
    text = "\n".join(lines) + "\n"
    if args.output:
        write_file_atomic(args.output, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        sys.stdout.write(text)
    return 0
