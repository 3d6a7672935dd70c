"""The ``checkpoint-<step>`` folders a trainer writes into its ``output_dir``, and which are complete.

The trainer writes a checkpoint's weights first and ``trainer_state.json`` last, so a run killed
while writing one leaves a folder that cannot be resumed from; :func:`latest_checkpoint` skips those.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from retrieval.model_files import check_model_folder, weight_files

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"


def checkpoint_dirs(checkpoints: str | Path) -> list[Path]:
    """The checkpoint folders in ``checkpoints``, oldest (lowest step) first."""
    found = [p for p in Path(checkpoints).glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def incomplete_reason(checkpoint: str | Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (no or damaged ``trainer_state.json``, no or damaged
    weights), or ``None`` when it is complete."""
    checkpoint = Path(checkpoint)
    state = checkpoint / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE}"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return f"{TRAINER_STATE} is damaged"
    if not weight_files(checkpoint):
        return "no model weights (*.safetensors, *.bin)"
    try:
        check_model_folder(checkpoint)
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


def complete_checkpoints(checkpoints: str | Path) -> list[Path]:
    """The complete checkpoint folders in ``checkpoints``, oldest first; incomplete ones (a run killed
    while writing one) are skipped with a warning naming them."""
    complete = []
    for checkpoint in checkpoint_dirs(checkpoints):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            complete.append(checkpoint)
        else:
            logger.warning("skipping incomplete checkpoint %s: %s", checkpoint, reason)
    return complete


def latest_checkpoint(checkpoints: str | Path) -> str | None:
    """The newest complete checkpoint folder (what ``--resume`` continues), or ``None``.

    Incomplete checkpoints (a run killed while writing one) are skipped with a warning naming them.
    """
    for checkpoint in reversed(checkpoint_dirs(checkpoints)):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            return str(checkpoint)
        logger.warning("skipping incomplete checkpoint %s: %s", checkpoint, reason)
    return None
