"""Options that turn any retrieval subcommand into a hybrid or reranked one.

``--member SPEC`` (repeatable) or ``--hybrid CONFIG_OR_DIR`` name a hybrid; ``--fusion``,
``--normalize``, ``--weights``, ``--depth`` and ``--rrf-k`` set or override its fusion; ``--rerank MODEL``
puts a cross-encoder over any retriever's top ``--rerank-depth``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from indexes.io import META_FILE
from retrieval.base import RetrieverProtocol
from retrieval.fusion import FUSIONS, NORMALIZATIONS
from retrieval.hybrid_config import HybridConfig
from retrieval.rerank import DEFAULT_RERANK_DEPTH, Reranker

FUSION_FLAGS = {"fusion": "--fusion", "normalize": "--normalize", "weights": "--weights", "depth": "--depth"}


def add_hybrid_options(
    parser: argparse.ArgumentParser | Any, group: Any | None = None, fusion_flags: bool = True
) -> None:
    """``--member`` and ``--hybrid`` (in ``group``, a mutually exclusive group, when given), and the
    fusion settings unless ``fusion_flags`` is False."""
    where = group if group is not None else parser
    where.add_argument(
        "--member",
        action="append",
        default=None,
        metavar="SPEC",
        help="a hybrid member (repeatable): dense=MODEL, sparse=MODEL (each may add @INDEX_SPEC), bm25, "
        "or a folder saved by `winnow index`",
    )
    where.add_argument(
        "--hybrid",
        default=None,
        metavar="CONFIG_OR_DIR",
        help="a hybrid config (YAML/JSON, e.g. written by `winnow tune fusion`) or a saved hybrid folder",
    )
    if not fusion_flags:
        return
    fusion = parser.add_argument_group("fusion (with --member or --hybrid)")
    fusion.add_argument("--fusion", choices=FUSIONS, default=None, help="rrf (default) or convex")
    fusion.add_argument(
        "--normalize",
        choices=NORMALIZATIONS,
        default=None,
        help="how convex fusion rescales each member's scores per query (default minmax)",
    )
    fusion.add_argument("--weights", default=None, metavar="W1,W2,...", help="one weight per member")
    fusion.add_argument(
        "--depth", default=None, metavar="N[,N...]", help="candidates per member (default 1000)"
    )
    fusion.add_argument("--rrf-k", type=float, default=None, help="the RRF constant (default 60)")


def add_rerank_options(parser: argparse.ArgumentParser) -> None:
    rerank = parser.add_argument_group("reranking")
    rerank.add_argument(
        "--rerank",
        default=None,
        metavar="MODEL",
        help="a sentence-transformers CrossEncoder (hub id or folder, or its ONNX export) that reorders "
        "the top --rerank-depth hits",
    )
    rerank.add_argument(
        "--rerank-depth",
        type=int,
        default=DEFAULT_RERANK_DEPTH,
        help=f"hits per query the cross-encoder scores (default {DEFAULT_RERANK_DEPTH})",
    )
    rerank.add_argument(
        "--rerank-batch-size", type=int, default=32, help="pairs per cross-encoder batch (default 32)"
    )


def parse_numbers(flag: str, text: str, cast: type) -> list[Any]:
    """``"0.3,0.7"`` -> ``[0.3, 0.7]``; a ValueError naming the flag and the bad item otherwise."""
    out = []
    for item in text.split(","):
        try:
            out.append(cast(item.strip()))
        except ValueError:
            kind = "an integer" if cast is int else "a number"
            raise ValueError(f"{flag} {text!r}: {item.strip()!r} is not {kind}") from None
    return out


def fusion_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The fusion settings given on the command line (and only those)."""
    out: dict[str, Any] = {}
    if getattr(args, "fusion", None):
        out["fusion"] = args.fusion
    if getattr(args, "normalize", None):
        out["normalize"] = args.normalize
    if getattr(args, "weights", None):
        out["weights"] = parse_numbers("--weights", args.weights, float)
    if getattr(args, "depth", None):
        depths = parse_numbers("--depth", args.depth, int)
        out["depth"] = depths[0] if len(depths) == 1 else depths
    if getattr(args, "rrf_k", None) is not None:
        out["rrf_k"] = args.rrf_k
    return out


def is_hybrid_request(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "member", None) or getattr(args, "hybrid", None))


def hybrid_config(args: argparse.Namespace) -> HybridConfig | None:
    """The hybrid ``--member``, ``--hybrid FILE`` or ``--hybrid DIR`` (a saved hybrid) names, with the
    fusion flags applied; None without a hybrid. Checked before any model loads."""
    overrides = fusion_overrides(args)
    if not is_hybrid_request(args):
        if overrides:
            given = ", ".join(FUSION_FLAGS.get(k, "--rrf-k") for k in overrides)
            raise ValueError(f"{given} set a hybrid's fusion; add --member (repeatable) or --hybrid")
        return None
    if args.hybrid and (Path(args.hybrid) / META_FILE).is_file():
        config = HybridConfig.saved(args.hybrid)
    elif args.hybrid:
        config = HybridConfig.read(args.hybrid)
    else:
        return HybridConfig.from_args(args.member, **overrides)
    settings = {**config.to_dict(), **overrides}
    settings.pop("members"), settings.pop("tuning", None)
    return HybridConfig(config.members, **settings, tuning=config.tuning)


def hybrid_retriever(
    args: argparse.Namespace,
    config: HybridConfig | None,
    max_length: int | None = None,
    params: dict[str, Any] | None = None,
) -> RetrieverProtocol:
    """The hybrid ``config`` describes: saved members loaded, the others new and empty; with
    ``--index milvus``, one dense and one sparse member in one Milvus collection fused by Milvus."""
    assert config is not None, "hybrid_retriever needs the config of hybrid_config(args)"
    index = getattr(args, "index", None)
    if index and index.split(":")[0] == "milvus":
        if index != "milvus" or params:
            raise ValueError(f"--index {index}: a Milvus hybrid is exact (--index milvus); no options")
        from retrieval.milvus_hybrid import MilvusHybrid

        device = getattr(args, "device", None)
        from retrieval.cli.options import milvus_collection

        uri = getattr(args, "milvus_uri", None)
        return MilvusHybrid.from_config(config, uri, device, max_length, collection=milvus_collection(args))
    if index or params:
        raise ValueError(
            "hybrid members take their index spec as dense=MODEL@SPEC; drop --index (or use --index "
            "milvus for one dense and one sparse member in one Milvus collection)"
        )
    return config.build(device=getattr(args, "device", None), max_length=max_length)


def check_rerank_args(args: argparse.Namespace) -> None:
    if getattr(args, "rerank", None) is None:
        return
    if args.rerank_depth < 1 or args.rerank_batch_size < 1:
        raise ValueError(
            f"--rerank-depth {args.rerank_depth}, --rerank-batch-size {args.rerank_batch_size}: "
            "expected integers >= 1"
        )


def with_reranker(
    args: argparse.Namespace, retriever: RetrieverProtocol, documents: Any = None
) -> RetrieverProtocol:
    """``retriever`` under the ``--rerank`` cross-encoder (texts from ``documents``), or as it is."""
    if getattr(args, "rerank", None) is None:
        return retriever
    return Reranker(
        retriever,
        args.rerank,
        depth=args.rerank_depth,
        batch_size=args.rerank_batch_size,
        documents=documents,
        device=getattr(args, "device", None),
    )
