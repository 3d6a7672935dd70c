"""Cross-field rules of a training configuration that types alone cannot express."""

from __future__ import annotations

from typing import Any

from trainers.typed_config import ConfigError


def check_config(config: Any, where: str = "config") -> None:
    """Raise :class:`ConfigError` naming ``where`` and the keys when ``config`` breaks a rule.

    Args:
        config: a :class:`trainers.config.TrainConfig` (its ``mining.guide_filter`` is switched off
            when no guide is configured).
        where: the file the config came from, for messages.
    """
    if config.loss.name in ("gist", "st_gist") and config.guide is None:
        raise ConfigError(f"{where}: loss.name={config.loss.name!r} needs a guide section")
    if config.loss.distill and not config.teachers:
        raise ConfigError(
            f"{where}: loss.distill={config.loss.distill!r} needs at least one entry in teachers"
        )
    if config.training.average_last < 1:
        raise ConfigError(f"{where}: training.average_last must be >= 1; got {config.training.average_last}")
    if config.kind == "sparse" and config.data.dev_corpus == "sample":
        raise ConfigError(
            f"{where}: data.dev_corpus 'sample' scores dense students only; a sparse student is "
            "scored with 'full' (or leave it unset)"
        )
    if config.training.average_last > 1 and config.data.dev_split:
        raise ConfigError(
            f"{where}: training.average_last averages the last checkpoints, data.dev_split picks "
            "the best one; use one of them"
        )
    if config.loss.teacher_pool < 0:
        raise ConfigError(f"{where}: loss.teacher_pool must be >= 0; got {config.loss.teacher_pool}")
    if config.loss.teacher_pool and not config.mining.enabled:
        raise ConfigError(f"{where}: loss.teacher_pool takes the miner's candidates (mining.enabled: true)")
    if config.loss.in_batch_weight < 0:
        raise ConfigError(f"{where}: loss.in_batch_weight must be >= 0; got {config.loss.in_batch_weight}")
    if config.loss.in_batch_weight:
        if config.kind != "dense":
            raise ConfigError(f"{where}: loss.in_batch_weight is for dense recipes; set it to 0")
        if not any(t.kind == "dense" for t in config.teachers):
            raise ConfigError(f"{where}: loss.in_batch_weight needs a teacher of kind 'dense'")
        if config.loss.name != "gist":
            raise ConfigError(
                f"{where}: loss.in_batch_weight shares the student's forward pass with loss.name "
                f"'gist'; got {config.loss.name!r}"
            )
    if config.loss.mask_labelled and config.kind == "dense" and config.loss.name != "gist":
        raise ConfigError(
            f"{where}: loss.mask_labelled works inside the cached-guide loss (loss.name 'gist'); "
            f"got {config.loss.name!r}"
        )
    if config.loss.distill and not config.mining.enabled:
        raise ConfigError(f"{where}: loss.distill needs mined negatives (mining.enabled: true)")
    if config.sampler.name == "tas_balanced" and not config.teachers:
        raise ConfigError(f"{where}: sampler tas_balanced bins pairs by teacher margin: add teachers")
    miners = [config.mining.model, *config.mining.extra_models]
    if "guide" in miners and config.guide is None:
        raise ConfigError(f"{where}: mining model 'guide' needs a guide section")
    if len(set(miners)) < len(miners):
        raise ConfigError(
            f"{where}: mining.extra_models repeats a miner: {miners} (mining.model comes first)"
        )
    if config.mining.guide_filter and config.mining.enabled and config.guide is None:
        config.mining.guide_filter = False
    for i, teacher in enumerate(config.teachers):
        if teacher.kind != "bm25" and not teacher.model:
            raise ConfigError(f"{where}: teachers[{i}] of kind {teacher.kind!r} needs a model")
    if config.kind == "dense" and config.loss.margin_scale == "auto":
        raise ConfigError(f"{where}: loss.margin_scale 'auto' is for sparse recipes; give a number")
    if config.kind == "sparse" and config.loss.name == "st_gist":
        raise ConfigError(f"{where}: loss.name 'st_gist' is dense only; use gist or mnrl")
    if config.training.batch_size < 2:
        raise ConfigError(f"{where}: training.batch_size must be at least 2 (in-batch negatives)")
    if config.sparse.doc_max_terms is not None and config.sparse.doc_max_terms < 1:
        raise ConfigError(
            f"{where}: sparse.doc_max_terms must be a positive integer or null; "
            f"got {config.sparse.doc_max_terms}"
        )
