"""Helpers every benchmark shares: the command line, the JSON record, timing and logging."""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from indexes.io import write_json_atomic

T = TypeVar("T")


def command_line() -> str:
    """The running benchmark's command as a user would type it.

    Under ``python -m bench.NAME`` this is ``python -m bench.NAME ARGS``; a script run by its path
    gives ``python PATH ARGS``.

    Example:
        >>> print(f"# {command_line()}")
        # python -m bench.search_speed --n 20000
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["-m", spec.name] if spec is not None and spec.name else [sys.argv[0]]
    return shlex.join(["python", *program, *sys.argv[1:]])


def save_record(path: str | Path, **figures: Any) -> None:
    """Write ``{"command": command_line(), **figures}`` to ``path`` as JSON, atomically.

    Args:
        path: the JSON file (parent folders are created).
        figures: JSON-serialisable values, e.g. ``rows=[...]``.

    Example:
        >>> save_record("runs/bench/search_speed.json", rows=rows)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"command": command_line(), **figures})


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Call ``fn`` once; return the wall-clock seconds it took and its result.

    Example:
        >>> seconds, hits = timed(lambda: index.search(queries, 10))
    """
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def log_progress(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps (the table itself goes to stdout)."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
