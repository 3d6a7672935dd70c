"""``train_cross(config)``: fine-tune a sentence-transformers ``CrossEncoder`` reranker as a recipe describes.

The recipe is a dense one with ``kind: cross`` (``configs/rerank.yaml``): the same training pairs,
mined negatives, guide filter, teacher ensemble and batch sampler
(:class:`~trainers.preparation.Preparation`), so a reranker learns from the negatives its first stage
retrieves. Any BERT-style model is the base: a sentence-transformers bi-encoder or a plain encoder
gets a fresh one-logit head.

Objectives (``loss``):

- ``name: bce`` (pointwise): sentence-transformers' ``BinaryCrossEntropyLoss`` over (query, document)
  pairs, 1 for a positive and 0 for a mined negative, every pair once per epoch in shuffled batches
  (``sampler: random``); the classic MS MARCO reranker recipe.
- ``name: mnrl`` (listwise): the cross-encoder ``MultipleNegativesRankingLoss`` over (query, positive,
  mined negative) rows plus four other documents of the batch per query (its defaults).
- ``distill: margin_mse`` with ``contrastive_weight: 0``: ``MarginMSELoss`` fits the score margin
  between each positive and negative to the teacher ensemble's normalised margin times
  ``loss.margin_scale`` (logits, not cosines: margins of several units).

Dev scoring (``data.dev_split``) reranks each dev query's top BM25 candidates with sentence-transformers'
``CrossEncoderRerankingEvaluator``; its nDCG@10 picks the best checkpoint. The saved folder is a
``CrossEncoder`` directory: ``winnow search --rerank DIR``, a ``kind: cross`` teacher, or
``winnow export onnx DIR``.

Example:
    >>> from trainers.config import load_config
    >>> train_cross(load_config("configs/rerank.yaml"), "runs/models/rerank")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from retrieval.corpus import document_text, iter_corpus, open_beir
from retrieval.settings import resolve_beir
from trainers.config import TrainConfig
from trainers.dev import RERANK_NAME, bm25_candidates, dev_query_ids
from trainers.loop import prepare, run_training
from trainers.preparation import Preparation
from trainers.rows import TrainingRows

logger = logging.getLogger(__name__)


def cross_rows(config: TrainConfig, rows: TrainingRows) -> TrainingRows:
    """The bi-encoder rows recast as the columns the recipe's cross-encoder loss reads.

    ``bce`` gives one (query, document, label) row per distinct pair (each keeps the query index and
    teacher margin of the row it came from); ``mnrl`` keeps (anchor, positive, negative); Margin-MSE
    adds the scaled teacher margin as the label.
    """
    columns = rows.columns
    if "negative" not in columns:
        raise ValueError("cross-encoder training needs mined negatives; none were found (mining.enabled)")
    if config.loss.distill == "margin_mse":
        scale = float(config.loss.margin_scale)
        labels = [scale * (label[3] - label[4]) for label in columns["label"]]
        new = {k: columns[k] for k in ("anchor", "positive", "negative")} | {"label": labels}
        return TrainingRows(new, rows.row_query, rows.row_margin, rows.query_ids, rows.table)
    if config.loss.name == "mnrl":
        new = {k: columns[k] for k in ("anchor", "positive", "negative")}
        return TrainingRows(new, rows.row_query, rows.row_margin, rows.query_ids, rows.table)
    pairs: dict[str, list] = {"query": [], "document": [], "label": []}
    row_query: list[int] = []
    row_margin: list[float] = []
    seen: set[tuple[str, str]] = set()
    for i, (query, positive, negative) in enumerate(
        zip(columns["anchor"], columns["positive"], columns["negative"], strict=True)
    ):
        for document, label in ((positive, 1.0), (negative, 0.0)):
            if (query, document) in seen:
                continue
            seen.add((query, document))
            pairs["query"].append(query)
            pairs["document"].append(document)
            pairs["label"].append(label)
            row_query.append(rows.row_query[i])
            row_margin.append(rows.row_margin[i])
    return TrainingRows(pairs, row_query, row_margin, rows.query_ids, rows.table)


def build_cross_loss(config: TrainConfig, model: Any) -> Any:
    """The sentence-transformers cross-encoder loss the recipe names (see the module docstring)."""
    from sentence_transformers.cross_encoder import losses

    if config.loss.distill == "margin_mse":
        return losses.MarginMSELoss(model)
    if config.loss.name == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    return losses.BinaryCrossEntropyLoss(model)


def batch_sampler(config: TrainConfig, preparation: Preparation, rows: TrainingRows) -> Any:
    """Shuffled batches of every pair for ``bce``; the recipe's query-level sampler (one row per query
    per epoch, or TAS-Balanced) for the row-wise objectives."""
    if config.loss.name == "bce" and config.loss.distill is None:
        from sentence_transformers.base.sampler import BatchSamplers

        return BatchSamplers.BATCH_SAMPLER
    return preparation.batch_sampler(rows)


def rerank_dev_evaluator(
    dataset: str, split: str, max_queries: int | None, *, per_query: int = 30, batch_size: int = 32
) -> Any:
    """sentence-transformers' ``CrossEncoderRerankingEvaluator`` over each dev query's top
    ``per_query`` BM25 candidates (its judged positives always among them); nDCG@10 is logged as
    ``eval_dev_rerank_ndcg@10``."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    data = open_beir(resolve_beir(dataset))
    qrels, queries = data.qrels(split), data.queries(split)
    query_ids = dev_query_ids(data, split, max_queries)
    corpus = {d["_id"]: document_text(d) for d in iter_corpus(data.root / "corpus.jsonl")}
    ranked = bm25_candidates(data, split, query_ids, corpus, per_query)
    samples = [
        {
            "query": queries[q],
            "positive": [corpus[d] for d, r in qrels[q].items() if r > 0 and d in corpus],
            "documents": [corpus[d] for d in docs],
        }
        for q, docs in zip(query_ids, ranked, strict=True)
    ]
    logger.info("dev: reranking BM25's top %d for %d %s queries", per_query, len(samples), split)
    return CrossEncoderRerankingEvaluator(
        samples,
        at_k=10,
        always_rerank_positives=True,
        name=RERANK_NAME,
        batch_size=batch_size,
        show_progress_bar=False,
    )


