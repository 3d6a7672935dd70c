"""``train_sparse(config)``: train an inference-free learned sparse retriever on ``SparseEncoderTrainer``.

The student is built by :mod:`trainers.sparse_model` (IDF query table + SPLADE MLM documents). The
training inputs are the dense trainer's :class:`~trainers.preparation.Preparation` (pairs,
guide-filtered mined negatives, guide embeddings, teacher ensemble, TAS-Balanced sampler), all
cached, and the training loop is the dense trainer's (:func:`trainers.loop.run_training`). The loss
is sentence-transformers' ``SpladeLoss`` around Winnow's terms:

- base: guided in-batch contrastive (GIST mask, dot-product scores) + ensemble distillation
  (Margin-MSE or KL on dot products), sharing one forward pass (:class:`~trainers.losses.CombinedLoss`);
- document regulariser: :class:`~trainers.losses.flops.FlopsRegularizer` (IDF-aware FLOPS by default)
  whose weight warms up quadratically over ``sparse.warmup_steps``.

Queries never run a transformer: the router sends the ``anchor`` column to the IDF table and every
other column to the MLM.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.corpus import corpus_texts
from retrieval.lexical_prior import add_lexical_prior, average_length
from retrieval.sparse_encoder import SparseModelEncoder
from trainers.config import TrainConfig
from trainers.dev import BeirDevEvaluator
from trainers.loop import prepare, run_training
from trainers.losses import CachedGuideGISTLoss, CombinedLoss
from trainers.losses.distillation import distillation_loss
from trainers.losses.flops import FlopsRegularizer
from trainers.preparation import Preparation
from trainers.rows import TrainingRows, labelled_pairs
from trainers.sparse_model import clamp_query_weights, idf_for, inference_free_model, prune

logger = logging.getLogger(__name__)

QUERY_COLUMN = "anchor"


def idf_corpora(config: TrainConfig) -> list[str]:
    """The data sets whose corpora define the IDF table."""
    return config.sparse.idf_corpora or [config.data.dataset, *config.data.extra_datasets]


def student_name(config: TrainConfig) -> str:
    """The untrained student's name, saying what it computes (base model, IDF corpora, document tokens):
    the mined-negative cache key records it."""
    idf = ",".join(idf_corpora(config))
    prior = "" if config.sparse.lexical_prior is None else f"|lexical-prior:{config.sparse.lexical_prior}"
    return f"{config.model_name}|inference-free|idf:{idf}|tokens:{config.sparse.max_length}{prior}"


def build_student(config: TrainConfig) -> Any:
    """The untrained inference-free student (IDF over :func:`idf_corpora`), with BM25's term weights
    added to its documents when ``sparse.lexical_prior`` is set (average length over the same corpora,
    at the saved model's ``sparse.max_length`` tokens)."""
    idf = idf_for(config.model_name, corpus_texts(idf_corpora(config)))
    model = inference_free_model(
        config.model_name, idf, trainable_idf=config.sparse.trainable_idf, max_length=config.sparse.max_length
    )
    if config.sparse.lexical_prior is not None:
        avgdl = average_length(corpus_texts(idf_corpora(config)), model.tokenizer, config.sparse.max_length)
        weight = config.sparse.lexical_prior
        logger.info("lexical prior: weight %g, average document length %.1f", weight, avgdl)
        add_lexical_prior(model, avgdl, weight=weight)
    return model


def auto_margin_scale(model: Any, rows: TrainingRows, sample: int = 256, seed: int = 0) -> float:
    """``std(teacher margins) / std(student margins)`` over a sample of training rows, student untrained.

    Margin-MSE compares the student's score margins with the ensemble's normalised margins (in
    [-1, 1]); a sparse student's dot products spread ~50x wider, and squeezing them into the teacher's
    range collapses the document vectors. This picks the scale from the training data itself.
    """
    if "negative" not in rows.columns:
        raise ValueError("margin_scale auto needs mined negatives in the training rows")
    labels = np.asarray(rows.columns["label"], dtype=np.float32)
    if labels.shape[1] < 5:
        raise ValueError("margin_scale auto needs teacher scores in the training rows")
    picked = np.random.default_rng(seed).choice(len(labels), size=min(sample, len(labels)), replace=False)
    teacher = labels[picked, 3] - labels[picked, 4]
    queries = model.encode_query([rows.columns["anchor"][i] for i in picked], convert_to_tensor=True)
    positives = model.encode_document([rows.columns["positive"][i] for i in picked], convert_to_tensor=True)
    negatives = model.encode_document([rows.columns["negative"][i] for i in picked], convert_to_tensor=True)
    queries, positives, negatives = (t.to_dense().float() for t in (queries, positives, negatives))
    student = ((queries * positives).sum(-1) - (queries * negatives).sum(-1)).cpu().numpy()
    scale = float(np.std(teacher) / max(float(np.std(student)), 1e-6))
    logger.info(
        "margin_scale auto: teacher margin std %.3f, student margin std %.3f -> %.4f",
        np.std(teacher),
        np.std(student),
        scale,
    )
    return scale


def build_sparse_loss(config: TrainConfig, model: Any, preparation: Preparation, rows: TrainingRows) -> Any:
    """``SpladeLoss(CombinedLoss(contrastive, distillation), document_regularizer=FlopsRegularizer)``."""
    from sentence_transformers.sparse_encoder.losses import SpladeLoss

    spec = config.loss
    terms: list[tuple[Any, float]] = []
    if spec.contrastive_weight:
        guide = preparation.guide_matrix(rows) if spec.name == "gist" else None
        if guide is None:  # mnrl: the same loss without the guide mask
            guide = np.zeros((len(rows.table), 1), dtype=np.float32)
        contrastive = CachedGuideGISTLoss(
            model,
            guide,
            temperature=spec.temperature,
            margin_strategy=config.guide.margin_strategy
            if config.guide and spec.name == "gist"
            else "absolute",
            margin=config.guide.margin if config.guide and spec.name == "gist" else -float("inf"),
            similarity="dot",
            labelled_pairs=labelled_pairs(preparation.data, rows) if spec.mask_labelled else None,
        )
        terms.append((contrastive, spec.contrastive_weight))
    if spec.distill is not None:
        scale = (
            auto_margin_scale(model, rows)
            if spec.distill == "margin_mse" and spec.margin_scale == "auto"
            else None
        )
        terms.append((distillation_loss(model, spec, "dot", margin_scale=scale), spec.distill_weight))
    if not terms:
        raise ValueError("the sparse loss has no term: set loss.contrastive_weight > 0 or loss.distill")
    query_table = model[0].sub_modules["query"][0].weight.detach().cpu().numpy()
    regularizer = FlopsRegularizer(config.sparse.regularizer, idf=query_table)
    return SpladeLoss(
        model,
        loss=CombinedLoss(model, terms),
        document_regularizer_weight=config.sparse.document_weight,
        document_regularizer=regularizer,
        query_regularizer_weight=None,  # queries are a fixed (or IDF-initialised) table, not an MLM
    )


def sparse_callbacks(loss: Any, warmup_steps: int | None, trainable_idf: bool = False) -> list[Any]:
    """The quadratic warm-up of the regulariser weight, the sparsity report in the training log and,
    with a trainable IDF table, the projection of its weights onto non-negative values."""
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import (
        SpladeRegularizerWeightSchedulerCallback,
    )
    from transformers import TrainerCallback

    class WarmupInSteps(SpladeRegularizerWeightSchedulerCallback):
        """Quadratic warm-up over a fixed number of steps (sentence-transformers' takes a ratio)."""

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            super().on_train_begin(args, state, control, **kwargs)
            if warmup_steps is not None:
                self.warmup_steps = max(int(warmup_steps), 1)

    class SparsityReport(TrainerCallback):
        """Adds the last batch's mean active terms per document, its FLOPS and the regulariser weight to
        every training log entry (the Trainer appends ``logs`` to its history before callbacks run, so
        the history entry is updated too)."""

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if logs is None or "loss" not in logs:
                return
            stats = {
                "doc_active_terms": round(loss.document_regularizer.last_active, 1),
                "doc_flops": round(loss.document_regularizer.last_flops, 4),
                "document_regularizer_weight": loss.document_regularizer_weight,
            }
            logs.update(stats)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(stats)

    class NonNegativeQueryWeights(TrainerCallback):
        """Zeroes negative IDF query weights after every optimizer step (:func:`clamp_query_weights`)."""

        def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            if model is not None:
                clamp_query_weights(getattr(model, "module", model))

    callbacks = [WarmupInSteps(loss=loss, scheduler_type="quadratic"), SparsityReport()]
    return [*callbacks, NonNegativeQueryWeights()] if trainable_idf else callbacks


def train_sparse(config: TrainConfig, output: str | Path, resume: bool = False) -> Path:
    """Train the inference-free model the sparse recipe ``config`` describes and write a
    ``SparseEncoder`` folder to ``output``, with ``meta.json``, ``training_log.jsonl`` and
    ``training_curve.png``; the saved model is pruned as ``sparse.doc_max_terms``,
    ``sparse.query_min_idf`` and ``sparse.doc_min_contribution`` ask.

    Checkpoints go to ``OUTPUT.checkpoints/``; with ``resume`` the latest one is continued.

    Example:
        >>> train_sparse(load_config("configs/sparse-full.yaml"), "runs/models/sparse-full")
    """
    from sentence_transformers import SparseEncoderTrainer
    from sentence_transformers.sparse_encoder.training_args import SparseEncoderTrainingArguments
    from transformers import set_seed

    from retrieval.pooling.loading import load_sparse_encoder

    set_seed(config.training.seed)
    model = build_student(config)
    name = student_name(config)
    preparation, rows = prepare(config, model, SparseModelEncoder(model, name=name))
    loss = build_sparse_loss(config, model, preparation, rows)
    columns = [c for c in rows.columns if c != "label"]
    arguments: dict[str, Any] = {
        "router_mapping": {c: "query" if c == QUERY_COLUMN else "document" for c in columns}
    }
    if config.sparse.trainable_idf and config.sparse.idf_learning_rate is not None:
        arguments["learning_rate_mapping"] = {
            r"sub_modules\.query\.0\.weight": config.sparse.idf_learning_rate
        }
    evaluator = None
    if config.data.dev_split:
        evaluator = BeirDevEvaluator(  # the sample protocol is sentence-transformers' dense evaluator
            config.data.dataset,
            config.data.dev_split,
            config.data.dev_max_queries,
            encoder=lambda m: SparseModelEncoder(m, name=name),
            max_length=config.sparse.max_length,
        )

    def finish(model: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Prune the trained model; its query encoder, sparsity and pruning go into ``meta.json``."""
        floor = config.sparse.doc_min_contribution
        pruned = prune(model, config.sparse.doc_max_terms, config.sparse.query_min_idf, floor)
        last = next((e for e in reversed(history) if "doc_active_terms" in e), {})
        fields = {"query_encoder": "idf", "doc_active_terms": last.get("doc_active_terms"), "pruning": pruned}
        if floor is not None:  # not a sentence-transformers setting: Winnow's encoders read it from meta.json
            fields["doc_min_contribution"] = floor
        return fields

    return run_training(
        config,
        output,
        model=model,
        loss=loss,
        rows=rows,
        batch_sampler=preparation.batch_sampler(rows),
        trainer_class=SparseEncoderTrainer,
        arguments_class=SparseEncoderTrainingArguments,
        load=load_sparse_encoder,
        model_type="sparse",
        inference_length=config.sparse.max_length,
        evaluator=evaluator,
        callbacks=sparse_callbacks(loss, config.sparse.warmup_steps, config.sparse.trainable_idf),
        arguments=arguments,
        finish=finish,
        resume=resume,
    )
