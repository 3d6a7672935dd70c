"""Lucene impact-index build time with one indexer input file against one file per thread.

Anserini's ``IndexCollection`` gives each input file to one thread, so a collection written as one
file is indexed by one thread whatever ``-threads`` says. ``LuceneImpactIndex.add`` writes a large
batch as one file per thread; this script builds the same documents both ways, interleaved, from
``bench.sparse_corpus``'s real-text collection, and checks that both indexes return the same top 10.

    python -m experiments.lucene_build_threads --model runs/onnx/if-pruned-int8 --docs 30000
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from bench.common import save_record
from bench.sparse_corpus import collection, query_texts
from eval.report import render_markdown
from indexes.lucene import LuceneImpactIndex
from retrieval.encoders import load_encoder

logger = logging.getLogger("experiments.lucene_build_threads")


def build_seconds(docs, ids, vocabulary, threads: int, files: int) -> tuple[float, LuceneImpactIndex]:
    """Seconds to write and index the documents as ``files`` input files (1, or one per thread)."""
    index = LuceneImpactIndex(docs.shape[1], vocabulary, impact_scale=100, query_scale=100, threads=files)
    start = time.perf_counter()
    index.add(docs, ids)  # one file per thread of the index, at least MIN_PART_ROWS documents each
    parts = len(list(index._input.glob("part-*.jsonl")))
    if parts != files:
        raise SystemExit(f"{docs.shape[0]} documents made {parts} input files, not {files}: use more --docs")
    index.threads = threads  # the indexer's -threads
    index.build()
    return time.perf_counter() - start, index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the model bench.sparse_corpus encoded with")
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", default="runs/bench/sparse-corpus", help="bench.sparse_corpus's cache")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    docs = collection(args.model, args.docs, Path(args.work))
    ids = [str(i) for i in range(args.docs)]
    encoder = load_encoder(args.model, device="cpu")
    queries, vocabulary = encoder.encode_queries(query_texts(100)).tocsr(), encoder.vocabulary
    times: dict[int, list[float]] = {1: [], args.threads: []}
    hits = {}
    for _ in range(args.repeats):
        for files, spent in times.items():
            seconds, index = build_seconds(docs, ids, vocabulary, args.threads, files)
            spent.append(seconds)
            hits[files] = index.search(queries, k=10).ids
            logger.info("%d input file(s): %.1f s", files, seconds)
    same = sum(a == b for a, b in zip(hits[1], hits[args.threads], strict=True))
    rows = [
        [
            f"{files} input file(s), {args.threads} indexing threads",
            f"{min(t):.1f}",
            f"{min(times[1]) / min(t):.2f}x",
        ]
        for files, t in times.items()
    ]
    print(render_markdown(["build", "seconds (best)", "speed-up"], rows))
    print(f"same top 10 for {same}/{len(hits[1])} queries")
    if args.json:
        save_record(args.json, docs=args.docs, threads=args.threads, seconds=times, same_top10=same)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
