"""``winnow eval beir|mteb|table|compare``: score models, tabulate results, test differences."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.beir import evaluate
from eval.metrics import DEFAULT_METRICS, check_metrics
from eval.report import (
    beir_chart,
    csv_table,
    load_pooled,
    load_results,
    markdown_table,
    render_csv,
    render_markdown,
    significance_rows,
)
from indexes.io import write_json_atomic
from retrieval.base import RetrieverProtocol, load_retriever
from retrieval.bm25 import BM25_MODEL, BM25Retriever
from retrieval.cli.hybrid_options import (
    add_hybrid_options,
    add_rerank_options,
    check_rerank_args,
    hybrid_config,
    hybrid_retriever,
    is_hybrid_request,
    with_reranker,
)
from retrieval.cli.options import (
    add_data_dir_option,
    add_device_option,
    add_encoder_options,
    add_index_options,
    add_option,
    check_milvus_uri,
    check_query_weights,
    model_retriever,
    parse_search_params,
)
from retrieval.corpus import open_beir
from retrieval.retriever import parse_index_spec
from retrieval.settings import data_root, resolve_beir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a model")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    beir = targets.add_parser("beir", help="score a model on a BEIR-layout folder")
    system = beir.add_mutually_exclusive_group(required=True)
    system.add_argument("--model", help="hub id or model directory, or bm25 (Lucene BM25 through pyserini)")
    system.add_argument(
        "--index-dir",
        metavar="DIR",
        help="directory written by `winnow index` (dense, sparse, BM25, hybrid): scored without re-encoding",
    )
    add_hybrid_options(beir, system)
    beir.add_argument("--data", required=True, help="BEIR folder, or a data set name under DATA_ROOT/beir/")
    add_data_dir_option(beir)
    beir.add_argument("--split", default="test", help="qrels split (default test)")
    beir.add_argument(
        "-k", "--top-k", type=int, default=1000, help="documents retrieved per query (default 1000)"
    )
    beir.add_argument(
        "--metric",
        action="append",
        default=None,
        help=f"metric NAME@K (repeatable; default {', '.join(DEFAULT_METRICS)})",
    )
    beir.add_argument(
        "--skip-queries",
        type=int,
        default=0,
        help="score only the queries after the first N (a model trained with data.max_queries=N never saw "
        "them): held-out model selection on a train split",
    )
    beir.add_argument("--output", default=None, help="write the result JSON here")
    add_encoder_options(beir)
    add_index_options(beir)
    add_rerank_options(beir)
    beir.set_defaults(func=run_beir)
    mteb = targets.add_parser(
        "mteb", help="score models on MTEB tasks or a benchmark (mteb's own evaluators)"
    )
    mteb_system = mteb.add_mutually_exclusive_group(required=True)
    mteb_system.add_argument("--model", action="append", help="hub id or model directory (repeatable)")
    add_hybrid_options(mteb, mteb_system)
    add_rerank_options(mteb)
    which = mteb.add_mutually_exclusive_group(required=True)
    which.add_argument("--benchmark", help='an mteb benchmark, e.g. "MTEB(eng, v2)"')
    which.add_argument(
        "--tasks", help="comma-separated task names, e.g. SciFact,NFCorpus,STSBenchmark,SICK-R"
    )
    add_option(
        mteb,
        "--data-dir",
        old=["--task-data"],
        default=None,
        metavar="DIR",
        help="load tasks from local copies under DIR (beir/NAME/, sts/NAME/; default: mteb downloads them)",
    )
    mteb.add_argument("--output", default="runs/mteb", help="results folder (mteb layout; default runs/mteb)")
    add_device_option(mteb)
    mteb.add_argument("--overwrite", action="store_true", help="rerun tasks that have cached results")
    mteb.add_argument(
        "--embedding-cache",
        default=None,
        help="serve dense embeddings from this content-keyed cache (e.g. ~/.cache/winnow/embeddings)",
    )
    mteb.set_defaults(func=run_mteb_cmd)
    table = targets.add_parser("table", help="print `eval beir` result files side by side")
    table.add_argument("results", nargs="+", help="JSON files written by `winnow eval beir --output`")
    table.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    table.add_argument(
        "--chart",
        default=None,
        metavar="PNG",
        help="also draw a bar chart: one group per data set, one bar per model",
    )
    table.add_argument("--metric", default="ndcg@10", help="metric NAME@K of the chart (default ndcg@10)")
    table.set_defaults(func=run_table)
    compare = targets.add_parser(
        "compare",
        help="paired significance tests of `eval beir` results against a baseline, query by query",
    )
    compare.add_argument(
        "baseline",
        help="result JSON of the baseline; A.json,B.json,... averages several runs (seeds) per query",
    )
    compare.add_argument("others", nargs="+", help="result JSON (or comma-joined runs) to test against it")
    compare.add_argument("--metric", default="ndcg@10", help="metric NAME@K (default ndcg@10)")
    compare.add_argument(
        "--resamples", type=int, default=10_000, help="permutations and bootstrap samples (default 10000)"
    )
    compare.add_argument("--seed", type=int, default=0, help="random seed of the resampling (default 0)")
    compare.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    compare.add_argument("--output", default=None, help="also write the comparisons as JSON here")
    compare.set_defaults(func=run_compare)


def run_mteb_cmd(args: argparse.Namespace) -> int:
    from eval.mteb_report import csv_summary, markdown_summary, mteb_chart
    from eval.mteb_run import run_mteb

    if args.data_dir and not Path(args.data_dir).is_dir():
        raise FileNotFoundError(f"--data-dir {args.data_dir} is not a directory")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    check_rerank_args(args)
    config = hybrid_config(args)
    models: list = list(args.model or [])
    if config is not None:
        from eval.mteb_hybrid import HybridSearchModel

        models = [
            HybridSearchModel(config, rerank=args.rerank, rerank_depth=args.rerank_depth, device=args.device)
        ]
    elif args.rerank:
        raise ValueError("--rerank in `eval mteb` reranks a hybrid: add --member (repeatable) or --hybrid")
    runs = [
        run_mteb(
            m,
            tasks=tasks,
            benchmark=args.benchmark,
            task_data=args.data_dir,
            output=args.output,
            device=args.device,
            overwrite=args.overwrite,
            embedding_cache=args.embedding_cache,
        )
        for m in models
    ]
    summary = markdown_summary(runs)
    print(summary, end="")
    out = Path(args.output)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    (out / "summary.csv").write_text(csv_summary(runs), encoding="utf-8")
    if any(r.scored for r in runs):
        mteb_chart(runs, out / "summary.png")
    print(f"results: {out / 'results'}; summary: {out / 'summary.md'}, .csv, .png", file=sys.stderr)
    check_mteb_runs(runs)
    return 0


def check_mteb_runs(runs: list) -> None:
    """Raise a ValueError naming the model and tasks when a task failed or a model scored none.

    A task skipped because ``--data-dir`` has no copy of it is allowed in a partial run, as long as
    the model scored some task.
    """
    problems = []
    for run in runs:
        failed = [s for s in run.skipped if s.reason.startswith("evaluation failed")]
        if failed or not run.scored:
            tasks = "; ".join(f"{s.task} ({s.reason})" for s in (failed or run.skipped)) or "no task"
            problems.append(f"{run.model} scored {len(run.scored)} of {run.requested} tasks: {tasks}")
    if problems:
        raise ValueError("; ".join(problems))


def run_table(args: argparse.Namespace) -> int:
    results = load_results(args.results)
    sys.stdout.write(markdown_table(results) if args.format == "markdown" else csv_table(results))
    if args.chart:
        path = beir_chart(results, args.chart, metric=args.metric)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from eval.significance import paired_comparison

    if args.resamples < 100:
        raise ValueError(f"--resamples {args.resamples}: use at least 100")
    base_label, base = load_pooled(args.baseline, args.metric)
    labels, comparisons = [], []
    for spec in args.others:
        label, scores = load_pooled(spec, args.metric)
        try:
            comparison = paired_comparison(
                base, scores, args.metric, n_resamples=args.resamples, seed=args.seed
            )
        except ValueError as exc:
            raise ValueError(f"{spec} against {args.baseline}: {exc}") from exc
        labels.append(label)
        comparisons.append(comparison)
    header, rows = significance_rows(labels, comparisons, base_label)
    sys.stdout.write(render_markdown(header, rows) if args.format == "markdown" else render_csv(header, rows))
    if args.output:
        write_json_atomic(
            args.output,
            {
                "command": " ".join(sys.argv),
                "baseline": {"label": base_label, "files": args.baseline},
                "comparisons": [
                    {"label": label, "files": spec, **asdict(c)}
                    for label, spec, c in zip(labels, args.others, comparisons, strict=True)
                ],
            },
        )
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def run_beir(args: argparse.Namespace) -> int:
    data = open_beir(resolve_beir(args.data, data_root(args.data_dir)))  # cheap inputs before a model
    check_metrics(args.metric or DEFAULT_METRICS, args.top_k)
    data.judged(args.split)  # split, qrels, queries and corpus checked (and cached) before a model
    params = parse_search_params(args.search_param)
    check_milvus_uri(args)
    check_query_weights(args)
    if args.index:
        parse_index_spec(args.index)
    check_rerank_args(args)
    config = hybrid_config(args)  # member specs and fusion flags checked before a model loads
    if args.index_dir:
        retriever, model_name = _saved_retriever(args)
    elif is_hybrid_request(args):
        retriever = hybrid_retriever(args, config, max_length=args.max_length, params=params)
        model_name = retriever.name
    elif args.model == BM25_MODEL:
        retriever, model_name = BM25Retriever(), args.model
    else:
        retriever = model_retriever(args, params)
        model_name = args.model
    retriever = with_reranker(args, retriever, documents=data.root / "corpus.jsonl")
    result = evaluate(
        retriever,
        data,
        split=args.split,
        metrics=args.metric or DEFAULT_METRICS,
        top_k=args.top_k,
        batch_size=args.batch_size,
        build=None if is_hybrid_request(args) else not args.index_dir,
        model_name=model_name,
        skip_queries=args.skip_queries,
    )
    if args.index_dir:
        result["index_dir"] = str(args.index_dir)
    width = max(len(m) for m in result["metrics"])
    print(f"{result['dataset']} ({result['split']}, {result['n_queries']} queries) model={result['model']}")
    for metric, value in result["metrics"].items():
        print(f"  {metric:<{width}}  {value:.4f}")
    print(f"  seconds  {result['seconds']:.1f}")
    if args.output:
        write_json_atomic(args.output, result)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _saved_retriever(args: argparse.Namespace) -> tuple[RetrieverProtocol, str]:
    """The retriever saved in ``--index-dir`` and the model it searches with (an encoder, or bm25)."""
    if args.index or args.search_param:
        raise ValueError(
            "--index and --search-param choose how to build an index; the --index-dir one is built already"
        )
    retriever = load_retriever(args.index_dir, device=args.device)
    return retriever, retriever.name
