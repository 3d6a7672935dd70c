"""Load a saved model that uses Winnow's modules (poolings, a lexical prior), trusting no other code.

sentence-transformers (>= 6) imports a ``modules.json`` class from outside its own package only under
``trust_remote_code=True``, which would also let a model folder run Python files of its own. Winnow's
modules are part of the installed package, so :func:`load_sentence_transformer` grants the flag only
to a local folder whose every foreign class is one of :data:`WINNOW_MODULES` and that can bring in
no code (no ``*.py`` file, no ``auto_map`` in any JSON file, which would let transformers fetch code
from another repository); anything else, hub ids included, loads as sentence-transformers decides.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WINNOW_MODULES = frozenset(
    {
        "retrieval.pooling.latent_attention.LatentAttentionPooling",
        "retrieval.pooling.multi_layer.MultiLayerPooling",
        "retrieval.pooling.bidirectional.BidirectionalAttention",
        "retrieval.lexical_prior.LexicalPrior",
    }
)


def model_folder(name: str) -> Path | None:
    """The folder of a model: a local directory, or its snapshot in the Hugging Face cache (None when
    neither holds a ``modules.json``)."""
    path = Path(name)
    if path.is_dir():
        return path if (path / "modules.json").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "modules.json")
    except ValueError:
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def module_types(folder: Path) -> list[str]:
    """The class paths that ``modules.json`` in ``folder`` names, and those of every ``Router``'s routes
    (its ``router_config.json``)."""
    entries = _read_json(folder / "modules.json")
    types = [str(entry.get("type", "")) for entry in entries]
    for entry in entries:
        if str(entry.get("type", "")).endswith(".Router"):
            config = folder / str(entry.get("path", "")) / "router_config.json"
            if config.is_file():
                types += [str(t) for t in (_read_json(config).get("types") or {}).values()]
    return types


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc


def uses_winnow_modules(name: str) -> bool:
    """Whether ``name`` is a local model folder whose pipeline needs a Winnow module and nothing else
    from outside sentence-transformers, and which carries no code (module doc)."""
    folder = Path(name)
    if not (folder / "modules.json").is_file():
        return False
    foreign = [t for t in module_types(folder) if not t.startswith("sentence_transformers.")]
    if not foreign or any(t not in WINNOW_MODULES for t in foreign):
        return False
    if any(folder.rglob("*.py")):
        return False
    for path in folder.rglob("*.json"):  # config.json, tokenizer_config.json, processor configs...
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        if isinstance(content, dict) and "auto_map" in content:
            return False
    return True


def trust_kwargs(name: str) -> dict[str, Any]:
    """``{"trust_remote_code": True}`` when :func:`uses_winnow_modules`, else nothing."""
    return {"trust_remote_code": True} if uses_winnow_modules(name) else {}


def load_sentence_transformer(name: str, **kwargs: Any) -> Any:
    """``SentenceTransformer(name, **kwargs)``, with Winnow's pooling modules allowed (module doc).

    Example:
        >>> model = load_sentence_transformer("runs/models/dense-latent")  # doctest: +SKIP
    """
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(name, **{**trust_kwargs(name), **kwargs})


def load_sparse_encoder(name: str, **kwargs: Any) -> Any:
    """``SparseEncoder(name, **kwargs)``, with Winnow's modules (a lexical prior) allowed (module doc)."""
    from sentence_transformers import SparseEncoder

    return SparseEncoder(name, **{**trust_kwargs(name), **kwargs})
