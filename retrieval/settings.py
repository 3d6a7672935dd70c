"""Process-wide settings read from the environment, and logging set-up for the CLI."""

from __future__ import annotations

import logging
import os
from pathlib import Path

DATA_ENV = "WINNOW_DATA"


def data_dir() -> Path | None:
    """The data root from ``$WINNOW_DATA`` (holding ``beir/<name>/`` and ``sts/<name>/``), if set."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def resolve_beir(path_or_name: str) -> Path:
    """A BEIR folder given as a path, or as a data set name looked up under ``$WINNOW_DATA/beir/``."""
    path = Path(path_or_name).expanduser()
    if path.exists():
        return path
    root = data_dir()
    if root is not None and (root / "beir" / path_or_name).is_dir():
        return root / "beir" / path_or_name
    where = f"${DATA_ENV}/beir ({root / 'beir'})" if root else f"${DATA_ENV} (not set)"
    raise FileNotFoundError(f"data set {path_or_name!r} is neither a folder nor a name under {where}")


def configure_logging(verbosity: int = 0) -> None:
    """INFO by default, DEBUG with -v, WARNING with -q; library chatter stays at WARNING."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("faiss.loader", "httpx", "urllib3", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
