"""How well each teacher, and weighted ensembles of them, rank a training query's positives above its
mined negatives: the evidence for choosing teacher weights on *training* data, never on test.

For every training query the candidates are its positives plus negatives mined as ``CONFIG`` mines
them (by default with the guide filter switched off, since a filtered set is by construction ranked
well by the guide and would favour the dense teacher). Each teacher's raw scores come from the same
on-disk cache the trainers use, are min-max normalised per query and combined with each weight vector
of a grid. Reported per teacher / ensemble: pairwise accuracy (a positive scored above a negative,
ties count half) and MRR of the first positive among the candidates.

    python -m experiments.teacher_quality configs/dense-full.yaml --datasets scifact nfcorpus \\
        --json runs/experiments/teacher_quality.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.common import save_record
from retrieval.encoders import DenseEncoder
from trainers.config import load_config
from trainers.preparation import Preparation
from trainers.rows import candidate_lists
from trainers.teacher_quality import first_positive_mrr, pairwise_accuracy, weight_grid
from trainers.teachers import combine

logger = logging.getLogger("experiments.teacher_quality")


def quality(scores: list, n_pos: list[int]) -> dict[str, float]:
    return {"pairwise": pairwise_accuracy(scores, n_pos), "mrr": first_positive_mrr(scores, n_pos)}


def measure(config_path: str, dataset: str, guide_filter: bool, step: float) -> dict:
    from sentence_transformers import SentenceTransformer

    config = load_config(
        config_path, {"data.dataset": dataset, "data.dev_split": None, "mining.guide_filter": guide_filter}
    )
    if not config.teachers:
        raise ValueError(f"{config_path}: no teachers configured")
    student = SentenceTransformer(config.model_name)
    preparation = Preparation(config, DenseEncoder(student, name=config.model_name))
    data = preparation.data
    negatives = preparation.negatives()
    ensemble = preparation.teachers()
    assert ensemble is not None
    qids = [q for q in data.query_ids if negatives.get(q)]
    candidates = candidate_lists(data, negatives, qids)
    n_pos = [len(data.positives[q]) for q in qids]
    queries = [data.queries[q] for q in qids]
    texts = [[data.corpus[d] for d in docs] for docs in candidates]
    normalised = ensemble.member_scores(queries, texts)
    names = [t.name for t in ensemble.teachers]
    result: dict = {"dataset": dataset, "queries": len(qids), "guide_filter": guide_filter, "teachers": {}}
    for name, scores in zip(names, normalised, strict=True):
        result["teachers"][name] = quality(scores, n_pos)
    ensembles = []
    for weights in weight_grid(len(names), step):
        combined = combine(normalised, weights)
        ensembles.append({"weights": [float(w) for w in weights], **quality(combined, n_pos)})
    result["ensembles"] = sorted(ensembles, key=lambda e: -e["pairwise"])
    result["teacher_names"] = names
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a training config with teachers, e.g. configs/dense-full.yaml")
    parser.add_argument("--datasets", nargs="+", default=["scifact"])
    parser.add_argument("--guide-filter", action="store_true", help="score the guide-filtered candidates")
    parser.add_argument("--step", type=float, default=0.125, help="weight grid step")
    parser.add_argument("--top", type=int, default=8, help="ensembles printed per data set")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = {ds: measure(args.config, ds, args.guide_filter, args.step) for ds in args.datasets}
    for ds, r in results.items():
        print(f"\n{ds} train: {r['queries']} queries, guide filter {r['guide_filter']}")
        print("| teacher | pairwise acc | MRR |\n|---|---|---|")
        for name, m in r["teachers"].items():
            print(f"| {name} | {m['pairwise']:.4f} | {m['mrr']:.4f} |")
        print(f"\n| weights ({', '.join(r['teacher_names'])}) | pairwise acc | MRR |\n|---|---|---|")
        for e in r["ensembles"][: args.top]:
            print(f"| {e['weights']} | {e['pairwise']:.4f} | {e['mrr']:.4f} |")
    if args.json:
        save_record(args.json, results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
