"""Atomic on-disk artefacts: every index, model or export is a directory with a ``meta.json``.

Files are written into a hidden temporary sibling directory (``.NAME.tmp-PID-XXXX``); ``meta.json``
is written last, the files are flushed to disk, and the directory then replaces ``NAME`` in one step
(Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames through ``.NAME.old-PID-XXXX``). A save
killed at any point leaves the old artefact, the new one, or a complete one beside a missing ``NAME``
that :func:`recover` puts back when the folder is next opened; never a half-written one.

Every artefact's ``meta.json`` names its ``kind`` (``faiss``, ``model`` ...) and that kind's
``family`` (``index``, ``model``, ``export``): a folder is only ever replaced by an artefact of its
own family, so writing an index over a trained model (or the reverse) is refused instead of deleting it.

Example:
    >>> check_output("runs/my-index", "index")  # at start-up, before any expensive work
    >>> with atomic_directory("runs/my-index", family="index") as tmp:
    ...     write_files(tmp)
    ...     write_meta(tmp, "faiss", dim=384)
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

import numpy as np

from indexes import recovery
from indexes.recovery import recover

logger = logging.getLogger(__name__)

META_FILE = "meta.json"
FORMAT_VERSION = 1

#: The family of every artefact kind; an output folder is only replaced by an artefact of its family.
KIND_FAMILIES: dict[str, str] = {
    "faiss": "index",
    "inverted": "index",
    "lucene-impact": "index",
    "lucene-bm25": "index",
    "milvus": "index",
    "milvus-hybrid": "index",
    "hybrid": "index",
    "reranked": "index",
    "model": "model",
    "onnx-encoder": "model",
    "onnx-cross-encoder": "model",
    "opensearch-bulk": "export",
}
FAMILIES = ("index", "model", "export")


def family_of(kind: str) -> str:
    """The family (``index``, ``model``, ``export``) of an artefact ``kind``.

    Raises:
        ValueError: ``kind`` is not a kind Winnow writes.
    """
    try:
        return KIND_FAMILIES[kind]
    except KeyError:
        raise ValueError(
            f"unknown artefact kind {kind!r}; expected one of {', '.join(KIND_FAMILIES)}"
        ) from None


def _meta_family(meta: Any) -> str | None:
    """The family a parsed ``meta.json`` declares (or that its kind implies); None when unknown."""
    if not isinstance(meta, dict):
        return None
    return meta.get("family") or KIND_FAMILIES.get(str(meta.get("kind")))


def check_output(target: str | Path, family: str | None = None) -> Path:
    """Check that ``target`` may receive an artefact of ``family``, before any expensive work starts.

    ``target`` may be absent, an empty directory, or a Winnow artefact (holding ``meta.json``) of the
    same family: a model folder is never replaced by an index, nor an index by a model.

    Args:
        target: the output directory.
        family: ``index``, ``model`` or ``export``; ``None`` checks only that ``target`` is an artefact.

    Returns:
        ``target`` as a path.

    Raises:
        FileExistsError: ``target`` is a file, a non-empty folder without ``meta.json``, or an artefact
            of another family; the message names both.

    Example:
        >>> check_output("runs/models/dense", "model")
    """
    target = Path(target)
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown artefact family {family!r}; expected one of {', '.join(FAMILIES)}")
    if not target.exists():
        return target
    if not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; choose another output directory")
    if not any(target.iterdir()):
        return target
    meta_path = target / META_FILE
    if not meta_path.is_file():
        raise FileExistsError(
            f"{target} exists, is not empty and holds no {META_FILE}: refusing to overwrite it; "
            "choose another output directory"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileExistsError(
            f"{meta_path} is not valid JSON ({exc}): refusing to overwrite {target}; "
            "choose another output directory"
        ) from exc
    existing = _meta_family(meta)
    if family is not None and existing != family:
        kind = meta.get("kind") if isinstance(meta, dict) else None
        raise FileExistsError(
            f"{target} holds {_article(existing or 'folder of unknown family')} ({META_FILE} kind "
            f"{kind!r}): refusing to replace it with a new {family}; choose another output directory"
        )
    return target


@contextmanager
def atomic_directory(target: str | Path, family: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block finishes without error.

    The block must write ``meta.json`` (:func:`write_meta`) last. ``target`` is replaced only when it is
    absent, empty, or an artefact of the same family as the one written (:func:`check_output`): checked
    on entry when ``family`` is given, and always before the replacement.

    Args:
        target: the artefact directory.
        family: ``index``, ``model`` or ``export``: check ``target`` on entry, before the block's work.
    """
    target = Path(target)
    check_output(target, family)
    started = time.time()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        if not (tmp / META_FILE).exists():
            raise RuntimeError(f"internal error: {META_FILE} was not written for {target}")
        written = json.loads((tmp / META_FILE).read_text(encoding="utf-8"))
        check_output(target, _meta_family(written))
        recovery.fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    recovery.crash_point("written")
    if not target.exists():
        os.replace(tmp, target)
    elif recovery.exchange(tmp, target):
        recovery.crash_point("exchanged")
        recovery.discard(tmp)  # now the previous artefact
    else:
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        recovery.crash_point("moved-old")
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        recovery.crash_point("moved-new")
        recovery.discard(old)
    recovery.fsync(target.parent)
    recovery.clean_stale(target, started)
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
META_HEADER_KEYS = ("kind", "family", "format_version", "created_at", "created_by")


