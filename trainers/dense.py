"""``train_dense(config)``: fine-tune a sentence-transformers bi-encoder with Winnow's recipe.

Steps, each cached so a rerun or ``--resume`` repeats no work:
1. training pairs (``trainers.data``);
2. hard negatives mined by the student, the guide or BM25, filtered by the guide (``trainers.mining``);
3. guide embeddings of every training text (``trainers.guide``), so GIST needs no guide forward pass;
4. teacher ensemble scores, per-query min-max normalised (``trainers.teachers``);
   steps 1-5 are :class:`~trainers.recipe.Recipe`, shared with the sparse trainer;
5. rows with text ids and teacher scores (``trainers.rows``), a query-level batch sampler
   (random or TAS-Balanced, ``trainers.samplers``) and the loss (``trainers.losses``);
6. ``SentenceTransformerTrainer`` with dev nDCG@10 scoring, checkpoints and the best model kept.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from indexes.io import atomic_directory, write_meta
from retrieval.encoders import DenseEncoder
from trainers.arguments import training_arguments
from trainers.checkpoints import latest_checkpoint
from trainers.config import TrainConfig, to_dict
from trainers.dev import best_dev_score, build_dev_evaluator, dev_metric
from trainers.losses import CachedGuideGISTLoss, CombinedLoss, InBatchMarginMSELoss
from trainers.losses.distillation import distillation_loss
from trainers.recipe import Recipe
from trainers.report import plot_history, write_log
from trainers.rows import TrainingRows, labelled_pairs
from trainers.soup import average_checkpoints

logger = logging.getLogger(__name__)


def build_loss(config: TrainConfig, model: Any, recipe: Recipe, rows: TrainingRows):
    """The loss the recipe names, with the distillation term added when configured."""
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    spec = config.loss
    if spec.name == "mnrl":
        contrastive = MultipleNegativesRankingLoss(model, scale=1.0 / spec.temperature)
    elif spec.name == "st_gist":
        contrastive = GISTEmbedLoss(
            model,
            recipe.guide.encoder.model,
            temperature=spec.temperature,  # type: ignore[union-attr]
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
        )
    else:
        contrastive = CachedGuideGISTLoss(
            model,
            recipe.guide_matrix(rows),
            temperature=spec.temperature,
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
            labelled_pairs=labelled_pairs(recipe.data, rows) if spec.mask_labelled else None,
        )
    terms = [(contrastive, spec.contrastive_weight)] if spec.contrastive_weight else []
    if spec.distill is not None:
        terms.append((distillation_loss(model, spec), spec.distill_weight))
    if spec.in_batch_weight:
        term = InBatchMarginMSELoss(
            model,
            recipe.teacher_matrix(rows),
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


def train_dense(config: TrainConfig, output: str | Path, resume: bool = False) -> Path:
    """Train the recipe and write the model (sentence-transformers format) to ``output``.

    Checkpoints go to ``OUTPUT.checkpoints/``; with ``resume`` the latest one is continued.
    ``output`` also receives ``meta.json``, ``training_log.jsonl`` and ``training_curve.png``.
    """
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from transformers import set_seed

    output = Path(output)
    set_seed(config.training.seed)
    model = SentenceTransformer(config.model)
    inference_max_length = model.max_seq_length
    recipe = Recipe(config, DenseEncoder(model, name=config.model))
    rows = recipe.rows()  # mines with the student at its inference length
    if config.training.max_length:
        model.max_seq_length = config.training.max_length
    logger.info(
        "%d training rows for %d queries, %d distinct texts", len(rows), len(rows.query_ids), len(rows.table)
    )
    loss = build_loss(config, model, recipe, rows)
    evaluator = None
    if config.data.dev_split:
        evaluator = build_dev_evaluator(
            config.data.dataset,
            config.data.dev_split,
            config.data.dev_max_queries,
            corpus=config.data.dev_corpus or "sample",
            max_length=inference_max_length,
        )
    checkpoints = output.with_name(output.name + ".checkpoints")
    args = training_arguments(
        config, checkpoints, recipe.batch_sampler(rows), dev_metric(evaluator) if evaluator else None
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=rows.to_dataset(), loss=loss, evaluator=evaluator
    )
    checkpoint = latest_checkpoint(checkpoints) if resume else None
    if resume and checkpoint is None:
        logger.warning("--resume: no checkpoint in %s; starting from scratch", checkpoints)
    elif checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    if config.training.average_last > 1 and trainer.is_world_process_zero():
        average_checkpoints(model, checkpoints, config.training.average_last, SentenceTransformer)
    history = trainer.state.log_history
    best = best_dev_score(history)
    model.max_seq_length = inference_max_length  # training may truncate harder than inference should
    if not trainer.is_world_process_zero():  # under DDP only rank 0 writes the model
        return output
    with atomic_directory(output) as tmp:
        model.save(str(tmp))
        write_log(history, tmp / "training_log.jsonl")
        plot_history(history, tmp / "training_curve.png", title=f"{config.model} -> {output.name}")
        write_meta(
            tmp,
            "model",
            model_type="dense",
            base_model=config.model,
            steps=trainer.state.global_step,
            best_dev_ndcg_at_10=best,
            config=to_dict(config),
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
    logger.info(
        "wrote %s (%d steps%s)",
        output,
        trainer.state.global_step,
        f", best dev nDCG@10 {best:.4f}" if best is not None else "",
    )
    return output
