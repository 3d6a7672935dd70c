"""Processes killed mid-save: an index save killed at each of its steps leaves a loadable index (the
previous one until the replacement, the new one after), and a training run killed while writing a
checkpoint resumes from the last complete one."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexes import recovery
from indexes.faiss_index import FaissIndex
from tests.conftest import write_beir
from trainers.checkpoints import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
KILLED = 17  # the exit status of a child killed at its crash point


def run_child(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter at the repository root; ``os._exit`` in it is a kill -9:
    no ``finally`` block, no clean-up."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


SAVE_AND_DIE = """
    import os, sys
    import numpy as np
    from indexes import recovery
    import indexes.faiss_index as fi

    folder, step, mode = sys.argv[1:4]
    if mode == "rename":
        recovery.exchange = lambda a, b: False  # a file system without RENAME_EXCHANGE

    def crash_point(name):
        if name == step:
            os._exit(17)

    recovery.crash_point = crash_point
    if step == "writing":  # killed while the files are written, before meta.json
        fi.write_meta = lambda *args, **kwargs: os._exit(17)
    index = fi.FaissIndex(4, "Flat", device="cpu")
    index.add(np.eye(4, dtype=np.float32)[::-1].copy(), ["w", "x", "y", "z"])
    index.save(folder)
"""

OLD_IDS = ["a", "b", "c", "d"]  # the old index: unit vector i is document OLD_IDS[i]
NEW_IDS = ["z", "y", "x", "w"]  # the new one holds the unit vectors in reverse order


def exchange_supported(tmp_path: Path) -> bool:
    (tmp_path / "p").mkdir()
    (tmp_path / "q").mkdir()
    try:
        return recovery.exchange(tmp_path / "p", tmp_path / "q")
    finally:
        (tmp_path / "p").rmdir()
        (tmp_path / "q").rmdir()


@pytest.mark.parametrize(
    ("mode", "step", "survivor"),
    [
        ("exchange", "writing", OLD_IDS),
        ("exchange", "written", OLD_IDS),
        ("exchange", "exchanged", NEW_IDS),
        ("rename", "written", OLD_IDS),
        ("rename", "moved-old", OLD_IDS),  # no folder at all until the next open restores it
        ("rename", "moved-new", NEW_IDS),
    ],
)
def test_an_index_save_killed_at_any_step_leaves_a_loadable_index(tmp_path, mode, step, survivor) -> None:
    if mode == "exchange" and not exchange_supported(tmp_path):
        pytest.skip("this file system has no atomic exchange")
    folder = tmp_path / "ix"
    old = FaissIndex(4, "Flat", device="cpu")
    old.add(np.eye(4, dtype=np.float32), OLD_IDS)
    old.save(folder)
    queries = np.eye(4, dtype=np.float32)
    expected = [[doc] for doc in survivor]

    child = run_child(SAVE_AND_DIE, str(folder), step, mode)
    assert child.returncode == KILLED, child.stderr
    assert folder.exists() == (step != "moved-old")
    assert any(p.name.startswith(".ix.") for p in tmp_path.iterdir())  # the kill left its temporaries

    loaded = FaissIndex.load(folder, device="cpu")
    assert loaded.search(queries, 1).ids == expected

    again = FaissIndex(4, "Flat", device="cpu")
    again.add(np.ones((1, 4), dtype=np.float32), ["n"])
    again.save(folder)  # the next save clears what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
    assert FaissIndex.load(folder, device="cpu").ids == ["n"]


def test_a_temporary_of_a_running_save_is_left_alone(tmp_path) -> None:
    folder = tmp_path / "ix"
    FaissIndex(4, "Flat", device="cpu").save(folder)
    busy = tmp_path / f".ix.tmp-{os.getppid()}-abcd1234"  # a live process (our parent) owns it
    busy.mkdir()
    (busy / "meta.json").write_text("{}")
    os.utime(busy, (0, 0))
    FaissIndex(4, "Flat", device="cpu").save(folder)
    assert busy.is_dir()
    dead = tmp_path / ".ix.old-999999999-abcd1234"  # no such process
    dead.mkdir()
    os.utime(dead, (0, 0))
    FaissIndex(4, "Flat", device="cpu").save(folder)
    assert not dead.exists()


# -- checkpoints -------------------------------------------------------------------------------------
def weights(path: Path, whole: bool = True) -> None:
    """A safetensors file with one float32 tensor; ``whole=False`` cuts its data short."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    data = struct.pack("<Q", len(header)) + header + bytes(16)
    path.write_bytes(data if whole else data[:-8])


def checkpoint(folder: Path, state: bool = True, whole: bool = True) -> Path:
    folder.mkdir(parents=True)
    weights(folder / "model.safetensors", whole)
    (folder / "modules.json").write_text("[]")
    if state:
        (folder / "trainer_state.json").write_text('{"global_step": 1}')
    return folder


