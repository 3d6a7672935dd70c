"""The training log (JSON lines) and a PNG of loss and dev nDCG@10 per step."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from trainers.dev import dev_score

logger = logging.getLogger(__name__)


def write_log(history: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in history), encoding="utf-8")


def plot_history(history: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Loss (left axis) and dev nDCG@10 (right axis) against the step; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    dev = [(e["step"], v) for e in history if "step" in e and (v := dev_score(e)) is not None]
    if not loss and not dev:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if loss:
        ax.plot(*zip(*loss, strict=True), color="tab:blue", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if dev:
        ax2 = ax.twinx()
        ax2.plot(*zip(*dev, strict=True), "o-", color="tab:orange", label="dev nDCG@10")
        ax2.set_ylabel("dev nDCG@10", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