def meta_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The caller's fields of a ``meta.json`` (what to pass to :func:`write_meta` to carry them over)."""
    return {k: v for k, v in meta.items() if k not in META_HEADER_KEYS}


def write_meta(directory: str | Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Write ``meta.json`` (kind, its family, format version, creation time and command, plus ``fields``).

    A field holding a numpy array is saved beside it as ``KEY.npy`` and recorded by that file name
    (:func:`meta_array` reads it back).

    Raises:
        ValueError: ``kind`` is not in :data:`KIND_FAMILIES`.
    """
    family = family_of(kind)
    for key, value in list(fields.items()):
        if isinstance(value, np.ndarray):
            path = Path(directory) / f"{key}.npy"
            if path.exists():
                raise ValueError(f"meta field {key!r}: {path} exists already; choose another key")
            np.save(path, value, allow_pickle=False)
            fields[key] = path.name
    meta = {
        "kind": kind,
        "family": family,
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        **fields,
    }
    write_json_atomic(Path(directory) / META_FILE, meta)
    return meta


def read_meta(directory: str | Path, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read ``meta.json`` from ``directory``; check its kind is one of ``kinds`` when given.

    A ``directory`` missing after an interrupted save is restored first (:func:`recover`).

    Raises:
        FileNotFoundError: no ``meta.json``.
        ValueError: invalid JSON, no ``kind``, a kind outside ``kinds``, a family that does not match
            the kind, or a newer format version; the message names the file.
    """
    recover(directory)
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not a saved Winnow artefact")
    meta = read_json_file(path, dict)
    kind = meta.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError(
            f"{path}: no 'kind' key (got {kind!r}); expected one of {', '.join(kinds or KIND_FAMILIES)}"
        )
    if kinds is not None and kind not in kinds:
        raise ValueError(f"{path}: kind is {kind!r}; expected one of {', '.join(kinds)}")
    family = meta.get("family")
    if family is not None and kind in KIND_FAMILIES and family != KIND_FAMILIES[kind]:
        raise ValueError(
            f"{path}: family {family!r} does not match kind {kind!r} (a {KIND_FAMILIES[kind]}); "
            "the file was edited or damaged"
        )
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise ValueError(f"{path}: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {version} is newer than this Winnow understands ({FORMAT_VERSION}); "
            "upgrade winnow"
        )
    return meta


def require_files(directory: str | Path, meta: dict[str, Any], names: tuple[str, ...]) -> None:
    """Raise FileNotFoundError naming the first of ``names`` missing from ``directory`` and the kind
    its ``meta.json`` claims (a kind that does not match the files)."""
    for name in names:
        if not (Path(directory) / name).exists():
            raise FileNotFoundError(
                f"{Path(directory) / name} not found: {META_FILE} says kind {meta.get('kind')!r}, "
                f"which needs {', '.join(names)}"
            )


def meta_value(directory: str | Path, meta: dict[str, Any], key: str, cast: Callable[[Any], Any]) -> Any:
    """``cast(meta[key])``, or a ValueError naming ``meta.json``, the key and what it holds."""
    path = Path(directory) / META_FILE
    if key not in meta:
        raise ValueError(f"{path}: missing key {key!r} (kind {meta.get('kind')!r})")
    try:
        return cast(meta[key])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {key} = {meta[key]!r} is not a valid {cast.__name__}") from exc


def meta_array(directory: str | Path, meta: dict[str, Any], key: str) -> np.ndarray:
    """The array field ``key`` that :func:`write_meta` saved beside ``meta.json``, or an error naming
    the key and the file."""
    name = meta_value(directory, meta, key, str)
    path = Path(directory) / name
    if Path(name).name != name or not path.is_file():
        raise FileNotFoundError(f"{path} not found: {Path(directory) / META_FILE} names it for {key!r}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from exc


def read_json_file(path: str | Path, expected: type = object) -> Any:
    """Parse a JSON file of an artefact, or raise a ValueError naming it, the line and what is wrong
    (truncated or damaged files), or that it holds something other than ``expected``."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path} not found") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} (truncated or damaged)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not isinstance(value, expected):
        raise ValueError(f"{path}: expected a JSON {expected.__name__}; got {type(value).__name__}")
    return value


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
