"""What a model name means to a cache: a hub id stays as it is, a local folder gets a file digest.

Embedding caches, teacher-score stores, mined negatives and resumable corpus embeddings are keyed by
the model that produced them. A hub id names a published model, but a local folder such as
``runs/models/teacher`` can be trained again in place; keyed by its path alone, every cache would
hand back the old model's vectors and scores. :func:`model_identity` appends a digest of the
folder's model files (relative path, size and modification time of weights, configs and
vocabularies), so retraining, or copying the folder elsewhere, keys fresh caches.

Example:
    >>> model_identity("sentence-transformers/all-MiniLM-L6-v2")
    'sentence-transformers/all-MiniLM-L6-v2'
    >>> model_identity("runs/models/teacher")  # doctest: +SKIP
    'runs/models/teacher@3f9a0c1d2e4b'
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# Files that decide what a model computes; logs, plots and READMEs written beside them do not count.
MODEL_FILE_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".onnx", ".json", ".txt", ".model"})
IGNORED_FILES = frozenset({"train_seconds.txt"})


def model_identity(name: str) -> str:
    """``name`` for a hub id (or any name that is not a local path), else ``name@<12-hex digest>``.

    Args:
        name: a hub id, a local model folder or a single model file (an ONNX graph).

    Raises:
        ValueError: ``name`` is a local folder without any model file.
    """
    path = Path(name)
    if not path.exists():
        return name
    files = [path] if path.is_file() else sorted(_model_files(path))
    if not files:
        raise ValueError(f"model folder {name!r} holds no model files (any of {sorted(MODEL_FILE_SUFFIXES)})")
    digest = hashlib.sha1()
    for file in files:
        stat = file.stat()
        rel = file.name if file == path else file.relative_to(path).as_posix()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"{name}@{digest.hexdigest()[:12]}"


def _model_files(folder: Path) -> list[Path]:
    return [
        file
        for file in folder.rglob("*")
        if file.is_file()
        and file.suffix in MODEL_FILE_SUFFIXES
        and file.name not in IGNORED_FILES
        and not any(part.startswith(("checkpoint-", ".")) for part in file.relative_to(folder).parts)
    ]
