"""The training loop the dense and sparse trainers share.

A trainer (:mod:`trainers.dense`, :mod:`trainers.sparse`) builds what differs: the student model, its
loss, its dev evaluator, its trainer and argument classes, and its own callbacks. The rest is here:

1. :func:`prepare`: the recipe's cached :class:`~trainers.preparation.Preparation` and training rows
   (negatives mined by the student at its inference length), then the student's training length;
2. :func:`run_training`: trainer arguments, the checkpoint folder ``OUTPUT.checkpoints/`` and
   ``--resume`` from its latest checkpoint, the trainer run with dev scoring and best-checkpoint
   selection, latest-weight averaging (``training.average_last``), the inference length restored,
   then the model folder written atomically with ``meta.json``, ``training_log.jsonl`` and
   ``training_curve.png``, and the checkpoints removed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexes.io import atomic_directory, check_output, write_meta
from retrieval.encoders import Encoder
from trainers.arguments import training_arguments
from trainers.checkpoints import latest_checkpoint
from trainers.config import TrainConfig, to_dict
from trainers.dev import best_dev_score, dev_metric
from trainers.distributed import parameter_checksum, rank_zero_first, under_torchrun, world
from trainers.preparation import Preparation
from trainers.report import plot_history, write_log
from trainers.rows import TrainingRows
from trainers.soup import average_checkpoints

logger = logging.getLogger(__name__)

# rank 0 only, after training and before the model is written: returns extra meta.json fields
Finish = Callable[[Any, list[dict[str, Any]]], dict[str, Any]]


def checkpoint_folder(output: Path) -> Path:
    """Where the trainer writes its ``checkpoint-<step>`` folders: ``OUTPUT.checkpoints``."""
    return output.with_name(output.name + ".checkpoints")


def prepare(config: TrainConfig, model: Any, student_encoder: Encoder) -> tuple[Preparation, TrainingRows]:
    """The recipe's :class:`~trainers.preparation.Preparation` and its training rows.

    Negatives are mined while ``model`` still has its inference length; the model is then set to
    ``training.max_length`` (when given) for training.

    Args:
        config: the recipe.
        model: the untrained student.
        student_encoder: ``model`` wrapped as an encoder, for ``mining.model: student``.

    Example:
        >>> preparation, rows = prepare(config, model, DenseEncoder(model, name=config.model_name))
    """
    with rank_zero_first("preparation"):  # under DDP: computed once, then read from the cache
        preparation = Preparation(config, student_encoder)
        rows = preparation.rows()
        if under_torchrun():  # the query clusters too; a single process builds its sampler once, later
            preparation.batch_sampler(rows)
    if config.training.max_length:
        model.max_seq_length = config.training.max_length
    logger.info(
        "%d training rows for %d queries, %d distinct texts", len(rows), len(rows.query_ids), len(rows.table)
    )
    return preparation, rows


def run_training(
    config: TrainConfig,
    output: str | Path,
    *,
    model: Any,
    loss: Any,
    rows: TrainingRows,
    batch_sampler: Any,
    trainer_class: Any,
    arguments_class: Any,
    load: Callable[[str], Any],
    model_type: str,
    inference_length: int | None,
    evaluator: Any = None,
    callbacks: Sequence[Any] = (),
    arguments: dict[str, Any] | None = None,
    finish: Finish | None = None,
    resume: bool = False,
) -> Path:
    """Train ``model`` and write it, with its training report, to ``output``.

    Args:
        config: the recipe.
        output: the model folder to write (replaced atomically; an existing folder must be a Winnow
            artefact or empty).
        model: the student, at its training length.
        loss: the training loss.
        rows: the training rows (:func:`prepare`).
        batch_sampler: the trainer's batch sampler (``Preparation.batch_sampler``).
        trainer_class: ``SentenceTransformerTrainer`` or ``SparseEncoderTrainer``.
        arguments_class: the matching training-arguments class.
        load: reads a checkpoint folder as a model, for ``training.average_last``.
        model_type: ``meta.json``'s ``model_type`` (``dense`` or ``sparse``).
        inference_length: the saved model's token limit, restored after training.
        evaluator: dev scoring that picks the best checkpoint (``None``: no dev scoring).
        callbacks: extra trainer callbacks.
        arguments: extra training arguments (e.g. a sparse router mapping).
        finish: called on rank 0 with the model and the training log before the model is written;
            returns extra ``meta.json`` fields.
        resume: continue from the latest checkpoint in ``OUTPUT.checkpoints`` (from scratch, with a
            warning, when there is none).

    Returns:
        ``output``.

    Example:
        >>> run_training(config, "runs/models/dense", model=model, loss=loss, rows=rows,
        ...     batch_sampler=preparation.batch_sampler(rows), trainer_class=SentenceTransformerTrainer,
        ...     arguments_class=SentenceTransformerTrainingArguments, load=SentenceTransformer,
        ...     model_type="dense", inference_length=256)
    """
    output = check_output(output, "model")  # before any training: never replace an index or data
    checkpoints = checkpoint_folder(output)
    args = training_arguments(
        config,
        checkpoints,
        batch_sampler,
        dev_metric(evaluator) if evaluator else None,
        arguments_class,
        **(arguments or {}),
    )
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=rows.to_dataset(),
        loss=loss,
        evaluator=evaluator,
        callbacks=list(callbacks) or None,
    )
    if args.disable_tqdm:  # quiet: transformers swaps the progress bar for a printer of every log line
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    checkpoint = latest_checkpoint(checkpoints) if resume else None
    if resume and checkpoint is None:
        logger.warning("--resume: no checkpoint in %s; starting from scratch", checkpoints)
    elif checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    if under_torchrun():
        logger.info("rank %d: parameter checksum %.10e", world()[0], parameter_checksum(model))
    if config.training.average_last > 1 and trainer.is_world_process_zero():
        average_checkpoints(model, checkpoints, config.training.average_last, load)
    model.max_seq_length = inference_length  # training may truncate harder than inference should
    history = trainer.state.log_history
    best = best_dev_score(history)
    if not trainer.is_world_process_zero():  # under DDP only rank 0 writes the model
        return output
    extra = finish(model, history) if finish else {}
    with atomic_directory(output, family="model") as tmp:
        model.save(str(tmp))
        write_log(history, tmp / "training_log.jsonl")
        title = f"{config.model_name} -> {output.name}" + (
            f" ({model_type})" if model_type != "dense" else ""
        )
        plot_history(history, tmp / "training_curve.png", title=title)
        write_meta(
            tmp,
            "model",
            model_type=model_type,
            base_model=config.model_name,
            steps=trainer.state.global_step,
            best_dev_ndcg_at_10=best,
            **extra,
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
