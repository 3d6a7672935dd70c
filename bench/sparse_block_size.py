"""Block size of the embedded index's blocked kernel: ms per query for each size, one thread, same hits.

The collection is bench/sparse_search.py's synthetic one (the model's SciFact term statistics) and the
queries are SciFact test queries encoded inference-free; every size answers the same queries in
interleaved passes and must return the same documents as the first.

    python bench/sparse_block_size.py --model runs/models/sparse-full-8ep-pruned --docs 1000000
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.record import command_line
from bench.sparse_search import synthetic_impact_index

logger = logging.getLogger("bench.sparse_block_size")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="inference-free sparse model (vectors cached)")
    parser.add_argument("--data", default="scifact")
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench/sparse_quality.py --work")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--blocks", type=int, nargs="+", default=[65536, 32768, 16384, 8192, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    index, q_float = synthetic_impact_index(args.model, args.data, Path(args.work), args.docs)
    index.search(q_float[:2], 10)  # compile + finalise
    reference = None
    times: dict[int, list[float]] = {b: [] for b in args.blocks}
    for _ in range(args.repeats):
        for block in args.blocks:
            start = time.perf_counter()
            found = index.search(q_float, 10, threads=1, block=block).ids
            times[block].append(1000 * (time.perf_counter() - start) / q_float.shape[0])
            if reference is None:
                reference = found
            elif found != reference:
                raise SystemExit(f"block {block} returned other documents than block {args.blocks[0]}")
    result = {str(b): statistics.median(t) for b, t in times.items()}
    print(json.dumps({"command": command_line(), "ms_per_query": result}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
