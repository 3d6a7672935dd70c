"""Student margins against the ensemble's Margin-MSE targets on a recipe's training rows.

Margin-MSE asks the student for ``margin_scale * (cos(q, p) - cos(q, n)) = t(p) - t(n)``, with the
teachers' scores min-max normalised per query, so the targets imply a cosine margin of
``(t(p) - t(n)) / margin_scale``. This script builds the training rows of ``CONFIG`` (mined
negatives and teacher scores come from the trainers' cache) and reports, for each ``--model``, the
cosine margins it gives those rows beside the margins the targets imply: whether distillation asks
for smaller margins than training on the labels alone reaches, and how closely each model orders
the pairs as the teachers do.

    python -m experiments.distill_margins configs/dense-full.yaml --max-queries 650 \
        --model sentence-transformers/all-MiniLM-L6-v2 --model runs/ablation/models/scifact-mnrl
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from bench.common import save_record
from eval.report import render_markdown
from retrieval.encoders import DenseEncoder, load_encoder
from trainers.config import load_config
from trainers.preparation import Preparation

logger = logging.getLogger("experiments.distill_margins")


def summary(values: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {"mean": float(values.mean()), "p10": float(p10), "p50": float(p50), "p90": float(p90)}


def row_margins(model: str, anchors: list[str], positives: list[str], negatives: list[str]) -> np.ndarray:
    """``cos(q, p) - cos(q, n)`` for every row under ``model`` (each distinct text encoded once)."""
    encoder = load_encoder(model)
    if encoder.similarity != "cosine":
        raise SystemExit(f"{model}: the targets are cosine margins; {model} uses {encoder.similarity!r}")
    queries = list(dict.fromkeys(anchors))
    documents = list(dict.fromkeys(positives + negatives))
    q = dict(zip(queries, encoder.encode_queries(queries), strict=True))
    d = dict(zip(documents, encoder.encode_documents(documents), strict=True))
    return np.array(
        [q[a] @ d[p] - q[a] @ d[n] for a, p, n in zip(anchors, positives, negatives, strict=True)]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a dense recipe with teachers and mined negatives")
    parser.add_argument("--max-queries", type=int, default=None, help="first N training queries")
    parser.add_argument("--model", action="append", required=True, help="a dense model (repeatable)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from sentence_transformers import SentenceTransformer

    overrides: dict[str, object] = {"data.dev_split": None}
    if args.max_queries:
        overrides["data.max_queries"] = args.max_queries
    config = load_config(args.config, overrides)
    if not config.teachers or config.loss.distill != "margin_mse":
        parser.error(f"{args.config}: needs teachers and loss.distill: margin_mse")
    student = SentenceTransformer(config.model_name)
    preparation = Preparation(config, DenseEncoder(student, name=config.model_name))
    rows = preparation.rows()
    labels = np.asarray(rows.columns["label"])
    target = (labels[:, 3] - labels[:, 4]) / config.loss.margin_scale
    anchors, positives = rows.columns["anchor"], rows.columns["positive"]
    negatives = rows.columns["negative"]
    results: dict[str, dict] = {"targets": summary(target)}
    for model in args.model:
        margins = row_margins(model, anchors, positives, negatives)
        results[model] = summary(margins) | {"pearson": float(np.corrcoef(margins, target)[0, 1])}
    table = [
        [
            "Margin-MSE targets" if name == "targets" else name,
            *(f"{stats[k]:.3f}" for k in ("mean", "p10", "p50", "p90")),
            f"{stats['pearson']:.3f}" if "pearson" in stats else "",
        ]
        for name, stats in results.items()
    ]
    print(f"{len(target)} rows; margin_scale {config.loss.margin_scale}")
    header = ["margins (cosine)", "mean", "p10", "median", "p90", "Pearson with the targets"]
    print(render_markdown(header, table), end="")
    if args.json:
        save_record(args.json, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
