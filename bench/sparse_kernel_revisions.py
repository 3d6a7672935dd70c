"""The embedded index's kernels at an older git revision against the working tree's, side by side.

Both answer the same queries (SciFact test, encoded inference-free) over the same postings (the 1M-document
synthetic collection of bench/sparse_search.py, integer impacts), one and two threads, median of
``--repeats`` interleaved passes; the run stops if the hits or scores differ. The old module is read with
``git show REV:indexes/inverted_kernels.py``; revisions before the block layout (session 9) take the
postings alone, later ones the postings and their ``block_layout``.

    python bench/sparse_kernel_revisions.py --model runs/models/sparse-full-8ep-pruned-q2 --old 2e1eea1
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numba
import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.sparse_search import synthetic_impact_index
from indexes import inverted_kernels

ROOT = Path(__file__).resolve().parents[1]


def module_at(revision: str, work: Path) -> ModuleType:
    """``indexes/inverted_kernels.py`` as it was at ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:indexes/inverted_kernels.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = work / f"kernels_{revision}.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runner(
    module: ModuleType, postings: tuple[np.ndarray, ...], queries: sparse.csr_matrix, n_docs: int
) -> Any:
    """A call ``threads -> (docs, scores, counts)`` of ``module``'s kernel on these postings and queries."""
    indptr, docs, weights = postings
    q = (queries.indptr.astype(np.int64), queries.indices.astype(np.int64), queries.data.astype(np.float32))
    arrays: tuple[np.ndarray, ...] = (indptr, docs, weights)
    if "bptr" in inspect.signature(module.search_postings.py_func).parameters:
        arrays += module.block_layout(indptr, docs, n_docs, module.BLOCK)
    return lambda threads: module.search_postings(*arrays, *q, n_docs, 10, threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="inference-free sparse model (vectors cached)")
    parser.add_argument("--old", required=True, help="git revision whose kernels to compare")
    parser.add_argument("--data", default="scifact")
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench/sparse_quality.py --work")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    index, q_float = synthetic_impact_index(args.model, args.data, Path(args.work), args.docs)
    queries = index.quantize_queries(q_float)
    postings = index._finalize()
    with tempfile.TemporaryDirectory() as work:
        runs = {
            args.old: runner(module_at(args.old, Path(work)), postings, queries, args.docs),
            "working tree": runner(inverted_kernels, postings, queries, args.docs),
        }
        result: dict[str, Any] = {"command": " ".join(sys.argv), "queries": queries.shape[0]}
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            answers = {name: run(threads) for name, run in runs.items()}  # compiles, and the check
            first, second = answers.values()
            if not (np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])):
                raise SystemExit(f"{args.old} and the working tree return different hits ({threads} threads)")
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run(threads)
                    times[name].append(1000 * (time.perf_counter() - start) / queries.shape[0])
            ms = {name: statistics.median(t) for name, t in times.items()}
            result[f"{threads} thread(s)"] = {
                "ms_per_query": ms,
                "speed-up": ms[args.old] / ms["working tree"],
            }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
