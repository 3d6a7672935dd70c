"""Block size of the embedded index's blocked kernels: ms per query for each size and strategy (blocked,
block-max MaxScore), one thread, same hits.

The collection is ``bench.sparse_search``'s synthetic one (the model's SciFact term statistics) and the
queries are SciFact test queries encoded inference-free; every size answers the same queries in
interleaved passes and must return the same documents as the first.

    python -m experiments.sparse_block_size --model runs/models/sparse-full-pruned --docs 1000000
    python -m experiments.sparse_block_size --model M --strategies blocked maxscore --blocks 65536 8192 2048
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.common import command_line, log_progress, save_record, timed
from bench.sparse_quality import vectors_outdated, vectors_path
from bench.sparse_search import synthetic
from eval.report import render_markdown
from indexes.inverted import InvertedIndex
from retrieval.corpus import open_beir
from retrieval.encoders import load_encoder
from retrieval.settings import resolve_beir

logger = logging.getLogger("experiments.sparse_block_size")


def synthetic_impact_index(
    model: str, data_name: str, work: Path, n_docs: int
) -> tuple[InvertedIndex, np.ndarray | sparse.csr_matrix]:
    """A synthetic collection in an impact (x100) index, and the data set's test queries.

    Args:
        model: an inference-free sparse model whose document vectors ``bench.sparse_quality`` cached.
        data_name: the data set those vectors encode (its term statistics shape the collection).
        work: ``bench.sparse_quality``'s ``--work`` folder.
        n_docs: documents to draw (:func:`bench.sparse_search.synthetic`).

    Returns:
        the ``InvertedIndex`` and the test queries encoded by ``model`` (float weights).
    """
    cached = vectors_path(work, model, data_name)
    if not (cached / "docs.npz").is_file() or vectors_outdated(cached, model):
        raise SystemExit(
            f"{cached}/docs.npz is missing or older than {model}: "
            f"run python -m bench.sparse_quality --model {model} --datasets {data_name} first"
        )
    data = open_beir(resolve_beir(data_name))
    queries = data.queries("test")
    q_float = load_encoder(model, device="cpu").encode_queries(
        [queries[q] for q in sorted(data.qrels("test"))]
    )
    big = synthetic(sparse.load_npz(cached / "docs.npz").tocsr(), n_docs, seed=0)
    index = InvertedIndex(big.shape[1], impact_scale=100, query_scale=100)
    index.add(big, [str(i) for i in range(n_docs)])
    return index, q_float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="inference-free sparse model (vectors cached)")
    parser.add_argument("--data", default="scifact")
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench.sparse_quality's --work")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--blocks", type=int, nargs="+", default=[65536, 32768, 16384, 8192, 4096])
    parser.add_argument("--strategies", nargs="+", default=["blocked"], choices=["blocked", "maxscore"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    log_progress()
    index, q_float = synthetic_impact_index(args.model, args.data, Path(args.work), args.docs)
    index.search(q_float[:2], 10)  # compile + finalise
    reference = None
    runs = [(b, s) for b in args.blocks for s in args.strategies]
    times: dict[tuple[int, str], list[float]] = {run: [] for run in runs}
    for _ in range(args.repeats):
        for block, strategy in runs:
            seconds, hits = timed(
                lambda block=block, strategy=strategy: index.search(
                    q_float, 10, threads=1, strategy=strategy, block=block
                )
            )
            times[block, strategy].append(1000 * seconds / q_float.shape[0])
            if reference is None:
                reference = hits.ids
            elif hits.ids != reference:
                raise SystemExit(f"block {block}, {strategy}: other documents than {runs[0]}")
    ms = {run: statistics.median(t) for run, t in times.items()}
    print(f"# {command_line()}")
    print(f"# {args.docs} synthetic documents, {q_float.shape[0]} queries, median of {args.repeats} passes")
    print(
        render_markdown(
            ["block", "strategy", "ms/query (1 thread)"],
            [[str(b), s, f"{m:.3f}"] for (b, s), m in ms.items()],
        ),
        end="",
    )
    if args.json:
        save_record(args.json, ms_per_query={f"{b} {s}": m for (b, s), m in ms.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
