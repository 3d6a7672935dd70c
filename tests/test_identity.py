"""A local model folder trained again in place must not be served from its old caches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embed import embed_corpus
from retrieval.embedding_cache import EmbeddingCache
from retrieval.encoders import load_encoder
from retrieval.identity import model_identity
from tests.conftest import build_tiny_model


def retrain_in_place(model_dir: Path, scratch: Path, seed: int) -> None:
    """Overwrite ``model_dir`` with another random model, as ``winnow train --output`` would."""
    other = build_tiny_model(scratch / f"seed{seed}", seed=seed)
    shutil.copytree(other, model_dir, dirs_exist_ok=True)
    for file in model_dir.rglob("*.safetensors"):  # a later write, even within the clock's resolution
        stat = file.stat()
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_hub_ids_and_other_names_are_unchanged() -> None:
    assert (
        model_identity("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert model_identity("bm25-not-a-folder") == "bm25-not-a-folder"


def test_local_folder_identity_follows_its_model_files(model_dir: Path, tmp_path: Path) -> None:
    first = model_identity(str(model_dir))
    assert first.startswith(f"{model_dir}@") and len(first.split("@")[-1]) == 12
    assert model_identity(str(model_dir)) == first
    (model_dir / "training_log.jsonl").write_text("{}\n")  # logs and plots written beside the model
    (model_dir / "README.md").write_text("notes")
    (model_dir / "checkpoint-10").mkdir()
    (model_dir / "checkpoint-10" / "model.safetensors").write_bytes(b"x")
    assert model_identity(str(model_dir)) == first
    retrain_in_place(model_dir, tmp_path, seed=1)
    assert model_identity(str(model_dir)) != first


def test_folder_without_model_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("no model here")
    with pytest.raises(ValueError, match="holds no model files"):
        model_identity(str(tmp_path))


def test_embedding_cache_does_not_serve_a_retrained_model(model_dir: Path, tmp_path: Path) -> None:
    texts = ["cat on a rock", "fish in the sea"]
    before = EmbeddingCache(load_encoder(model_dir, device="cpu"), tmp_path / "cache").get(
        texts, "document", progress=False
    )
    retrain_in_place(model_dir, tmp_path, seed=1)
    encoder = load_encoder(model_dir, device="cpu")
    after = EmbeddingCache(encoder, tmp_path / "cache").get(texts, "document", progress=False)
    np.testing.assert_allclose(after, encoder.encode_documents(texts), atol=1e-5)
    assert not np.allclose(after, before, atol=1e-3)


def test_embed_corpus_does_not_resume_a_retrained_model(
    model_dir: Path, tmp_path: Path, tiny_beir: Path
) -> None:
    out = tmp_path / "emb"
    before = np.array(
        embed_corpus(load_encoder(model_dir, device="cpu"), tiny_beir, out_dir=out, progress=False).vectors
    )
    retrain_in_place(model_dir, tmp_path, seed=1)
    encoder = load_encoder(model_dir, device="cpu")
    after = embed_corpus(encoder, tiny_beir, out_dir=out, progress=False)
    fresh = embed_corpus(encoder, tiny_beir, progress=False)
    np.testing.assert_allclose(np.asarray(after.vectors), np.asarray(fresh.vectors), atol=1e-5)
    assert not np.allclose(np.asarray(after.vectors), before, atol=1e-3)


def test_teacher_scores_are_keyed_by_the_retrained_model(model_dir: Path, tmp_path: Path) -> None:
    from trainers.teachers import DenseTeacher

    def teacher_name() -> str:
        return DenseTeacher(EmbeddingCache(load_encoder(model_dir, device="cpu"), tmp_path / "c")).name

    before = teacher_name()
    retrain_in_place(model_dir, tmp_path, seed=2)
    assert teacher_name() != before and teacher_name().startswith(f"dense:{model_dir}@")
