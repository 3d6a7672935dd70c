"""``winnow eval beir``: score a model on a BEIR-layout data set."""

from __future__ import annotations

import argparse
import json
import sys

from eval.beir import evaluate
from eval.metrics import DEFAULT_METRICS
from eval.report import csv_table, load_results, markdown_table
from indexes.io import write_json_atomic
from retrieval.cli.options import add_encoder_options, add_index_options, parse_search_params
from retrieval.corpus import open_beir
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever, parse_index_spec
from retrieval.settings import resolve_beir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a model")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    beir = targets.add_parser("beir", help="score a model on a BEIR-layout folder")
    beir.add_argument("--model", required=True, help="hub id or model directory")
    beir.add_argument("--data", required=True, help="BEIR folder, or a name under $WINNOW_DATA/beir/")
    beir.add_argument("--split", default="test", help="qrels split (default test)")
    beir.add_argument("--top-k", type=int, default=1000, help="documents retrieved per query (default 1000)")
    beir.add_argument(
        "--metric",
        action="append",
        default=None,
        help=f"metric NAME@K (repeatable; default {', '.join(DEFAULT_METRICS)})",
    )
    beir.add_argument("--output", default=None, help="write the result JSON here")
    add_encoder_options(beir)
    add_index_options(beir)
    beir.set_defaults(func=run_beir)
    table = targets.add_parser("table", help="print `eval beir` result files side by side")
    table.add_argument("results", nargs="+", help="JSON files written by `winnow eval beir --output`")
    table.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    table.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    results = load_results(args.results)
    sys.stdout.write(markdown_table(results) if args.format == "markdown" else csv_table(results))
    return 0


def run_beir(args: argparse.Namespace) -> int:
    data = open_beir(resolve_beir(args.data))  # check the cheap inputs before loading a model
    params = parse_search_params(args.search_param)
    parse_index_spec(args.index)
    encoder = load_encoder(args.model, device=args.device, max_length=args.max_length)
    retriever = Retriever(encoder, index=args.index, search_params=params)
    result = evaluate(
        retriever,
        data,
        split=args.split,
        metrics=args.metric or DEFAULT_METRICS,
        top_k=args.top_k,
        batch_size=args.batch_size,
        model_name=args.model,
    )
    width = max(len(m) for m in result["metrics"])
    print(f"{result['dataset']} ({result['split']}, {result['n_queries']} queries) model={result['model']}")
    for metric, value in result["metrics"].items():
        print(f"  {metric:<{width}}  {value:.4f}")
    print(f"  seconds  {result['seconds']:.1f}")
    if args.output:
        write_json_atomic(args.output, result)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        json.dumps(result)  # fail early on non-serialisable values
    return 0
