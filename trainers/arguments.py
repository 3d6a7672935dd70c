"""``training_arguments``: sentence-transformers trainer arguments from a recipe's ``training`` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.settings import show_progress
from trainers.config import TrainConfig


def training_arguments(
    config: TrainConfig,
    checkpoints: Path,
    batch_sampler: Any,
    dev_metric: str | None,
    arguments_class: Any = None,
    **extra: Any,
):
    """Trainer arguments from the recipe (``arguments_class``: the sparse trainer's own class).

    ``dev_metric``: the log key that picks the best checkpoint (``trainers.dev.dev_metric``), or
    ``None`` without dev scoring.

    Checkpoints are written every ``training.save_steps`` steps when it is set, else every
    ``training.eval_steps`` steps, else at the end of every epoch. With dev scoring, the dev set is
    scored at every checkpoint (every ``eval_steps`` when given, which ``save_steps`` must be a
    multiple of) so that the best one can be picked.

    Raises:
        ValueError: ``save_steps`` or ``eval_steps`` below 1, or ``save_steps`` not a multiple of
            ``eval_steps`` under dev scoring.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    from trainers.distributed import under_torchrun

    t = config.training
    # transformers runs DDP on CPUs only when asked to use them (else it trains each rank alone)
    cpu_ddp = {"use_cpu": True} if under_torchrun() and not torch.cuda.is_available() else {}
    for key in ("save_steps", "eval_steps"):
        value = getattr(t, key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"training.{key} must be an integer >= 1 or null; got {value!r}")
    save_steps = t.save_steps or t.eval_steps
    eval_steps = t.eval_steps or t.save_steps
    if dev_metric and t.save_steps and t.eval_steps and t.save_steps % t.eval_steps:
        raise ValueError(
            f"training.save_steps ({t.save_steps}) must be a multiple of training.eval_steps "
            f"({t.eval_steps}): the best checkpoint is picked by its dev score"
        )
    strategy = "steps" if save_steps else "epoch"
    return (arguments_class or SentenceTransformerTrainingArguments)(
        output_dir=str(checkpoints),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        per_device_eval_batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio of the total steps (transformers 5)
        lr_scheduler_type=t.scheduler,
        weight_decay=t.weight_decay,
        seed=t.seed,
        data_seed=t.seed,
        fp16=t.precision == "fp16",
        bf16=t.precision == "bf16",
        batch_sampler=batch_sampler,
        eval_strategy=strategy if dev_metric else "no",
        eval_steps=eval_steps,
        save_strategy=strategy,
        save_steps=save_steps,
        save_total_limit=max(t.save_total_limit, t.average_last),
        load_best_model_at_end=dev_metric is not None,
        metric_for_best_model=dev_metric,
        greater_is_better=True,
        logging_steps=t.logging_steps,
        report_to="none",
        dataloader_drop_last=False,
        disable_tqdm=not show_progress(),  # -q silences the trainer's progress bar too
        **cpu_ddp,
        **extra,
    )
