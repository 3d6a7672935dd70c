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
META_FILE = "meta.json"  # a Winnow model folder's record of how it was made, not what it computes


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


#: Bytes read from each end (and the middle) of a large model file by :func:`model_fingerprint`.
SAMPLE_BYTES = 1 << 20


def model_fingerprint(name: str) -> str | None:
    """A digest of what a model computes, the same wherever the model lies; ``None`` when unknown.

    A local folder (or file) is digested by content: each model file's relative path and size, and
    its bytes (the first, middle and last MiB of files above 3 MiB), so a copy matches its original
    and a retrained model does not. A hub id gives ``rev:<commit>`` of its cached snapshot, or
    ``None`` when it is not in the Hugging Face cache (or is an in-memory model's label).

    Example:
        >>> model_fingerprint("runs/models/dense")  # doctest: +SKIP
        'sha256:5be0c2a3f1d94e07'
    """
    path = Path(name)
    if path.exists():
        files = [path] if path.is_file() else [f for f in sorted(_model_files(path)) if f.name != META_FILE]
        digest = hashlib.sha256()
        for file in files:
            size = file.stat().st_size
            rel = file.name if file == path else file.relative_to(path).as_posix()
            digest.update(f"{rel}\0{size}\n".encode())
            with file.open("rb") as f:
                if size <= 3 * SAMPLE_BYTES:
                    digest.update(f.read())
                    continue
                for offset in (0, size // 2, size - SAMPLE_BYTES):
                    f.seek(offset)
                    digest.update(f.read(SAMPLE_BYTES))
        return f"sha256:{digest.hexdigest()[:16]}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a hub id (an in-memory model's label, a malformed name)
        return None
    if isinstance(cached, str) and "/snapshots/" in Path(cached).as_posix():
        return "rev:" + Path(cached).as_posix().split("/snapshots/", 1)[1].split("/", 1)[0]
    return None
