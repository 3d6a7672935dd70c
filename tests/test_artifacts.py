"""Artefact folders: a model is never replaced by an index (nor the reverse), damaged files are named
in one line, and an index is never searched with another model than the one that built it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes.factory import load_index
from indexes.faiss_index import FaissIndex
from indexes.inverted import InvertedIndex
from indexes.io import atomic_directory, check_output, meta_array, read_meta, write_meta
from retrieval.cli import main
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever
from tests.conftest import QUERIES, build_tiny_model, write_beir


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def model_folder(path: Path) -> Path:
    """A trained-model folder as ``winnow train`` writes it (weights, log, ``meta.json`` of kind model)."""
    with atomic_directory(path, family="model") as tmp:
        (tmp / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
        (tmp / "training_log.jsonl").write_text('{"loss": 1.0}\n')
        write_meta(tmp, "model", model_type="dense", steps=2)
    return path


def faiss_folder(path: Path) -> Path:
    index = FaissIndex(4, "Flat", device="cpu")
    index.add(np.eye(4, dtype=np.float32), list("abcd"))
    return index.save(path)


def test_meta_records_the_family_of_every_kind(tmp_path) -> None:
    assert read_meta(model_folder(tmp_path / "m"))["family"] == "model"
    assert read_meta(faiss_folder(tmp_path / "ix"))["family"] == "index"
    with pytest.raises(ValueError, match="unknown artefact kind 'nonsense'; expected one of faiss"):
        write_meta(tmp_path, "nonsense")


def test_an_index_never_replaces_a_model_nor_a_model_an_index(tmp_path) -> None:
    model = model_folder(tmp_path / "model")
    index = faiss_folder(tmp_path / "index")
    before = {"model": tree_digest(model), "index": tree_digest(index)}
    with pytest.raises(FileExistsError, match=r"model .*kind 'model'.*replace it with a new index"):
        faiss_folder(model)
    with pytest.raises(FileExistsError, match=r"holds an index .*kind 'faiss'.*replace it with a new model"):
        model_folder(index)
    # without an announced family, the written meta.json decides, before anything is replaced
    with (
        pytest.raises(FileExistsError, match="replace it with a new model"),
        atomic_directory(index) as tmp,
    ):
        write_meta(tmp, "model")
    assert {"model": tree_digest(model), "index": tree_digest(index)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "model"]  # no temporaries left
    faiss_folder(index)  # the same family replaces as before
    assert check_output(tmp_path / "absent", "index") == tmp_path / "absent"


def test_winnow_index_refuses_a_model_folder_before_loading_a_model(
    tmp_path, tiny_beir, monkeypatch, capsys
) -> None:
    model = model_folder(tmp_path / "model")
    before = tree_digest(model)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output was checked")

    monkeypatch.setattr("retrieval.encoders.load_encoder", no_model)  # what model_retriever calls
    argv = ["index", "--model", "m", "--corpus", str(tiny_beir), "--output", str(model)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("winnow index: error: ") and len(err.splitlines()) == 1
    assert str(model) in err and "kind 'model'" in err and "with a new index" in err
    assert tree_digest(model) == before


def test_winnow_train_refuses_an_index_folder_before_training(
    tmp_path, tiny_model_dir, capsys, monkeypatch
) -> None:
    write_beir(tmp_path / "data" / "beir" / "tiny", split="train")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {tiny_model_dir}\ncache_dir: {tmp_path / 'cache'}\ndata: {{dataset: tiny, split: train}}\n"
        "guide: null\nloss: {name: mnrl}\nmining: {enabled: false}\ntraining: {max_steps: 1}\n"
    )
    index = faiss_folder(tmp_path / "index")
    before = tree_digest(index)

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the output was checked")

    monkeypatch.setattr("trainers.dense.train_dense", no_training)
    monkeypatch.setattr("trainers.loop.run_training", no_training)
    argv = ["train", str(recipe), "--output", str(index), "--data-dir", str(tmp_path / "data")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("winnow train: error: ") and len(err.splitlines()) == 1
    assert str(index) in err and "kind 'faiss'" in err and "with a new model" in err
    assert tree_digest(index) == before
    assert not (tmp_path / "index.checkpoints").exists()


# -- damaged artefacts: one line naming the file ------------------------------------------------------
def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else b"\x00garbage\xff" * 8)


@pytest.mark.parametrize(
    ("file", "how", "error", "message"),
    [
        ("index.faiss", "truncate", ValueError, r"index\.faiss: not a readable faiss index .*truncated"),
        ("index.faiss", "garbage", ValueError, r"index\.faiss: not a readable faiss index"),
        ("ids.json", "truncate", ValueError, r"ids\.json: invalid JSON at line 1 .*truncated or damaged"),
        ("meta.json", "truncate", ValueError, r"meta\.json: invalid JSON at line"),
        ("index.faiss", "delete", FileNotFoundError, r"index\.faiss not found: meta\.json says kind 'faiss'"),
    ],
)
def test_a_damaged_faiss_folder_names_the_file(tmp_path, file, how, error, message) -> None:
    folder = faiss_folder(tmp_path / "ix")
    if how == "delete":
        (folder / file).unlink()
    else:
        damage(folder / file, how)
    with pytest.raises(error, match=message):
        load_index(folder)


def test_a_damaged_inverted_folder_names_the_file(tmp_path) -> None:
    index = InvertedIndex(5)
    index.add(np.eye(5, dtype=np.float32), list("abcde"))
    folder = index.save(tmp_path / "inv")
    damage(folder / "weights.npy", "truncate")
    with pytest.raises(ValueError, match=r"weights\.npy: not a readable \.npy array"):
        load_index(folder)


def test_a_meta_json_whose_kind_does_not_match_the_files_or_is_missing(tmp_path) -> None:
    folder = faiss_folder(tmp_path / "ix")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "kind": "inverted", "family": "index"}))
    with pytest.raises(FileNotFoundError, match=r"indptr\.npy not found: meta\.json says kind 'inverted'"):
        load_index(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "kind": "faiss", "family": "model"}))
    with pytest.raises(ValueError, match=r"family 'model' does not match kind 'faiss'"):
        load_index(folder)
    del meta["kind"]
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"meta\.json: no 'kind' key \(got None\); expected one of faiss"):
        load_index(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "kind": "annoy"}))
    with pytest.raises(ValueError, match=r"kind 'annoy' is not an index; expected one of faiss"):
        load_index(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "kind": "faiss", "dim": "four"}))
    with pytest.raises(ValueError, match=r"meta\.json: dim = 'four' is not a valid int"):
        load_index(folder)


def test_a_damaged_index_reaches_the_cli_as_one_line(tmp_path, tiny_encoder, tiny_beir, capsys) -> None:
    folder = Retriever(tiny_encoder).build(tiny_beir, progress=False).save(tmp_path / "ix")
    damage(folder / "index.faiss", "truncate")
    assert main(["search", "--index-dir", str(folder), "--query", "cat"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "index.faiss: not a readable faiss index" in err


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("model.safetensors", "truncate", r"model\.safetensors: .* \(truncated"),
        ("modules.json", "truncate", r"modules\.json: invalid JSON at line \d+"),
        ("modules.json", '{"path": ""}', r"modules\.json: expected a JSON list of module objects"),
        ("modules.json", '[{"idx": 0, "path": "9_Gone", "type": "x"}]', r"9_Gone not found: .*modules\.json"),
    ],
)
def test_a_damaged_model_folder_names_the_file(tmp_path, tiny_model_dir, file, edit, message, capsys) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    if edit == "truncate":
        damage(model / file, "truncate")
    else:
        (model / file).write_text(edit)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_encoder(model, device="cpu")
    write_beir(tmp_path / "beir")
    argv = [
        "index",
        "--model",
        str(model),
        "--corpus",
        str(tmp_path / "beir"),
        "--output",
        str(tmp_path / "ix"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and file in err


# -- the model that built an index is the one that searches it ---------------------------------------
@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("other"), seed=1)  # same dimension, other weights


def test_an_index_refuses_another_model_of_the_same_dimension(
    tiny_encoder, tiny_model_dir, other_model, tiny_beir, tmp_path, caplog
) -> None:
    folder = Retriever(tiny_encoder).build(tiny_beir, progress=False).save(tmp_path / "ix")
    meta = read_meta(folder)
    assert meta["encoder_fingerprint"].startswith("sha256:")
    other = load_encoder(other_model, device="cpu")
    assert other.dim == tiny_encoder.dim
    with pytest.raises(ValueError, match=r"built with encoder .* not with the given encoder .*force=True"):
        Retriever.load(folder, encoder=other)
    with caplog.at_level("WARNING", logger="retrieval.retriever"):
        forced = Retriever.load(folder, encoder=other, force=True)
    assert forced.encoder is other and "searching anyway" in caplog.text
    # the same model from another place (a copy) is the same model
    copy = load_encoder(shutil.copytree(tiny_model_dir, tmp_path / "copy"), device="cpu")
    assert (
        Retriever.load(folder, encoder=copy).search(QUERIES, k=2).ids
        == Retriever.load(folder).search(QUERIES, k=2).ids
    )


def test_an_index_refuses_its_model_retrained_in_place(tiny_beir, other_model, tmp_path) -> None:
    model = Path(shutil.copytree(other_model, tmp_path / "model"))
    folder = (
        Retriever(load_encoder(model, device="cpu")).build(tiny_beir, progress=False).save(tmp_path / "ix")
    )
    Retriever.load(folder)  # unchanged: fine
    build_tiny_model(tmp_path / "retrained", seed=2)
    shutil.copy(tmp_path / "retrained" / "st" / "model.safetensors", model / "model.safetensors")
    with pytest.raises(ValueError, match=r"has changed since the index was built .*retrained or replaced"):
        Retriever.load(folder)
    assert len(Retriever.load(folder, force=True).index) == 6


def test_array_fields_of_meta_are_saved_beside_it(tmp_path) -> None:
    table = np.arange(5, dtype=np.int64)
    meta = write_meta(tmp_path, "inverted", counts=table, n=3)
    assert meta["counts"] == "counts.npy" and json.loads((tmp_path / "meta.json").read_text())["n"] == 3
    np.testing.assert_array_equal(meta_array(tmp_path, meta, "counts"), table)
    with pytest.raises(ValueError, match="counts.npy exists already"):  # never over another file
        write_meta(tmp_path, "inverted", counts=table)
    with pytest.raises(ValueError, match="missing key 'other'"):
        meta_array(tmp_path, meta, "other")
    (tmp_path / "counts.npy").unlink()
    with pytest.raises(FileNotFoundError, match="counts.npy not found: .*names it for 'counts'"):
        meta_array(tmp_path, meta, "counts")
    with pytest.raises(FileNotFoundError, match="names it for 'counts'"):
        meta_array(tmp_path, {**meta, "counts": "../counts.npy"}, "counts")
