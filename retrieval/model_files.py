"""Checks of a local model folder's files before a framework reads them.

sentence-transformers and safetensors report a truncated weights file or a malformed ``modules.json``
with a traceback from deep inside their loaders; :func:`check_model_folder` reads only file headers
and small JSON files, and names the file and what is wrong, in one line.

Example:
    >>> check_model_folder("runs/models/dense")
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from indexes.io import read_json_file

WEIGHT_SUFFIXES = (".safetensors", ".bin")
_NOT_WEIGHTS = frozenset({"training_args.bin"})


def check_safetensors(path: str | Path) -> None:
    """Check that a ``.safetensors`` file is whole: its header parses and its tensors end at the file's end.

    Raises:
        ValueError: naming the file, its size and the size the header promises.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: {size} bytes, too short for a safetensors file (truncated)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError(
                f"{path}: header of {n} bytes does not fit in the file's {size} bytes "
                "(truncated or not a safetensors file)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: damaged safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path}: damaged safetensors header (not a JSON object)")
    ends = [
        int(t["data_offsets"][1])
        for name, t in header.items()
        if name != "__metadata__" and isinstance(t, dict) and "data_offsets" in t
    ]
    expected = 8 + n + max(ends, default=0)
    if expected != size:
        raise ValueError(
            f"{path}: {size} bytes but its header describes {expected} bytes of tensors "
            f"({'truncated' if size < expected else 'trailing data'})"
        )


def weight_files(folder: str | Path) -> list[Path]:
    """The weight files (``*.safetensors``, ``*.bin`` other than trainer arguments) under ``folder``."""
    return sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file() and p.suffix in WEIGHT_SUFFIXES and p.name not in _NOT_WEIGHTS
    )


def check_model_folder(folder: str | Path) -> None:
    """Check a local sentence-transformers / transformers model folder before loading it.

    ``modules.json`` must be a list of modules whose ``path`` folders exist, ``config.json`` must parse,
    and every ``.safetensors`` file must be whole (:func:`check_safetensors`).

    Raises:
        ValueError: naming the file and what is wrong.
        FileNotFoundError: a module folder that ``modules.json`` names is missing.
    """
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        modules = read_json_file(modules_file)
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise ValueError(f"{modules_file}: expected a JSON list of module objects")
        for i, module in enumerate(modules):
            if not isinstance(module.get("path"), str) or not isinstance(module.get("type"), str):
                raise ValueError(
                    f"{modules_file}: module {i} needs string 'path' and 'type' keys; got {module}"
                )
            if not (folder / module["path"]).is_dir():
                raise FileNotFoundError(
                    f"{folder / module['path']} not found: {modules_file} names it as module {i}"
                )
    for config in (folder / "config.json", *folder.glob("*/config.json")):
        if config.is_file():
            read_json_file(config)
    for weights in weight_files(folder):
        if weights.suffix == ".safetensors":
            check_safetensors(weights)
