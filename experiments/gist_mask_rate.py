"""Share of in-batch candidates the GIST rule masks under TAS-Balanced batches and under random ones.

Builds the training rows of ``CONFIG`` (mined negatives, teacher scores and guide embeddings all come
from the trainers' on-disk cache), draws each epoch's batches with the recipe's TAS-Balanced sampler
and with the random query sampler (same seed), and counts, over every (query, candidate) pair of a
batch except the query's own positive, how often the guide scores the candidate above the query's
positive (``trainers.guide.gist_mask`` with the recipe's margin). A high share in topic batches
would mean the sampler starves the contrastive term of negatives.

    python -m experiments.gist_mask_rate configs/dense-full.yaml --max-queries 650 --epochs 3
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from bench.common import save_record
from retrieval.encoders import DenseEncoder
from trainers.config import load_config
from trainers.guide import gist_mask
from trainers.preparation import Preparation
from trainers.samplers import QueryBatchSampler

logger = logging.getLogger("experiments.gist_mask_rate")


def mask_rate(sampler: QueryBatchSampler, text_ids: np.ndarray, guide: np.ndarray, epochs: int, rule) -> dict:
    """Masked share of in-batch candidates (other rows' positives, every row's negatives)."""
    masked = total = 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in sampler:
            ids = text_ids[batch]
            query = guide[ids[:, 0]]
            positive_sim = (query * guide[ids[:, 1]]).sum(1, keepdims=True)
            for column in range(1, ids.shape[1]):
                sim = query @ guide[ids[:, column]].T
                counted = ~np.eye(len(ids), dtype=bool) if column == 1 else np.ones_like(sim, dtype=bool)
                masked += int((rule(sim, positive_sim) & counted).sum())
                total += int(counted.sum())
    return {"masked": masked, "candidates": total, "share": masked / max(total, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a recipe with a guide and sampler.name: tas_balanced")
    parser.add_argument("--max-queries", type=int, default=None, help="first N training queries")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from sentence_transformers import SentenceTransformer

    overrides = {"data.dev_split": None}
    if args.max_queries:
        overrides["data.max_queries"] = args.max_queries
    config = load_config(args.config, overrides)
    if config.guide is None or config.sampler.name != "tas_balanced":
        parser.error(f"{args.config}: needs a guide section and sampler.name: tas_balanced")
    student = SentenceTransformer(config.model_name)
    preparation = Preparation(config, DenseEncoder(student, name=config.model_name))
    rows = preparation.rows()
    guide = preparation.guide_matrix(rows)
    n_columns = 3 if "negative" in rows.columns else 2
    text_ids = np.asarray(rows.columns["label"])[:, :n_columns].round().astype(np.int64)
    dataset = range(len(text_ids))
    batch, seed = config.training.batch_size, config.training.seed
    samplers = {
        "tas_balanced": preparation.batch_sampler(rows)(dataset, batch, False, seed=seed),
        "random": QueryBatchSampler(dataset, batch, False, seed=seed, row_query=rows.row_query),
    }

    def rule(sim: np.ndarray, positive_sim: np.ndarray) -> np.ndarray:
        return gist_mask(sim, positive_sim, config.guide.margin_strategy, config.guide.margin)

    results = {name: mask_rate(s, text_ids, guide, args.epochs, rule) for name, s in samplers.items()}
    for name, r in results.items():
        print(f"{name}: GIST masks {r['share']:.4f} of {r['candidates']} in-batch candidates")
    if args.json:
        save_record(args.json, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
