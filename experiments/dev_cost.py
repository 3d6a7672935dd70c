"""Seconds for one in-training dev evaluation under each protocol (``data.dev_corpus``), alternating.

Each repeat builds every protocol's evaluator and scores the same model with it, protocols in turn;
the table gives the median seconds, the ratio to ``sample`` and the dev nDCG@10 each reports.

    python -m experiments.dev_cost --data nfcorpus --dev-queries 100 --repeats 2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from bench.common import command_line, save_record

logger = logging.getLogger("experiments.dev_cost")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="nfcorpus", help="BEIR folder or name under $WINNOW_DATA/beir/")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--dev-queries", type=int, default=100, help="data.dev_max_queries")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text (inference length)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import torch
    from sentence_transformers import SentenceTransformer

    from trainers.dev import DEV_CORPORA, build_dev_evaluator

    model = SentenceTransformer(args.model, device="cpu")
    seconds: dict[str, list[float]] = {c: [] for c in DEV_CORPORA}
    scores: dict[str, float] = {}
    for _ in range(args.repeats):
        for corpus in DEV_CORPORA:
            evaluator = build_dev_evaluator(
                args.data, args.split, args.dev_queries, corpus=corpus, max_length=args.max_length
            )
            start = time.perf_counter()
            scores[corpus] = float(evaluator(model)[evaluator.primary_metric])
            seconds[corpus].append(time.perf_counter() - start)
            logger.info("%s: %.1f s, nDCG@10 %.4f", corpus, seconds[corpus][-1], scores[corpus])
    print(f"# {command_line()} ({torch.get_num_threads()} threads)\n")
    print("| protocol | seconds (median) | vs sample | dev nDCG@10 |")
    print("|---|---|---|---|")
    sample = statistics.median(seconds["sample"])
    for corpus in DEV_CORPORA:
        median = statistics.median(seconds[corpus])
        print(f"| {corpus} | {median:.1f} | {median / sample:.2f}x | {scores[corpus]:.4f} |")
    if args.json:
        save_record(args.json, threads=torch.get_num_threads(), seconds=seconds, scores=scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
