"""The crash-safe steps under :func:`indexes.io.atomic_directory`: swapping a finished temporary folder
into place, flushing it to disk, and putting a folder back after a save was killed half-way.

A save writes ``.NAME.tmp-PID-XXXX`` beside ``NAME``. On Linux the two are swapped by one
``renameat2(RENAME_EXCHANGE)``; elsewhere ``NAME`` is first renamed to ``.NAME.old-PID-XXXX``, leaving a
moment without ``NAME`` that :func:`recover` repairs on the next open. Folders being discarded lose
their ``meta.json`` first, so a kill during deletion never leaves one that looks complete.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import glob
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

META_FILE = "meta.json"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old)-(?:(?P<pid>\d+)-)?[^.]*$")


def crash_point(step: str) -> None:
    """Nothing; marks the steps of a replacement (``written``: the new folder is complete;
    ``exchanged``: swapped in; ``moved-old`` / ``moved-new``: the two renames where there is no
    exchange) so that fault tests can kill the process exactly there."""


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux ``RENAME_EXCHANGE``); False where unsupported."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # this file system cannot exchange
        return False
    raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")


def fsync(path: Path) -> None:
    """Flush one file or directory to disk (best effort: a file system may not support it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` (and the directories) to disk before it is renamed into place."""
    for folder, _, files in os.walk(root):
        for name in files:
            fsync(Path(folder) / name)
        fsync(Path(folder))


def discard(path: Path) -> None:
    """Delete a directory, ``meta.json`` first, so that a kill half-way never leaves it looking complete."""
    (path / META_FILE).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def _leftovers(target: Path) -> list[tuple[Path, str, int | None]]:
    """``(path, "tmp" | "old", pid)`` of every temporary of ``target`` beside it."""
    if not target.parent.is_dir():
        return []
    found = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*-*"):
        match = _LEFTOVER.match(path.name)
        if match and match["name"] == target.name and path.is_dir():
            found.append((path, match["what"], int(match["pid"]) if match["pid"] else None))
    return found


def _running(pid: int | None) -> bool:
    """Whether another live process owns a temporary (its save may still be under way)."""
    if pid is None or pid == os.getpid() or sys.platform == "win32":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def recover(target: str | Path) -> Path | None:
    """Put back ``target`` when a save was killed after moving it away and before the new one landed.

    When ``target`` is missing and a complete temporary of it (one holding ``meta.json``) of a finished
    process lies beside it, the previous artefact (``.NAME.old-*``) is restored, else the newest
    complete new one (``.NAME.tmp-*``); a warning names it. Loaders call this through
    :func:`read_meta`.

    Returns:
        ``target`` when it was restored, else None.
    """
    target = Path(target)
    if target.exists():
        return None
    complete = [
        (path, what)
        for path, what, pid in _leftovers(target)
        if (path / META_FILE).is_file() and not _running(pid)
    ]
    complete.sort(key=lambda item: (item[1] == "old", item[0].stat().st_mtime), reverse=True)
    for path, what in complete:
        try:
            os.replace(path, target)
        except OSError:  # another process restored it first
            if target.exists():
                return target
            continue
        logger.warning(
            "%s was missing after an interrupted save; restored the %s artefact from %s",
            target,
            "previous" if what == "old" else "newly written",
            path.name,
        )
        return target
    return None


def clean_stale(target: Path, started: float) -> None:
    """Remove temporaries of ``target`` left by killed saves that began before this one."""
    for path, _, pid in _leftovers(target):
        try:
            stale = path.stat().st_mtime < started and not _running(pid)
        except OSError:
            continue
        if stale:
            logger.info("removing %s, left by an interrupted save", path)
            discard(path)
