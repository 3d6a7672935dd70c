"""Pooling ablation in one command: train a recipe with each pooling and several seeds, index and score
every model, and print the per-query paired comparison against mean pooling (``winnow eval compare``).

Every step is skipped when its output exists, so an interrupted run resumes where it stopped.

Example (the full recipe on SciFact, 3 seeds; test only reports)::

    python -m experiments.pooling_ablation --config configs/dense-full.yaml --data scifact \\
        --seeds 1 2 3 --out runs/pooling

Selection on held-out training queries (train on the first N, score the rest)::

    python -m experiments.pooling_ablation --config configs/demo.yaml --data scifact --seeds 1 \\
        --split train --skip-queries 200 --out runs/pooling-demo
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from retrieval.cli import main as winnow

logger = logging.getLogger(__name__)

POOLINGS = {
    "mean": [],  # the base model's own pooling (all-MiniLM-L6-v2: mean)
    "latent_attention": ["model.pooling.type=latent_attention", "model.pooling_learning_rate=1.0e-3"],
    "multi_layer": ["model.pooling.type=multi_layer", "model.pooling_learning_rate=1.0e-3"],
}


def run(argv: list[str]) -> None:
    logger.info("winnow %s", " ".join(argv))
    if winnow(argv) != 0:
        raise SystemExit(f"failed: winnow {' '.join(argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/dense-full.yaml", help="the recipe (mean pooling base)")
    parser.add_argument("--data", default="scifact", help="data set trained on (data.dataset) and scored")
    parser.add_argument("--pooling", nargs="+", default=list(POOLINGS), choices=list(POOLINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--split", nargs="+", default=["test"], help="qrels splits scored")
    parser.add_argument(
        "--skip-queries",
        type=int,
        default=0,
        help="on the train split, score only the queries after the first N",
    )
    parser.add_argument("--max-length", type=int, default=None, help="document tokens when indexing")
    parser.add_argument("--set", action="append", default=[], help="more recipe overrides KEY=VALUE")
    parser.add_argument("--data-dir", default=None, help="data root (see winnow train --help)")
    parser.add_argument("--out", default="runs/pooling", help="folder for models, indexes and results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    results: dict[tuple[str, str], list[str]] = {}
    for pooling in args.pooling:
        for seed in args.seeds:
            name = f"{pooling}-seed{seed}"
            model, index = out / "models" / name, out / "index" / name
            overrides = [*POOLINGS[pooling], f"training.seed={seed}", f"data.dataset={args.data}", *args.set]
            if not (model / "meta.json").is_file():
                sets = [x for o in overrides for x in ("--set", o)]
                run(["train", args.config, "--output", str(model), *sets, *data_dir])
            if not (index / "meta.json").is_file():
                length = ["--max-length", str(args.max_length)] if args.max_length else []
                run(
                    [
                        "index",
                        "--model",
                        str(model),
                        "--corpus",
                        args.data,
                        "--output",
                        str(index),
                        *length,
                        *data_dir,
                    ]
                )
            for split in args.split:
                result = out / "results" / f"{name}-{split}.json"
                if not result.is_file():
                    held_out = args.skip_queries and split == "train"  # the training split's unseen queries
                    skip = ["--skip-queries", str(args.skip_queries)] if held_out else []
                    run(["eval", "beir", "--index-dir", str(index), "--data", args.data, "--split", split,
                         *skip, "--output", str(result), *data_dir])  # fmt: skip
                results.setdefault((pooling, split), []).append(str(result))
    for split in args.split:
        baseline = ",".join(results[(args.pooling[0], split)])
        others = [",".join(results[(p, split)]) for p in args.pooling[1:]]
        if others:
            logger.info("%s split, %s as the baseline (seeds averaged per query):", split, args.pooling[0])
            run(["eval", "compare", baseline, *others, "--output", str(out / f"compare-{split}.json")])


if __name__ == "__main__":
    main()
