"""Download BEIR data sets into a data root, in the layout every Winnow reader expects.

``fetch_beir("scifact", root)`` downloads the official BEIR zip, unpacks it into a hidden temporary
folder under ``root/beir/`` and renames it to ``root/beir/scifact/`` (``corpus.jsonl``,
``queries.jsonl``, ``qrels/*.tsv``) only once it is complete, so an interrupted download leaves nothing
half-written. A data set that is already there is not downloaded again.

Example:
    >>> from retrieval.download import fetch_beir, list_beir
    >>> path, downloaded = fetch_beir("scifact", "data")
    >>> list_beir("data")
    ['scifact']
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_DATASETS = (
    "arguana",
    "climate-fever",
    "cqadupstack",
    "dbpedia-entity",
    "fever",
    "fiqa",
    "hotpotqa",
    "msmarco",
    "nfcorpus",
    "nq",
    "quora",
    "scidocs",
    "scifact",
    "trec-covid",
    "webis-touche2020",
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CHUNK = 1 << 20

Fetcher = Callable[[str, Path, bool], None]


class DownloadError(OSError):
    """A data set could not be downloaded (network, HTTP or a bad archive)."""


def check_name(name: str, url: str | None = None) -> None:
    """Reject names that are not a plain folder name, and unknown names unless ``url`` is given."""
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"data set name {name!r} is not valid: expected letters, digits, '.', '_' or '-'")
    if url is None and name not in BEIR_DATASETS:
        raise ValueError(
            f"unknown BEIR data set {name!r}; expected one of: {', '.join(BEIR_DATASETS)} "
            "(or give the zip's URL)"
        )


def download_file(url: str, target: Path, progress: bool = True) -> None:
    """Stream ``url`` (http(s):// or file://) into ``target``, with a progress bar in bytes."""
    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, disable=not progress
        ) as bar:
            while block := response.read(CHUNK):
                out.write(block)
                bar.update(len(block))


def _extract(archive: Path, into: Path) -> None:
    """Unpack ``archive`` into ``into``, refusing members that would land outside it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            base = into.resolve()
            for member in zf.namelist():
                if not (into / member).resolve().is_relative_to(base):
                    raise ValueError(f"{archive}: member {member!r} would be written outside {into}")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a valid zip archive ({exc})") from exc


def _dataset_folder(unpacked: Path, name: str, source: str) -> Path:
    """The unpacked folder holding the data set: ``NAME/`` in the zip, or the zip's root."""
    for candidate in (unpacked / name, unpacked):
        if (candidate / "corpus.jsonl").is_file() or any(candidate.glob("*/corpus.jsonl")):
            return candidate
    raise DownloadError(f"{source}: the archive holds no {name}/corpus.jsonl (not a BEIR data set zip)")


def is_beir_folder(path: Path) -> bool:
    """A BEIR folder: ``corpus.jsonl``, or sub-folders that have one (CQADupStack's forums)."""
    return path.is_dir() and ((path / "corpus.jsonl").is_file() or any(path.glob("*/corpus.jsonl")))


def fetch_beir(
    name: str,
    root: str | Path,
    url: str | None = None,
    progress: bool = True,
    fetch: Fetcher | None = None,
) -> tuple[Path, bool]:
    """Download BEIR data set ``name`` into ``root/beir/name/`` unless it is there already.

    Args:
        name: a BEIR data set, e.g. ``scifact`` (see :data:`BEIR_DATASETS`).
        root: the data root (``beir/NAME/`` folders live under it).
        url: the zip to download (default: the official BEIR URL, :data:`BEIR_URL`).
        progress: show a progress bar.
        fetch: ``fetch(url, target_file, progress)``; default :func:`download_file` (urllib).

    Returns:
        ``(folder, downloaded)``; ``downloaded`` is False when the folder already existed.

    Raises:
        DownloadError: the download failed; the message names the URL and how to use a local copy.
    """
    check_name(name, url)
    target = Path(root).expanduser() / "beir" / name
    if target.exists():
        if not is_beir_folder(target):
            raise FileExistsError(f"{target} exists but holds no corpus.jsonl; remove it or fetch elsewhere")
        return target, False
    url = url or BEIR_URL.format(name=name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
    try:
        archive = tmp / f"{name}.zip"
        try:
            (fetch or download_file)(url, archive, progress)
        except OSError as exc:
            raise DownloadError(
                f"could not download {name} from {url} ({exc}); to use a local copy, pass --data-dir DIR "
                f"or set WINNOW_DATA=DIR, with the data set in DIR/beir/{name}/"
            ) from exc
        logger.info("unpacking %s", archive)
        _extract(archive, tmp / "unpacked")
        os.replace(_dataset_folder(tmp / "unpacked", name, url), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %s", target)
    return target, True


def list_beir(root: str | Path) -> list[str]:
    """Names of the BEIR data sets under ``root/beir/``, sorted (hidden temporary folders skipped)."""
    folder = Path(root).expanduser() / "beir"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and is_beir_folder(p))