def test_resume_skips_incomplete_checkpoints(tmp_path, caplog) -> None:
    good = checkpoint(tmp_path / "checkpoint-2")
    checkpoint(tmp_path / "checkpoint-10", whole=False)  # weights cut short
    checkpoint(tmp_path / "checkpoint-7", state=False)  # killed before trainer_state.json
    (tmp_path / "checkpoint-12").mkdir()  # killed before anything
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 12}')
    (tmp_path / "checkpoint-11").mkdir()
    (tmp_path / "checkpoint-11" / "trainer_state.json").write_text('{"global_st')
    with caplog.at_level("WARNING", logger="trainers.checkpoints"):
        assert latest_checkpoint(tmp_path) == str(good)
    for name, why in [
        ("checkpoint-12", "no model weights"),
        ("checkpoint-11", "trainer_state.json is damaged"),
        ("checkpoint-10", "truncated"),
        ("checkpoint-7", "no trainer_state.json"),
    ]:
        assert any(name in r.message and why in r.message for r in caplog.records), (name, caplog.text)
    assert latest_checkpoint(tmp_path / "none") is None


TRAIN_AND_DIE = """
    import os, sys
    from transformers.trainer_callback import TrainerState

    real = TrainerState.save_to_json

    def save_to_json(self, path):
        if "checkpoint-2" in path:  # the weights of checkpoint 2 are written, its state is not
            os._exit(17)
        return real(self, path)

    TrainerState.save_to_json = save_to_json
    from retrieval.cli import main

    sys.exit(main(sys.argv[1:]))
"""


def tiny_recipe(tmp_path: Path, tiny_model_dir: Path) -> list[str]:
    """``winnow train`` arguments for 3 steps of the tiny model with a checkpoint after every step."""
    write_beir(tmp_path / "data" / "beir" / "tiny", split="train")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {tiny_model_dir}\ncache_dir: {tmp_path / 'cache'}\ndata: {{dataset: tiny, split: train}}\n"
        "guide: null\nloss: {name: mnrl}\nmining: {enabled: false}\n"
        "training: {batch_size: 2, max_steps: 3, save_steps: 1, logging_steps: 1, max_length: 16}\n"
    )
    out = tmp_path / "model"
    return ["-q", "train", str(recipe), "--output", str(out), "--data-dir", str(tmp_path / "data")]


def resume_completes_from_checkpoint_1(tmp_path: Path, argv: list[str], monkeypatch) -> None:
    """Checkpoint 2 lacks its trainer state; ``--resume`` continues from checkpoint 1 to step 3."""
    from sentence_transformers import SentenceTransformerTrainer

    from retrieval.cli import main

    out, checkpoints = tmp_path / "model", tmp_path / "model.checkpoints"
    assert (checkpoints / "checkpoint-1" / "trainer_state.json").is_file()
    assert (checkpoints / "checkpoint-2" / "model.safetensors").is_file()
    assert not (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    assert not out.exists()
    resumed: dict[str, str] = {}
    real_train = SentenceTransformerTrainer.train

    def spy(self, *args, **kwargs):
        resumed["from"] = kwargs.get("resume_from_checkpoint")
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "train", spy)
    assert main([*argv, "--resume"]) == 0
    assert resumed["from"] == str(checkpoints / "checkpoint-1")
    assert json.loads((out / "meta.json").read_text())["steps"] == 3
    assert not checkpoints.exists()


def test_training_interrupted_while_writing_a_checkpoint_resumes_from_the_last_complete_one(
    tmp_path, tiny_model_dir, monkeypatch
) -> None:
    from transformers.trainer_callback import TrainerState

    from retrieval.cli import main

    argv = tiny_recipe(tmp_path, tiny_model_dir)
    real = TrainerState.save_to_json

    def save_to_json(self, path):
        if "checkpoint-2" in path:  # the weights of checkpoint 2 are written, its state is not
            raise KeyboardInterrupt
        return real(self, path)

    monkeypatch.setattr(TrainerState, "save_to_json", save_to_json)
    assert main(argv) == 130
    monkeypatch.setattr(TrainerState, "save_to_json", real)
    resume_completes_from_checkpoint_1(tmp_path, argv, monkeypatch)


@pytest.mark.slow
def test_training_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(
    tmp_path, tiny_model_dir, monkeypatch
) -> None:
    argv = tiny_recipe(tmp_path, tiny_model_dir)
    child = run_child(TRAIN_AND_DIE, *argv)  # a real process, ended without any clean-up
    assert child.returncode == KILLED, child.stderr[-3000:]
    resume_completes_from_checkpoint_1(tmp_path, argv, monkeypatch)


def test_averaging_skips_incomplete_checkpoints(tmp_path, caplog, monkeypatch) -> None:
    """``training.average_last`` averages complete checkpoints only: one cut short is never loaded."""
    import trainers.soup

    class Model:
        def state_dict(self) -> dict:
            return {}

        def load_state_dict(self, state: dict) -> None:
            pass

    loaded = []

    def load(path: str) -> Model:
        loaded.append(Path(path).name)
        return Model()

    checkpoint(tmp_path / "checkpoint-1")
    checkpoint(tmp_path / "checkpoint-2")
    checkpoint(tmp_path / "checkpoint-3", whole=False)  # killed while writing its weights
    monkeypatch.setattr(trainers.soup, "average_models", lambda models: Model())
    with caplog.at_level("WARNING", logger="trainers.checkpoints"):
        chosen = trainers.soup.average_checkpoints(Model(), tmp_path, 2, load)
    assert chosen == loaded == ["checkpoint-1", "checkpoint-2"]
    assert "checkpoint-3" in caplog.text
