"""How well does each dev protocol foresee the test split? Gains over a base model, side by side.

Each model encodes the corpus once, at ``--max-length`` tokens (the report's length), and is scored
on the dev split in several ways and on test:

- ``sample``: the trainer's default protocol (``trainers.dev.sample_corpus``: the dev queries'
  judged documents plus BM25's top 30 per query, binary relevance), ranked within that sample, for
  the first ``--dev-queries`` dev queries and for all of them;
- ``full``: the whole corpus, binary or graded relevance (graded is ``data.dev_corpus: full``, the
  report's metric), all dev queries and the first ``--dev-queries``;
- ``test``: the whole corpus, binary and graded (the report).

``trainer`` is the ``sample`` evaluator (sentence-transformers' ``InformationRetrievalEvaluator``)
scoring at ``--train-length`` tokens, the training length, instead of the inference length the
trainer uses. The table gives each model's nDCG@10 and its gain over the first model: a protocol
whose gains follow test's picks the checkpoints test would.

    python -m experiments.dev_protocols --data nfcorpus --dev-queries 100 \\
        --model sentence-transformers/all-MiniLM-L6-v2 --model runs/models/nfcorpus-full \\
        --json runs/experiments/dev_protocols.json
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING

from bench.common import command_line, save_record

if TYPE_CHECKING:
    from retrieval.corpus import BeirDataset
    from trainers.dev import SampledDevEvaluator

logger = logging.getLogger("experiments.dev_protocols")

COLUMNS = (
    ("dev sample, N, training length", "trainer"),
    ("dev sample, N", "sample_n"),
    ("dev sample, all", "sample_all"),
    ("dev full binary, all", "full_binary"),
    ("dev full graded, N", "full_graded_n"),
    ("dev full graded, all", "full_graded"),
    ("test full binary", "test_binary"),
    ("test full graded (the report)", "test_graded"),
)


def ndcg10(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], graded: bool) -> float:
    from eval.metrics import mean_scores, per_query_scores

    if not graded:
        qrels = {q: {d: int(r > 0) for d, r in docs.items()} for q, docs in qrels.items()}
    return mean_scores(per_query_scores(qrels, run, ["ndcg@10"]))["ndcg@10"]


def score_model(
    name: str,
    data: BeirDataset,
    args: argparse.Namespace,
    corpus: dict[str, str],
    *,
    samples: dict[str, set[str]],
    trainer_evaluator: SampledDevEvaluator,
) -> dict[str, float]:
    """One model's row; ``samples`` holds the ``sample`` protocol's documents (model-independent) for
    the first ``--dev-queries`` dev queries (``sample_n``) and for all of them (``sample_all``), and
    ``trainer_evaluator`` is the trainer's evaluator over ``sample_n``, built once for every model."""
    from sentence_transformers import SentenceTransformer

    from eval.metrics import drop_self_hits
    from retrieval.encoders import DenseEncoder
    from retrieval.retriever import Retriever
    from trainers.dev import dev_query_ids

    model = SentenceTransformer(name, device="cpu")
    row: dict[str, float] = {}
    start = time.perf_counter()
    model.max_seq_length = args.train_length
    row["trainer"] = float(trainer_evaluator(model)[trainer_evaluator.primary_metric])
    row["seconds_trainer"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    model.max_seq_length = args.max_length
    retriever = Retriever(DenseEncoder(model, name=name), device="cpu")
    retriever.build(data.root / "corpus.jsonl", batch_size=args.batch_size, progress=False)
    row["seconds_full_index"] = round(time.perf_counter() - start, 1)
    for split in ("dev", "test"):
        queries, qrels = data.queries(split), data.qrels(split)
        ids = dev_query_ids(data, split, None)
        hits = retriever.search([queries[q] for q in ids], k=len(corpus), batch_size=args.batch_size)
        run = drop_self_hits(hits.as_run(ids))
        judged = {q: qrels[q] for q in ids}
        if split == "test":
            row["test_graded"] = ndcg10(judged, run, graded=True)
            row["test_binary"] = ndcg10(judged, run, graded=False)
            continue
        first = dev_query_ids(data, split, args.dev_queries)
        row["full_graded"] = ndcg10(judged, run, graded=True)
        row["full_binary"] = ndcg10(judged, run, graded=False)
        row["full_graded_n"] = ndcg10({q: judged[q] for q in first}, run, graded=True)
        for key, subset in (("sample_n", first), ("sample_all", ids)):
            keep = samples[key]
            ranked = {q: {d: s for d, s in run[q].items() if d in keep} for q in subset}
            row[key] = ndcg10({q: judged[q] for q in subset}, ranked, graded=False)
    logger.info("%s: %s", name, ", ".join(f"{k} {v:.4f}" for k, v in row.items()))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="nfcorpus", help="BEIR folder or name under $WINNOW_DATA/beir/")
    parser.add_argument(
        "--model", action="append", required=True, help="model (repeat; the first is the base)"
    )
    parser.add_argument("--dev-queries", type=int, default=100, help="N, the trainer's dev_max_queries")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text (the report's)")
    parser.add_argument("--train-length", type=int, default=128, help="tokens per text in training")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from retrieval.corpus import document_text, iter_corpus, open_beir
    from retrieval.settings import resolve_beir
    from trainers.dev import dev_query_ids, sample_corpus, sampled_dev_evaluator

    data = open_beir(resolve_beir(args.data))
    corpus = {d["_id"]: document_text(d) for d in iter_corpus(data.root / "corpus.jsonl")}
    evaluator = sampled_dev_evaluator(data, "dev", args.dev_queries, batch_size=args.batch_size)
    samples = {
        "sample_n": set(evaluator.corpus_ids),
        "sample_all": sample_corpus(data, "dev", dev_query_ids(data, "dev", None), corpus),
    }
    rows: dict[str, dict[str, float]] = {}
    for name in args.model:
        rows[name] = score_model(name, data, args, corpus, samples=samples, trainer_evaluator=evaluator)
        if args.json:  # after every model, so a later failure keeps the rows already scored
            save_record(args.json, data=args.data, dev_queries=args.dev_queries, models=rows)
    base = rows[args.model[0]]
    print(f"# {command_line()}\n")
    print("| model | " + " | ".join(label.replace("N", str(args.dev_queries)) for label, _ in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name, row in rows.items():
        cells = [
            f"{row[key]:.4f}" + ("" if name == args.model[0] else f" ({row[key] - base[key]:+.4f})")
            for _, key in COLUMNS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