def train_cross(config: TrainConfig, output: str | Path, resume: bool = False) -> Path:
    """Train the ``CrossEncoder`` the recipe ``config`` describes and write it to ``output``, with
    ``meta.json`` (``model_type: cross``), ``training_log.jsonl`` and ``training_curve.png``.

    Checkpoints go to ``OUTPUT.checkpoints/``; with ``resume`` the latest one is continued.

    Example:
        >>> train_cross(load_config("configs/rerank.yaml"), "runs/models/rerank")  # doctest: +SKIP
    """
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from transformers import set_seed

    set_seed(config.training.seed)
    model = CrossEncoder(config.model_name, num_labels=1)
    inference_length = model.max_seq_length
    preparation, rows = prepare(config, model, None)
    rows = cross_rows(config, rows)
    evaluator = None
    if config.data.dev_split:
        evaluator = rerank_dev_evaluator(
            config.data.dataset,
            config.data.dev_split,
            config.data.dev_max_queries,
            batch_size=config.training.batch_size,
        )
    return run_training(
        config,
        output,
        model=model,
        loss=build_cross_loss(config, model),
        rows=rows,
        batch_sampler=batch_sampler(config, preparation, rows),
        trainer_class=CrossEncoderTrainer,
        arguments_class=CrossEncoderTrainingArguments,
        load=CrossEncoder,
        model_type="cross",
        inference_length=inference_length,
        evaluator=evaluator,
        resume=resume,
    )
