"""What every benchmark writes with ``--json``: the command that produced it, then its figures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from indexes.io import write_json_atomic


def command_line() -> str:
    """The benchmark's command as a user would type it (``python bench/NAME.py ARGS``)."""
    return " ".join(["python", *sys.argv])


def save_record(path: str | Path, **figures: Any) -> None:
    """Write ``{"command": ..., **figures}`` to ``path`` atomically (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"command": command_line(), **figures})
