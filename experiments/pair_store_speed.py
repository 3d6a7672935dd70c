"""Cost of saving teacher pair scores chunk by chunk: append-only parts versus one rewritten file.

``trainers.pair_scores.PairScoreStore`` saves each chunk of newly scored pairs as its own part and
merges it into the sorted in-memory keys in linear time. The alternative, re-sorting every stored
key and rewriting one file after each chunk, grows quadratically with the store. Both run here side
by side on the same random keys, in one process:

    python -m experiments.pair_store_speed --pairs 4000000 --chunk 50000
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import command_line, save_record
from eval.report import render_markdown
from indexes.io import write_file_atomic
from trainers.pair_scores import PairScoreStore

logger = logging.getLogger("experiments.pair_store_speed")


def rewrite_whole_file(directory: Path, keys: np.ndarray, values: np.ndarray, chunk: int) -> None:
    """The single-file store: merge by re-sorting everything, rewrite the file after every chunk."""
    stored_keys, stored_values = np.zeros(0, np.uint64), np.zeros(0, np.float32)
    path = directory / "pairs.npz"
    for start in range(0, len(keys), chunk):
        merged_keys = np.concatenate([stored_keys, keys[start : start + chunk]])
        merged_values = np.concatenate([stored_values, values[start : start + chunk]])
        stored_keys, first = np.unique(merged_keys, return_index=True)
        stored_values = merged_values[first]
        write_file_atomic(path, lambda tmp, k=stored_keys, v=stored_values: np.savez(tmp, keys=k, scores=v))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="pairs per saved chunk (the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    keys = rng.integers(0, 2**63, args.pairs, dtype=np.uint64)
    values = rng.random(args.pairs, dtype=np.float32)

    with tempfile.TemporaryDirectory() as directory:
        store = PairScoreStore(directory, "bench")
        start = time.perf_counter()
        for lo in range(0, args.pairs, args.chunk):
            store.add(keys[lo : lo + args.chunk], values[lo : lo + args.chunk])
        parts = time.perf_counter() - start
        start = time.perf_counter()
        reopened = PairScoreStore(directory, "bench")
        reopen = time.perf_counter() - start
        expected = len(np.unique(keys))
        if len(reopened.keys) != expected:
            raise SystemExit(f"reopened store holds {len(reopened.keys)} keys, expected {expected}")
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        rewrite_whole_file(Path(directory), keys, values, args.chunk)
        rewrite = time.perf_counter() - start

    chunks = -(-args.pairs // args.chunk)
    table = [
        ["append-only parts (PairScoreStore)", f"{parts:.2f}", "1.00x"],
        ["one file re-sorted and rewritten per chunk", f"{rewrite:.2f}", f"{rewrite / parts:.2f}x"],
        ["reopen the parts store", f"{reopen:.2f}", ""],
    ]
    print(f"# {command_line()}")
    print(render_markdown([f"{args.pairs} pairs in {chunks} chunks", "seconds", "ratio"], table), end="")
    if args.json:
        save_record(
            args.json,
            pairs=args.pairs,
            chunk=args.chunk,
            seconds={"parts": parts, "rewrite": rewrite, "reopen": reopen},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
