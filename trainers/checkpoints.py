"""The ``checkpoint-<step>`` folders a trainer writes into its ``output_dir``."""

from __future__ import annotations

from pathlib import Path


def checkpoint_dirs(checkpoints: str | Path) -> list[Path]:
    """The checkpoint folders in ``checkpoints``, oldest (lowest step) first."""
    return sorted(Path(checkpoints).glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def latest_checkpoint(checkpoints: str | Path) -> str | None:
    """The newest checkpoint folder (what ``--resume`` continues), or ``None``."""
    found = checkpoint_dirs(checkpoints)
    return str(found[-1]) if found else None
