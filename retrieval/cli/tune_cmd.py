"""``winnow tune fusion``: choose a hybrid's fusion on a train or dev split and write its config."""

from __future__ import annotations

import argparse
import sys

from retrieval.cli.hybrid_options import add_hybrid_options, hybrid_config, hybrid_retriever, parse_numbers
from retrieval.cli.options import add_data_dir_option, add_device_option
from retrieval.corpus import open_beir
from retrieval.fusion import FUSIONS
from retrieval.hybrid_config import HybridConfig, check_config_output
from retrieval.settings import data_root, resolve_beir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tune", help="choose settings on a train or dev split")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    fusion = targets.add_parser(
        "fusion", help="grid-search a hybrid's fusion, weights and depth; write the hybrid config"
    )
    system = fusion.add_mutually_exclusive_group(required=True)
    add_hybrid_options(fusion, system, fusion_flags=False)
    fusion.add_argument("--data", required=True, help="BEIR folder, or a data set name under DATA_ROOT/beir/")
    add_data_dir_option(fusion)
    fusion.add_argument("--split", required=True, help="train or dev (test is refused)")
    fusion.add_argument(
        "--skip-queries",
        type=int,
        default=0,
        help="tune only on the queries after the first N (those a model trained with data.max_queries=N "
        "never saw)",
    )
    fusion.add_argument("--metric", default="ndcg@10", help="metric NAME@K to maximise (default ndcg@10)")
    fusion.add_argument("--fusions", default=",".join(FUSIONS), help="fusions tried (default rrf,convex)")
    fusion.add_argument(
        "--normalizations",
        default="minmax,zscore",
        help="convex normalisations tried (default minmax,zscore)",
    )
    fusion.add_argument("--rrf-ks", default="60", help="RRF constants tried (default 60)")
    fusion.add_argument("--depths", default="100,1000", help="candidates per member tried (default 100,1000)")
    fusion.add_argument(
        "--weight-step", type=float, default=0.1, help="weights tried on a simplex grid of this step (0.1)"
    )
    fusion.add_argument("--batch-size", type=int, default=64, help="queries per encoding batch (default 64)")
    fusion.add_argument("--output", required=True, help="hybrid config to write (.yaml or .json)")
    add_device_option(fusion)
    fusion.set_defaults(func=run_fusion)


def run_fusion(args: argparse.Namespace) -> int:
    from eval.fusion_tuning import FusionGrid, check_tuning_split, tune_fusion

    check_tuning_split(args.split)  # before anything loads
    grid = FusionGrid(
        fusions=[f.strip() for f in args.fusions.split(",")],
        normalizations=[n.strip() for n in args.normalizations.split(",")],
        rrf_ks=parse_numbers("--rrf-ks", args.rrf_ks, float),
        depths=parse_numbers("--depths", args.depths, int),
        weight_step=args.weight_step,
    )
    check_config_output(args.output)
    data = open_beir(resolve_beir(args.data, data_root(args.data_dir)))
    data.judged(args.split)
    config = hybrid_config(args)
    hybrid = hybrid_retriever(args, config)
    if len(hybrid.index) == 0:
        hybrid.build(data.root / "corpus.jsonl", batch_size=args.batch_size)
    result = tune_fusion(
        hybrid,
        data,
        args.split,
        grid=grid,
        metric=args.metric,
        skip_queries=args.skip_queries,
        batch_size=args.batch_size,
    )
    assert config is not None  # a hybrid was asked for (the argument group is required)
    best = result.best
    chosen = HybridConfig(
        config.members,
        fusion=best["fusion"],
        normalize=best.get("normalize", "minmax"),
        weights=best["weights"],
        depth=best["depth"],
        rrf_k=best.get("rrf_k", 60.0),
        tuning=result.summary(),
    )
    path = chosen.write(args.output)
    print(f"{result.dataset} ({result.split}, {result.n_queries} queries), {result.metric}:")
    for name, score in result.members.items():
        print(f"  {score:.4f}  {name} alone")
    for row in result.table[:5]:
        setting = ", ".join(f"{k}={v}" for k, v in row.items() if k != result.metric)
        print(f"  {row[result.metric]:.4f}  {setting}")
    print(f"wrote {path} (best of {len(result.table)} settings)", file=sys.stderr)
    return 0
