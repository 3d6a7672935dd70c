"""Process-wide settings read from the environment, and logging set-up for the CLI."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

DATA_ENV = "WINNOW_DATA"
DEFAULT_DATA_ROOT = "data"
SHARED_DATA_ROOT = "../shared/data"


def data_root(explicit: str | Path | None = None) -> Path:
    """The data root (holding ``beir/<name>/``): the one place it is resolved.

    Resolution order: ``explicit`` (the CLI's ``--data-dir``), else ``$WINNOW_DATA``, else ``./data``
    relative to the current directory; when ``./data`` does not exist but ``../shared/data`` does (a
    data folder shared by several checkouts side by side), that one. The folder need not exist yet
    (``winnow data fetch`` creates ``./data``).
    Callers resolve it once and pass the path down; nothing below the CLI reads the environment for it.

    Args:
        explicit: a root given on the command line or by the caller; ``None`` or ``""``: not given.

    Returns:
        the root as an absolute path.

    Example:
        >>> data_root("/data/winnow")
        PosixPath('/data/winnow')
        >>> data_root(None)  # $WINNOW_DATA unset: ./data under the current directory  # doctest: +SKIP
        PosixPath('/home/me/project/data')
    """
    value = explicit or os.environ.get(DATA_ENV) or default_data_root()
    return Path(value).expanduser().resolve()


def default_data_root() -> Path:
    """``./data``, or ``../shared/data`` when only that one exists (see :func:`data_root`)."""
    local, shared = Path(DEFAULT_DATA_ROOT), Path(SHARED_DATA_ROOT)
    return shared if not local.exists() and shared.is_dir() else local


def _root_origin(root: Path) -> str:
    """Which setting a root most likely came from, for error messages."""
    env = os.environ.get(DATA_ENV)
    if env and Path(env).expanduser().resolve() == root:
        return f"${DATA_ENV}"
    default = default_data_root()
    if default.resolve() == root:
        return (
            f"default {default}"
            if default.is_absolute() or str(default).startswith("..")
            else f"default ./{default}"
        )
    return "--data-dir"


def resolve_beir(name_or_path: str | Path, root: Path | None = None) -> Path:
    """A BEIR folder given as a path, or as a data set name looked up as ``root/beir/<name>``.

    Args:
        name_or_path: an existing folder, or a data set name such as ``scifact``.
        root: the data root from :func:`data_root`; ``None`` resolves it here with no explicit root
            (``$WINNOW_DATA``, else ``./data``), for scripts that take no ``--data-dir``.

    Raises:
        FileNotFoundError: neither a folder nor a data set under the root; the message says where the
            root came from and how to fetch the data set.

    Example:
        >>> resolve_beir("scifact", data_root("/data/winnow"))  # doctest: +SKIP
        PosixPath('/data/winnow/beir/scifact')
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    root = data_root(None) if root is None else Path(root)
    candidate = root / "beir" / str(name_or_path)
    if candidate.is_dir():
        return candidate
    raise FileNotFoundError(
        f"data set {str(name_or_path)!r} not found: neither a folder nor {candidate} "
        f"(data root from {_root_origin(root.resolve())}); run `winnow data fetch {name_or_path}` "
        f"or point {DATA_ENV} at a local copy"
    )


HF_LIBRARIES = ("transformers", "sentence_transformers", "huggingface_hub", "datasets", "mteb")
QUIET_ENV = {  # read by the libraries when they are first imported
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
_state = {"progress": True}


def show_progress() -> bool:
    """Whether progress bars are wanted: False after ``configure_logging(-1)`` (``winnow -q``).

    Every progress bar of Winnow asks this, e.g. ``tqdm(..., disable=not (progress and show_progress()))``.
    """
    return _state["progress"]


def quiet_libraries() -> None:
    """Silence the Hugging Face libraries: no progress bars, logging at ERROR, no Python warnings.

    Libraries imported later read :data:`QUIET_ENV`; those already imported are switched off here.
    """
    _state["progress"] = False
    os.environ.update(QUIET_ENV)
    for name in HF_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.utils

        huggingface_hub.utils.disable_progress_bars()
    if "transformers" in sys.modules:
        import transformers.utils.logging

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_error()


def configure_logging(verbosity: int = 0) -> None:
    """INFO by default, DEBUG with -v; with -q (``verbosity < 0``) errors only and no progress bars.

    Library chatter stays at WARNING, or ERROR when quiet (see :func:`quiet_libraries`).
    """
    level = logging.DEBUG if verbosity > 0 else logging.ERROR if verbosity < 0 else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("faiss.loader", "httpx", "urllib3", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if verbosity < 0:
        quiet_libraries()
