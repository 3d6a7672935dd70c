"""Where a model comes from, checked before it loads: a local folder, or a hub id the hub can serve.

With the hub unreachable (``HF_HUB_OFFLINE=1``) a hub id must already be in the Hugging Face cache;
:func:`check_model_source` says so naming the id, in milliseconds, instead of a stack of hub errors
after minutes of data preparation.
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids contacting the hub."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def looks_local(name: str) -> bool:
    """A path rather than a hub id (``org/name`` or ``name``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _in_hub_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "modules.json"):
        try:
            cached = try_to_load_from_cache(name, filename)
        except ValueError:  # not a valid hub id (HFValidationError is a ValueError)
            return False
        if isinstance(cached, str):
            return True
    return False


def _prefix(key: str) -> str:
    """``"guide.model: "`` for a config key; nothing for the plain ``model`` of a command."""
    return f"{key}: " if key != "model" else ""


def missing_model_message(name: str, key: str = "model") -> str:
    """The message for a hub id that is neither a local folder nor reachable."""
    return (
        f"{_prefix(key)}model {name!r} not found locally and the hub is unreachable (HF_HUB_OFFLINE=1): "
        f"no folder {name} and no copy in the Hugging Face cache; check the id, run "
        "`winnow models install-offline`, or pass a local model directory"
    )


def check_model_source(name: str | Path, key: str = "model") -> None:
    """Raise FileNotFoundError naming ``key`` and ``name`` when the model cannot be found.

    A local path must exist; a hub id offline must be in the Hugging Face cache. Online, the hub
    decides when the model loads.

    Example:
        >>> check_model_source("org/typo", key="guide.model")  # doctest: +SKIP
        FileNotFoundError: guide.model: model 'org/typo' not found locally and the hub is unreachable ...
    """
    name = str(name)
    path = Path(name).expanduser()
    if path.exists():
        return
    if looks_local(name):
        raise FileNotFoundError(f"{_prefix(key)}model directory {name} not found")
    if hub_offline() and not _in_hub_cache(name):
        raise FileNotFoundError(missing_model_message(name, key))
