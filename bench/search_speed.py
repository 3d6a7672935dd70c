"""Overhead of Winnow's FaissIndex over calling faiss directly, on the same vectors and index.

Both sides search the very same faiss index object (the wrapper's), so the difference is exactly
what the wrapper adds: input checks, float32 conversion and mapping labels to string ids. Runs are
interleaved (raw, wrapper, raw, wrapper ...) and the median of each is reported.

    python -m bench.search_speed                 # 100k x 384, 1,000 queries, Flat and HNSW32
    python -m bench.search_speed --n 20000 --json runs/bench/search_speed.json
    python -m bench.search_speed --device gpu    # Flat on every visible GPU (needs faiss-gpu)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import faiss
import numpy as np

from bench.common import command_line, save_record, timed
from indexes.faiss_index import FaissIndex, gpu_count

logger = logging.getLogger("bench.search_speed")


def clustered(n: int, dim: int, seed: int, n_clusters: int = 256) -> np.ndarray:
    """``n`` unit vectors around ``n_clusters`` random centres (closer to real embeddings than noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def bench_factory(
    factory: str, params: dict, x: np.ndarray, q: np.ndarray, k: int, repeats: int, device: str = "cpu"
) -> dict:
    """One table row: build ``factory`` over ``x`` on ``device``, then time raw faiss and the wrapper."""
    ids = [f"doc-{i}" for i in range(len(x))]
    start = time.perf_counter()
    wrapper = FaissIndex(x.shape[1], factory, metric="ip", device=device, search_params=params)
    wrapper.add(x, ids)
    build_s = time.perf_counter() - start
    raw = wrapper._index  # the same faiss index, searched without the wrapper
    raw_times, wrap_times = [], []
    for i in range(repeats):  # interleaved, order alternating, so load changes hit both sides alike
        if i % 2:
            wrap_times.append(timed(lambda: wrapper.search(q, k))[0])
            raw_times.append(timed(lambda: raw.search(q, k))[0])
        else:
            raw_times.append(timed(lambda: raw.search(q, k))[0])
            wrap_times.append(timed(lambda: wrapper.search(q, k))[0])
    # The wrapper must return what faiss returns.
    _, labels = raw.search(q, k)
    assert wrapper.search(q, k).ids == [[ids[j] for j in row] for row in labels.tolist()]
    raw_s, wrap_s = statistics.median(raw_times), statistics.median(wrap_times)
    best_raw, best_wrap = min(raw_times), min(wrap_times)
    return {
        "factory": factory,
        "params": params,
        "build_seconds": round(build_s, 2),
        "faiss_qps": round(len(q) / raw_s, 1),
        "winnow_qps": round(len(q) / wrap_s, 1),
        "overhead": round(wrap_s / raw_s - 1, 4),
        "overhead_best": round(best_wrap / best_raw - 1, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="database vectors (default 100k)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="where faiss searches (gpu: every visible GPU, Flat only, as faiss has no GPU HNSW)",
    )
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    x, q = clustered(args.n, args.dim, seed=0), clustered(args.queries, args.dim, seed=1)
    factories = [("Flat", {})] if args.device == "gpu" else [("Flat", {}), ("HNSW32", {"efSearch": 64})]
    rows = [
        bench_factory(factory, params, x, q, args.k, args.repeats, args.device)
        for factory, params in factories
    ]
    command = command_line()
    where = f"{gpu_count()} GPU(s)" if args.device == "gpu" else f"{faiss.omp_get_max_threads()} threads"
    print(f"# {command}")
    print(
        f"# {args.n} x {args.dim} clustered vectors, {args.queries} queries, top {args.k}, "
        f"{where}, {args.repeats} interleaved runs in alternating order"
    )
    print("| index | faiss QPS | winnow QPS | overhead (median) | overhead (best run) | build s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['factory']} {r['params'] or ''} | {r['faiss_qps']:.0f} | {r['winnow_qps']:.0f} | "
            f"{100 * r['overhead']:+.1f}% | {100 * r['overhead_best']:+.1f}% | {r['build_seconds']:.1f} |"
        )
    if args.json:
        save_record(args.json, device=where, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
