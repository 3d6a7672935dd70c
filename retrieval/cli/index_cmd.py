"""``winnow index``: encode a corpus and save a searchable index directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from retrieval.cli.options import add_encoder_options, add_index_options, parse_search_params
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever, parse_index_spec


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("index", help="encode a corpus and write an index directory")
    parser.add_argument("--model", required=True, help="hub id or model directory")
    parser.add_argument("--corpus", required=True, help="BEIR folder or corpus.jsonl")
    parser.add_argument("--output", required=True, help="index directory to write")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="keep document embeddings here (memory-mapped) so an interrupted run resumes",
    )
    add_encoder_options(parser)
    add_index_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = parse_search_params(args.search_param)  # check the cheap inputs before loading a model
    if args.index:
        parse_index_spec(args.index)
    if not Path(args.corpus).exists():
        raise FileNotFoundError(f"corpus {args.corpus} not found (expected a BEIR folder or a corpus.jsonl)")
    encoder = load_encoder(args.model, device=args.device, max_length=args.max_length)
    retriever = Retriever(encoder, index=args.index, search_params=params)
    retriever.build(args.corpus, batch_size=args.batch_size, cache_dir=args.cache_dir)
    path = retriever.save(args.output)
    print(f"indexed {len(retriever.index)} documents with {encoder.name} into {path}")
    return 0
