"""Atomic on-disk artefacts: every index or embedding store is a directory with a ``meta.json``.

Files are written into a hidden temporary sibling directory; ``meta.json`` is written last and the
directory is renamed into place, so an interrupted save leaves either the old artefact or nothing,
never a half-written one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

META_FILE = "meta.json"
FORMAT_VERSION = 1


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block finishes without error.

    An existing ``target`` is replaced only when it is a Winnow artefact (holds ``meta.json``) or empty,
    so a typo in an output path never deletes unrelated files.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / META_FILE).exists():
        raise FileExistsError(
            f"{target} exists, is not empty and holds no {META_FILE}: refusing to overwrite it; "
            "choose another output directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if not (tmp / META_FILE).exists():
            raise RuntimeError(f"internal error: {META_FILE} was not written for {target}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    logger.debug("wrote %s", target)


def write_file_atomic(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a hidden temporary sibling of ``path`` (same suffix), then rename it to
    ``path``; a failed write leaves the old file or nothing, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    write_file_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


#: The keys :func:`write_meta` sets itself; :func:`meta_fields` leaves them out.
META_HEADER_KEYS = ("kind", "format_version", "created_at", "created_by")


def meta_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The caller's fields of a ``meta.json`` (what to pass to :func:`write_meta` to carry them over)."""
    return {k: v for k, v in meta.items() if k not in META_HEADER_KEYS}


def write_meta(directory: str | Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Write ``meta.json`` (kind, format version, creation time and command, plus ``fields``)."""
    meta = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        **fields,
    }
    write_json_atomic(Path(directory) / META_FILE, meta)
    return meta


def read_meta(directory: str | Path, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read ``meta.json`` from ``directory``; check its kind is one of ``kinds`` when given."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not a saved Winnow artefact")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if kinds is not None and meta.get("kind") not in kinds:
        raise ValueError(f"{path}: kind is {meta.get('kind')!r}; expected one of {', '.join(kinds)}")
    version = meta.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {version} is newer than this Winnow understands ({FORMAT_VERSION}); "
            "upgrade winnow"
        )
    return meta
