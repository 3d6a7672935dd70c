"""Rules of a training configuration that types alone cannot express: value ranges and cross-field rules.

Every ``int`` and ``float`` field of every section has its valid range in :data:`RANGES` (one table;
``tests/test_train_config.py`` checks that no numeric field is missing from it). ``None`` stays
allowed where the field's type is optional.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from trainers.typed_config import ConfigError


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """The valid values of one numeric field.

    Attributes:
        low: the smallest valid value (``None``: no lower bound).
        high: the largest valid value (``None``: no upper bound).
        open_low: ``low`` itself is not valid (``> low`` instead of ``>= low``).
        also: single values valid outside the range (``-1`` for "no limit").
        note: why, appended to the message.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    also: tuple[float, ...] = ()
    note: str = ""

    def __contains__(self, value: float) -> bool:
        if value in self.also:
            return True
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_number(self.high)}")
        text = " and ".join(parts) or "a finite number"
        text = " or ".join([*(_number(v) for v in self.also), text])
        return f"{text} ({self.note})" if self.note else text


PARAMETER_FREE = ("mean", "cls", "last_token")  # poolings without parameters of their own

POSITIVE = Range(0, open_low=True)
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
ANY = Range()
FRACTION = Range(0, 1)

RANGES: dict[str, Range] = {
    "model.pooling_learning_rate": POSITIVE,
    "model.pooling.latents": AT_LEAST_1,
    "model.pooling.heads": AT_LEAST_1,
    "model.pooling.queries": AT_LEAST_1,
    "model.pooling.mlp_ratio": POSITIVE,
    "data.max_queries": AT_LEAST_1,
    "data.max_positives": AT_LEAST_1,
    "data.dev_max_queries": AT_LEAST_1,
    "data.title_queries": AT_LEAST_0,
    "mining.range_min": AT_LEAST_0,
    "mining.range_max": AT_LEAST_1,
    "mining.num_negatives": AT_LEAST_1,
    "mining.absolute_margin": AT_LEAST_0,
    "mining.relative_margin": Range(0, 1, note="a fraction of the positive's score"),
    "guide.margin": ANY,
    "guide.max_length": AT_LEAST_1,
    "loss.temperature": POSITIVE,
    "loss.distill_weight": AT_LEAST_0,
    "loss.contrastive_weight": AT_LEAST_0,
    "loss.distill_temperature": POSITIVE,
    "loss.teacher_temperature": POSITIVE,
    "loss.margin_scale": POSITIVE,
    "loss.teacher_margin_floor": ANY,
    "loss.teacher_pool": AT_LEAST_0,
    "loss.in_batch_weight": AT_LEAST_0,
    "sampler.clusters": Range(2),
    "sampler.clusters_per_batch": AT_LEAST_1,
    "sampler.margin_bins": AT_LEAST_1,
    "teachers[].weight": POSITIVE,
    "teachers[].max_length": AT_LEAST_1,
    "sparse.document_weight": AT_LEAST_0,
    "sparse.warmup_steps": AT_LEAST_0,
    "sparse.idf_learning_rate": POSITIVE,
    "sparse.max_length": AT_LEAST_1,
    "sparse.doc_max_terms": AT_LEAST_1,
    "sparse.query_min_idf": ANY,
    "sparse.doc_min_contribution": POSITIVE,
    "sparse.lexical_prior": POSITIVE,
    "training.batch_size": Range(2, note="in-batch negatives need two rows"),
    "training.epochs": POSITIVE,
    "training.max_steps": Range(1, also=(-1,), note="-1: as many as the epochs give"),
    "training.learning_rate": POSITIVE,
    "training.warmup_ratio": FRACTION,
    "training.weight_decay": AT_LEAST_0,
    "training.seed": Range(0, 2**32 - 1),
    "training.max_length": AT_LEAST_1,
    "training.eval_steps": AT_LEAST_1,
    "training.save_steps": AT_LEAST_1,
    "training.save_total_limit": AT_LEAST_1,
    "training.logging_steps": AT_LEAST_1,
    "training.gradient_accumulation": AT_LEAST_1,
    "training.average_last": AT_LEAST_1,
}


def numeric_fields(cls: type, prefix: str = "") -> list[str]:
    """Dotted keys of the ``int`` / ``float`` fields of dataclass ``cls`` and its sections
    (list items as ``name[]``): what :data:`RANGES` must cover."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, hint = prefix + f.name, hints[f.name]
        args = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
        if typing.get_origin(hint) is list:
            args, key = list(typing.get_args(hint)), key + "[]"
        for arg in args:
            if dataclasses.is_dataclass(arg):
                keys += numeric_fields(arg, key + ".")
            elif arg in (int, float) and key not in keys:
                keys.append(key)
    return keys


def _values(config: Any, key: str) -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of ``key`` in ``config``; ``name[]`` expands over a list."""
    nodes: list[tuple[str, Any]] = [("", config)]
    for part in key.split("."):
        found = []
        for path, node in nodes:
            name = part.removesuffix("[]")
            if node is None or isinstance(node, str):  # an unset section, or ``model`` as a bare name
                continue
            value = getattr(node, name)
            if part.endswith("[]"):
                found += [(f"{path}{name}[{i}].", item) for i, item in enumerate(value)]
            else:
                found.append((f"{path}{name}.", value))
        nodes = found
    return [(path.rstrip("."), value) for path, value in nodes]


