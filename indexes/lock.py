"""Advisory file locks (``fcntl.flock``) that let several processes share caches and output folders.

A lock is a small file held open with an exclusive ``flock``; the kernel releases it when the holder
exits, however it exits, so a killed process never leaves a stale lock behind. The lock file is
removed on release; a process that locked a file another one had just removed notices (the path no
longer names the file it holds) and locks again, so removal never lets two holders in.

Locks are re-entrant within one thread: taking a lock the thread already holds (say the command line
locks an output folder and the save underneath locks it again) nests instead of failing; another
thread or process waits (or fails, for a non-blocking lock).

Example:
    >>> with output_lock("runs/index-scifact"):  # fails at once if another process writes there
    ...     build_and_save()
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


class LockBusyError(OSError):
    """Another process holds the lock (raised only by non-blocking locks)."""


_held: dict[tuple[Path, int], tuple[int, int]] = {}  # (lock path, thread) -> (descriptor, depth)
_held_guard = threading.Lock()


def _acquire(path: Path, blocking: bool, on_wait: Callable[[], None] | None) -> int | None:
    """Open and lock ``path``; the descriptor, or ``None`` when it is busy and ``blocking`` is false."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not blocking:
                    os.close(fd)
                    return None
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file while we waited for it: lock the new one


@contextmanager
def file_lock(
    path: str | Path,
    *,
    blocking: bool = True,
    busy_message: str = "",
    on_wait: Callable[[], None] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive lock on the file ``path`` (created if missing, removed on release).

    Args:
        path: the lock file.
        blocking: wait for another holder to finish; otherwise raise :class:`LockBusyError` at once.
        busy_message: the error message when the lock is busy (default: names the lock file).
        on_wait: called once before a blocking lock starts waiting for another holder.

    Raises:
        LockBusyError: ``blocking`` is false and another process holds the lock.
    """
    path = Path(os.path.abspath(path))
    key = (path, threading.get_ident())
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            _held[key] = (held[0], held[1] + 1)
    if held is None:
        fd = _acquire(path, blocking, on_wait)
        if fd is None:
            raise LockBusyError(
                busy_message or f"another process holds the lock file {path}; wait for it to finish"
            )
        with _held_guard:
            _held[key] = (fd, 1)
        logger.debug("locked %s", path)
    try:
        yield path
    finally:
        with _held_guard:
            fd, depth = _held.pop(key)
            if depth > 1:
                _held[key] = (fd, depth - 1)
        if depth == 1:
            path.unlink(missing_ok=True)  # removed while still locked: see _acquire
            os.close(fd)
            logger.debug("unlocked %s", path)


def output_lock_path(target: str | Path) -> Path:
    """The lock file of an output folder: ``.NAME.lock`` beside it."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.lock")


@contextmanager
def output_lock(target: str | Path) -> Iterator[Path]:
    """Hold the write lock of the output folder ``target`` for the duration of the block.

    Take it before any expensive work: a second process writing the same folder fails at once with
    :class:`LockBusyError` (an ``OSError``) naming the folder and the lock file, instead of both
    reporting success while the last rename silently wins.
    """
    lock = output_lock_path(target)
    busy = (
        f"another winnow process is writing {target} (lock file {lock}); "
        "wait for it to finish or choose another output"
    )
    with file_lock(lock, blocking=False, busy_message=busy):
        yield lock
