"""Weight averaging of fine-tuned models ("model soup", Wortsman et al., 2022).

Models fine-tuned from the same start point with different seeds usually lie in one basin of the loss,
so the mean of their weights is itself a good model, often better than each ingredient, and it costs
nothing at search time. With ``weights``, the start point itself can be an ingredient: ``(1 - a) *
base + a * fine_tuned`` is WiSE-FT (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"),
which keeps part of the base model's behaviour on data the fine-tuning never saw.

Works for any sentence-transformers model (dense ``SentenceTransformer`` or
``SparseEncoder``, including an inference-free model's IDF query table); the models must have the
same modules and parameter shapes.

Example:
    >>> soup = average_models([SparseEncoder("run-seed42"), SparseEncoder("run-seed1")])
    >>> soup.save("soup")
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from trainers.checkpoints import complete_checkpoints

logger = logging.getLogger(__name__)


def average_models(models: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    """Set the first model's floating-point weights to the (weighted) mean over ``models``; returns
    the first.

    Args:
        models: two or more models with identical state-dict keys and shapes.
        weights: one non-negative weight per model, scaled to sum to 1 (None: equal weights).

    Raises:
        ValueError: fewer than two models, weights that do not match them, or a parameter missing,
            shaped differently, or (for non-float buffers such as position ids) holding different
            values in one of them.
    """
    if len(models) < 2:
        raise ValueError(f"averaging needs at least two models; got {len(models)}")
    shares = mixing_shares(len(models), weights)
    states = [m.state_dict() for m in models]
    first = states[0]
    for i, state in enumerate(states[1:], start=2):
        missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
        if missing or extra:
            raise ValueError(
                f"model {i} has other parameters than model 1 (missing {missing[:3]}, extra {extra[:3]}); "
                "only models of one architecture can be averaged"
            )
        for name, tensor in first.items():
            if state[name].shape != tensor.shape:
                raise ValueError(
                    f"parameter {name!r} has shape {tuple(state[name].shape)} in model {i} "
                    f"and {tuple(tensor.shape)} in model 1"
                )
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            mixed = sum(share * s[name].float() for share, s in zip(shares, states, strict=True))
            averaged[name] = mixed.to(tensor.dtype)
        else:
            for i, state in enumerate(states[1:], start=2):
                if not torch.equal(state[name], tensor):
                    raise ValueError(f"non-float buffer {name!r} differs between model 1 and model {i}")
            averaged[name] = tensor
    models[0].load_state_dict(averaged)
    return models[0]


def mixing_shares(n_models: int, weights: Sequence[float] | None) -> list[float]:
    """``weights`` scaled to sum to 1 (equal shares when None).

    Raises:
        ValueError: not one weight per model, a negative or non-finite weight, or all zero.
    """
    if weights is None:
        return [1.0 / n_models] * n_models
    if len(weights) != n_models:
        raise ValueError(f"{len(weights)} weights for {n_models} models; give one weight per model")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero; got {list(weights)}")
    total = float(sum(weights))
    return [w / total for w in weights]


def average_checkpoints(
    model: Any, checkpoints: str | Path, last: int, load: Callable[[str], Any]
) -> list[str]:
    """Load into ``model`` the mean weights of the ``last`` newest checkpoints in ``checkpoints``.

    Latest-weight averaging along one training run: the checkpoints of the last epochs lie close
    together, and their mean is a flatter, often slightly better point than the final weights.

    Args:
        model: the trained model (its weights are replaced).
        checkpoints: the trainer's ``output_dir`` with ``checkpoint-<step>`` folders.
        last: how many of the newest checkpoints to average (at least 2).
        load: reads a checkpoint folder as a model (``SentenceTransformer`` or ``SparseEncoder``).

    Returns:
        the names of the checkpoints averaged, oldest first.
    """
    found = complete_checkpoints(checkpoints)  # a checkpoint cut short by a kill is never averaged
    if len(found) < last:
        raise ValueError(
            f"training.average_last={last} needs {last} checkpoints; {checkpoints} has {len(found)} "
            f"({', '.join(p.name for p in found) or 'none'}): train more epochs or save more often"
        )
    chosen = found[-last:]
    averaged = average_models([load(str(p)) for p in chosen])
    model.load_state_dict(averaged.state_dict())
    logger.info("weights: mean of %s", ", ".join(p.name for p in chosen))
    return [p.name for p in chosen]
