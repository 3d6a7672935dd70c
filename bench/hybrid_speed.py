"""Hybrid search latency per stage: each member's search, the fusion step and the reranker, side by side.

One batch of queries goes through every stage in turn, ``--repeats`` times (the stages interleaved, so a
load change hits all alike); the table gives the median milliseconds per query of each stage and the
fusion step as a share of the members' search time (the target: under 5%).

    python -m bench.hybrid_speed --hybrid runs/scifact-hybrid --data scifact --queries 300
    python -m bench.hybrid_speed --member runs/scifact-minilm --member runs/scifact-bm25 --data scifact \
        --fusion convex --rerank runs/models/rerank --rerank-depth 100 --json runs/bench/hybrid_speed.json

Members are folders saved by ``winnow index`` (or a saved hybrid folder), so no corpus is encoded here.
"""

from __future__ import annotations

import argparse
import logging
import statistics

from bench.common import command_line, log_progress, save_record, timed
from retrieval.corpus import open_beir
from retrieval.hybrid import Hybrid
from retrieval.hybrid_config import HybridConfig, MemberSpec
from retrieval.rerank import Reranker
from retrieval.settings import data_root, resolve_beir

logger = logging.getLogger("bench.hybrid_speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--hybrid", help="a saved hybrid folder, or a hybrid config whose members are folders"
    )
    source.add_argument("--member", action="append", help="a saved member folder (repeatable)")
    parser.add_argument("--fusion", default="rrf", choices=("rrf", "convex"), help="with --member")
    parser.add_argument("--depth", type=int, default=1000, help="candidates per member (with --member)")
    parser.add_argument(
        "--data", required=True, help="BEIR folder or data set name: where the queries come from"
    )
    parser.add_argument("--data-dir", default=None, help="data root (default: as `winnow` resolves it)")
    parser.add_argument("--split", default="test", help="queries of this split (timing only; default test)")
    parser.add_argument("--queries", type=int, default=300, help="queries per batch (default 300)")
    parser.add_argument("--k", type=int, default=10, help="fused hits per query (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over every stage (default 3)")
    parser.add_argument("--rerank", default=None, help="a CrossEncoder (folder, hub id or ONNX export)")
    parser.add_argument(
        "--rerank-depth", type=int, default=100, help="pairs per query reranked (default 100)"
    )
    parser.add_argument("--json", default=None, help="also write the figures here")
    return parser.parse_args(argv)


def load_hybrid(args: argparse.Namespace) -> Hybrid:
    if args.member:
        config = HybridConfig(
            [MemberSpec.parse(m) for m in args.member], fusion=args.fusion, depth=args.depth
        )
    elif (config_path := args.hybrid) and config_path.endswith((".yaml", ".yml", ".json")):
        config = HybridConfig.read(config_path)
    else:
        config = HybridConfig.saved(args.hybrid)
    unsaved = [str(m) for m in config.members if m.folder is None]
    if unsaved:
        raise SystemExit(
            f"members {', '.join(unsaved)} are not saved folders: index them with `winnow index`"
        )
    return config.build(device="cpu")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_progress()
    data = open_beir(resolve_beir(args.data, data_root(args.data_dir)))
    queries, _ = data.judged(args.split)
    texts = list(queries.values())[: args.queries]
    hybrid = load_hybrid(args)
    reranker = (
        Reranker(hybrid, args.rerank, depth=args.rerank_depth, documents=data.root) if args.rerank else None
    )
    labels = [
        f"{m.kind} {m.name} ({m.index_spec}, depth {d})"
        for m, d in zip(hybrid.members, hybrid.depths, strict=True)
    ]
    times: dict[str, list[float]] = {label: [] for label in [*labels, "fusion", "rerank"]}
    for repeat in range(args.repeats):
        member_hits = []
        for label, member, depth in zip(labels, hybrid.members, hybrid.depths, strict=True):
            seconds, hits = timed(lambda m=member, d=depth: m.search(texts, k=d))
            times[label].append(seconds)
            member_hits.append(hits)
        seconds, fused = timed(lambda h=member_hits: hybrid.fuse(h, k=max(args.k, args.rerank_depth)))
        times["fusion"].append(seconds)
        if reranker is not None:
            seconds, _ = timed(lambda f=fused: reranker.rerank(texts, f, k=args.k))
            times["rerank"].append(seconds)
        logger.info("pass %d of %d done", repeat + 1, args.repeats)
    n = len(texts)
    per_query = {label: 1000 * statistics.median(values) / n for label, values in times.items() if values}
    members_ms = sum(per_query[label] for label in labels)
    share = per_query["fusion"] / members_ms
    print(f"# {command_line()}")
    print(f"{n} queries of {data.name}/{args.split}, {hybrid.index_spec}, median of {args.repeats} passes\n")
    print("| stage | ms per query |\n|---|---|")
    for label, ms in per_query.items():
        print(f"| {label} | {ms:.3f} |")
    print(f"| all members | {members_ms:.3f} |")
    print(f"\nfusion overhead: {100 * share:.2f}% of the members' search time (target < 5%)")
    if args.json:
        save_record(
            args.json,
            dataset=data.name,
            split=args.split,
            queries=n,
            hybrid=hybrid.describe(),
            ms_per_query=per_query,
            fusion_share_of_members=share,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