def check_ranges(config: Any, where: str = "config") -> None:
    """Raise :class:`ConfigError` naming the file, key, value and valid range of the first bad number."""
    for key, valid in RANGES.items():
        for path, value in _values(config, key):
            if isinstance(value, int | float) and not isinstance(value, bool) and value not in valid:
                raise ConfigError(f"{where}: {path} must be {valid.describe()}; got {value}")


def check_config(config: Any, where: str = "config") -> None:
    """Raise :class:`ConfigError` naming ``where`` and the keys when ``config`` breaks a rule.

    Args:
        config: a :class:`trainers.config.TrainConfig` (its ``mining.guide_filter`` is switched off
            when no guide is configured).
        where: the file the config came from, for messages.
    """
    check_ranges(config, where)
    if config.mining.range_max <= config.mining.range_min:
        raise ConfigError(
            f"{where}: mining.range_max must be > mining.range_min; got range_max="
            f"{config.mining.range_max}, range_min={config.mining.range_min}"
        )
    if config.kind == "cross":
        check_cross(config, where)
    if config.kind != "dense" and config.model_spec.customised:
        raise ConfigError(
            f"{where}: model.pooling, bidirectional, query_prompt and pooling_learning_rate apply to "
            f"dense students; a {config.kind} recipe takes model as a name (model.name)"
        )
    spec = config.model_spec
    if spec.pooling_learning_rate is not None and (
        spec.pooling is None or spec.pooling.type in PARAMETER_FREE
    ):
        raise ConfigError(
            f"{where}: model.pooling_learning_rate needs a trainable model.pooling (latent_attention or "
            f"multi_layer); got {spec.pooling.type if spec.pooling else None!r}"
        )
    if config.kind != "cross" and config.loss.name in ("gist", "st_gist") and config.guide is None:
        raise ConfigError(f"{where}: loss.name={config.loss.name!r} needs a guide section")
    if config.loss.distill and not config.teachers:
        raise ConfigError(
            f"{where}: loss.distill={config.loss.distill!r} needs at least one entry in teachers"
        )
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
    if config.loss.teacher_pool and not config.mining.enabled:
        raise ConfigError(f"{where}: loss.teacher_pool takes the miner's candidates (mining.enabled: true)")
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
    if config.loss.name == "bce" and config.kind != "cross":
        raise ConfigError(f"{where}: loss.name 'bce' trains cross-encoders (kind: cross)")


def check_cross(config: Any, where: str = "config") -> None:
    """The rules of a cross-encoder recipe (``kind: cross``, ``trainers.cross``)."""
    loss = config.loss
    if loss.distill == "margin_mse":
        if loss.contrastive_weight:
            raise ConfigError(
                f"{where}: a cross-encoder trains on one objective: with loss.distill 'margin_mse' set "
                f"loss.contrastive_weight to 0 (got {loss.contrastive_weight})"
            )
        if loss.margin_scale == "auto":
            raise ConfigError(f"{where}: loss.margin_scale 'auto' is for sparse recipes; give a number")
    elif loss.distill is not None:
        raise ConfigError(f"{where}: loss.distill {loss.distill!r}: cross-encoders distil with 'margin_mse'")
    elif loss.name not in ("bce", "mnrl"):
        raise ConfigError(f"{where}: loss.name {loss.name!r}: cross-encoders train with 'bce' or 'mnrl'")
    elif loss.name == "bce" and config.sampler.name != "random":
        raise ConfigError(
            f"{where}: loss.name 'bce' reads every (query, document) pair once per epoch in shuffled "
            f"batches; sampler {config.sampler.name!r} draws rows per query: use sampler random"
        )
    if not config.mining.enabled:
        raise ConfigError(f"{where}: a cross-encoder learns from mined negatives (mining.enabled: true)")
    miners = [config.mining.model, *config.mining.extra_models]
    if "student" in miners:
        raise ConfigError(
            f"{where}: mining model 'student': a cross-encoder cannot search a corpus; mine with bm25, "
            "guide or a dense model id"
        )
    if config.data.dev_corpus == "full":
        raise ConfigError(
            f"{where}: data.dev_corpus 'full': a cross-encoder is scored on dev by reranking BM25's "
            "top candidates; leave data.dev_corpus unset"
        )


def model_keys(config: Any) -> list[tuple[str, str]]:
    """``(key, model id or path)`` of every model the recipe loads: student, guide, teachers, miners."""
    keys = [("model" if isinstance(config.model, str) else "model.name", config.model_name)]
    if config.guide is not None:
        keys.append(("guide.model", config.guide.model))
    keys += [
        (f"teachers[{i}].model", t.model)
        for i, t in enumerate(config.teachers)
        if t.kind != "bm25" and t.model
    ]
    if config.mining.enabled:
        miners = [("mining.model", config.mining.model)] + [
            (f"mining.extra_models[{i}]", m) for i, m in enumerate(config.mining.extra_models)
        ]
        keys += [(k, m) for k, m in miners if m not in ("student", "guide", "bm25")]
    return keys


def check_models(config: Any, where: str = "config") -> None:
    """Raise FileNotFoundError naming the file, key and id of a model that cannot be found
    (a missing local folder, or a hub id absent from the cache while the hub is offline); loads nothing.
    """
    from retrieval.model_source import check_model_source

    for key, name in model_keys(config):
        try:
            check_model_source(name, key)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{where}: {exc}") from exc
