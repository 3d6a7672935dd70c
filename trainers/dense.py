"""``train_dense(config)``: fine-tune a sentence-transformers bi-encoder as a recipe describes.

Steps, each cached so a rerun or ``--resume`` repeats no work:
1. training pairs (``trainers.data``);
2. hard negatives mined by the student, the guide or BM25, filtered by the guide (``trainers.mining``);
3. guide embeddings of every training text (``trainers.guide``), so GIST needs no guide forward pass;
4. teacher ensemble scores, per-query min-max normalised (``trainers.teachers``);
5. rows with text ids and teacher scores (``trainers.rows``) and a query-level batch sampler
   (random or TAS-Balanced, ``trainers.samplers``);
   steps 1-5 are :class:`~trainers.preparation.Preparation`, shared with the sparse trainer;
6. the loss (``trainers.losses``, :func:`build_loss`);
7. ``SentenceTransformerTrainer`` with dev nDCG@10 scoring, checkpoints and the best model kept, in
   the loop shared with the sparse trainer (:func:`trainers.loop.run_training`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders import DenseEncoder
from trainers.config import TrainConfig
from trainers.dev import build_dev_evaluator
from trainers.loop import prepare, run_training
from trainers.losses import CachedGuideGISTLoss, CombinedLoss, InBatchMarginMSELoss
from trainers.losses.distillation import distillation_loss
from trainers.preparation import Preparation
from trainers.rows import TrainingRows, labelled_pairs

logger = logging.getLogger(__name__)


def build_loss(config: TrainConfig, model: Any, preparation: Preparation, rows: TrainingRows):
    """The loss the recipe names, with the distillation term added when configured."""
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    spec = config.loss
    if spec.name == "mnrl":
        contrastive = MultipleNegativesRankingLoss(model, scale=1.0 / spec.temperature)
    elif spec.name == "st_gist":
        contrastive = GISTEmbedLoss(
            model,
            preparation.guide.encoder.model,
            temperature=spec.temperature,  # type: ignore[union-attr]
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
        )
    else:
        contrastive = CachedGuideGISTLoss(
            model,
            preparation.guide_matrix(rows),
            temperature=spec.temperature,
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
            labelled_pairs=labelled_pairs(preparation.data, rows) if spec.mask_labelled else None,
        )
    terms = [(contrastive, spec.contrastive_weight)] if spec.contrastive_weight else []
    if spec.distill is not None:
        terms.append((distillation_loss(model, spec), spec.distill_weight))
    if spec.in_batch_weight:
        term = InBatchMarginMSELoss(
            model,
            preparation.teacher_matrix(rows),
            margin_scale=float(spec.margin_scale),
            normalise=spec.in_batch_normalise,
        )
        terms.append((term, spec.in_batch_weight))
    if len(terms) == 1:
        return terms[0][0]
    if not terms:
        raise ValueError("the loss has no term: set loss.contrastive_weight > 0 or loss.distill")
    if not hasattr(contrastive, "loss_from_embeddings") and spec.contrastive_weight:
        raise ValueError(f"loss {spec.name!r} cannot be combined with distillation; use loss.name: gist")
    return CombinedLoss(model, terms)


def build_student(config: TrainConfig) -> tuple[Any, str, dict[str, Any]]:
    """The student the recipe's ``model`` describes, the name its untrained outputs are cached under,
    and the extra training arguments it needs (a pooling learning rate, a query prompt).

    A new pooling module that starts as the base model's pooling (``zero_init``) gives the untrained
    student the base model's embeddings, checked on probe texts: then the base model's name keys the
    student's cached mining embeddings, shared across pooling choices.
    """
    import json

    from retrieval.pooling import build
    from retrieval.pooling.build import POOLING_CLASSES
    from retrieval.pooling.decoder import is_decoder

    spec = config.model_spec
    model = build(
        spec.name,
        spec.pooling.options() if spec.pooling else None,
        bidirectional=spec.bidirectional,
        query_prompt=spec.query_prompt,
        padding_side=spec.padding_side,
    )
    if not spec.customised:
        return model, spec.name, {}
    name = f"{spec.name}|{json.dumps(dataclasses.asdict(spec), sort_keys=True)}|seed:{config.training.seed}"
    only_pooling = spec.bidirectional is None and spec.query_prompt is None and spec.pooling is not None
    if only_pooling and not is_decoder(model[0].auto_model.config) and _same_outputs(model, spec.name):
        name = spec.name
    arguments: dict[str, Any] = {}
    if spec.pooling_learning_rate is not None:
        index = next(i for i, m in enumerate(model) if isinstance(m, POOLING_CLASSES))
        arguments["learning_rate_mapping"] = {pooling_parameters(index): spec.pooling_learning_rate}
    if spec.query_prompt is not None:
        arguments["prompts"] = {"anchor": spec.query_prompt}
    return model, name, arguments


def pooling_parameters(index: int) -> str:
    """The regular expression that names the parameters of the pipeline's module ``index`` inside a
    loss (``model.<index>.``), for ``learning_rate_mapping``."""
    return rf"(?:^|\.)model\.{index}\."


def _same_outputs(model: Any, base_name: str) -> bool:
    from retrieval.pooling import load_sentence_transformer

    probe = ["a probe text about bone density", "another one", "x"]
    base = load_sentence_transformer(base_name, device=str(model.device))
    built = model.encode(probe, convert_to_numpy=True)
    return bool(np.allclose(built, base.encode(probe, convert_to_numpy=True), atol=1e-5))


def train_dense(config: TrainConfig, output: str | Path, resume: bool = False) -> Path:
    """Train the model the recipe ``config`` describes and write it (sentence-transformers format) to
    ``output``, with ``meta.json``, ``training_log.jsonl`` and ``training_curve.png``.

    Checkpoints go to ``OUTPUT.checkpoints/``; with ``resume`` the latest one is continued.

    Example:
        >>> train_dense(load_config("configs/dense-full.yaml"), "runs/models/dense-full")
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    from retrieval.pooling import load_sentence_transformer

    set_seed(config.training.seed)
    model, student_name, arguments = build_student(config)
    inference_length = model.max_seq_length
    preparation, rows = prepare(config, model, DenseEncoder(model, name=student_name))
    loss = build_loss(config, model, preparation, rows)
    evaluator = None
    if config.data.dev_split:
        evaluator = build_dev_evaluator(
            config.data.dataset,
            config.data.dev_split,
            config.data.dev_max_queries,
            corpus=config.data.dev_corpus or "sample",
            max_length=inference_length,
        )
    return run_training(
        config,
        output,
        model=model,
        loss=loss,
        rows=rows,
        batch_sampler=preparation.batch_sampler(rows),
        trainer_class=SentenceTransformerTrainer,
        arguments_class=SentenceTransformerTrainingArguments,
        load=load_sentence_transformer,
        model_type="dense",
        arguments=arguments,
        inference_length=inference_length,
        evaluator=evaluator,
        resume=resume,
    )
