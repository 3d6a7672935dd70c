"""The training loop both trainers share: resume, best dev score, the model folder, and that the dense
and sparse trainers hand it their own pieces."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.conftest import write_beir
from trainers.config import TrainConfig, load_config
from trainers.dev import SAMPLE_METRIC
from trainers.loop import checkpoint_folder, run_training

HISTORY = [
    {"loss": 2.0, "step": 1},
    {SAMPLE_METRIC: 0.25, "step": 1},
    {"loss": 1.0, "step": 2},
    {SAMPLE_METRIC: 0.5, "step": 2},
]


class FakeModel:
    max_seq_length = 64

    def save(self, path: str) -> None:
        (Path(path) / "weights.txt").write_text("trained")


class FakeTrainer:
    """Records what the loop passes; ``train`` logs :data:`HISTORY` at the training length."""

    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        FakeTrainer.seen = dict(kwargs)
        self.state = SimpleNamespace(log_history=[], global_step=0)

    def train(self, resume_from_checkpoint: str | None = None) -> None:
        FakeTrainer.seen["resume_from_checkpoint"] = resume_from_checkpoint
        FakeTrainer.seen["length_while_training"] = FakeTrainer.seen["model"].max_seq_length
        self.state.log_history.extend(HISTORY)
        self.state.global_step = 2

    def is_world_process_zero(self) -> bool:
        return True


def run_fake(config: TrainConfig, output: Path, **kwargs: Any) -> Path:
    model = FakeModel()
    model.max_seq_length = 16  # the training length
    rows = SimpleNamespace(to_dataset=lambda: "dataset")
    return run_training(
        config,
        output,
        model=model,
        loss="loss",
        rows=rows,  # type: ignore[arg-type]
        batch_sampler="sampler",
        trainer_class=FakeTrainer,
        arguments_class=SimpleNamespace,
        load=lambda path: None,
        model_type="fake",
        inference_length=64,
        **kwargs,
    )


def test_the_loop_resumes_from_the_latest_checkpoint_and_writes_the_model(tmp_path: Path) -> None:
    output = tmp_path / "model"
    for step in (1, 10, 2):  # complete checkpoints: trainer state and whole weights (an empty safetensors)
        folder = checkpoint_folder(output) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (folder / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    finished: list[int] = []

    def finish(model: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
        finished.append(model.max_seq_length)
        return {"log_entries": len(history)}

    assert (
        run_fake(
            TrainConfig(),
            output,
            evaluator=object(),
            callbacks=["callback"],
            arguments={"router_mapping": {"anchor": "query"}},
            finish=finish,
            resume=True,
        )
        == output
    )
    seen = FakeTrainer.seen
    assert seen["resume_from_checkpoint"] == str(checkpoint_folder(output) / "checkpoint-10")
    assert seen["length_while_training"] == 16 and finished == [64]  # inference length before saving
    assert seen["callbacks"] == ["callback"] and seen["train_dataset"] == "dataset"
    args = seen["args"]
    assert args.router_mapping == {"anchor": "query"} and args.batch_sampler == "sampler"
    assert args.metric_for_best_model == SAMPLE_METRIC and args.load_best_model_at_end
    assert args.output_dir == str(checkpoint_folder(output))
    meta = json.loads((output / "meta.json").read_text())
    assert meta["model_type"] == "fake" and meta["steps"] == 2 and meta["log_entries"] == 4
    assert meta["best_dev_ndcg_at_10"] == 0.5 and meta["config"]["kind"] == "dense"
    log = [json.loads(line) for line in (output / "training_log.jsonl").read_text().splitlines()]
    assert log == HISTORY
    assert (output / "weights.txt").read_text() == "trained"
    assert (output / "training_curve.png").stat().st_size > 0
    assert not checkpoint_folder(output).exists()


def test_the_loop_without_dev_or_checkpoint_starts_from_scratch(tmp_path: Path, caplog) -> None:
    output = tmp_path / "model"
    with caplog.at_level("WARNING", logger="trainers.loop"):
        run_fake(TrainConfig(), output, resume=True)
    assert FakeTrainer.seen["resume_from_checkpoint"] is None
    assert "no checkpoint" in caplog.text
    assert FakeTrainer.seen["callbacks"] is None and FakeTrainer.seen["evaluator"] is None
    args = FakeTrainer.seen["args"]
    assert args.eval_strategy == "no" and args.metric_for_best_model is None
    assert not args.load_best_model_at_end


def test_a_folder_that_is_not_an_artefact_is_kept(tmp_path: Path) -> None:
    output = tmp_path / "notes"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        run_fake(TrainConfig(), output)
    assert (output / "notes.txt").read_text() == "mine"


@pytest.fixture
def tiny_config(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path / "data"))
    write_beir(tmp_path / "data" / "beir" / "tiny", split="train")
    path = tmp_path / "recipe.yaml"
    path.write_text(
        f"cache_dir: {tmp_path / 'cache'}\ndata: {{dataset: tiny, split: train}}\n"
        "guide: null\nloss: {name: mnrl}\nmining: {enabled: false}\ntraining: {max_length: 16}\n"
    )
    return path


def capture(monkeypatch, module: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def recording(config: TrainConfig, output: Path, **kwargs: Any) -> Path:
        seen.update(kwargs, output=output)
        return Path(output)

    monkeypatch.setattr(module, "run_training", recording)
    return seen


def test_the_dense_trainer_hands_its_pieces_to_the_loop(
    tiny_config: Path, tiny_model_dir: Path, monkeypatch, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    import trainers.dense

    seen = capture(monkeypatch, trainers.dense)
    config = load_config(tiny_config, {"model": str(tiny_model_dir)})
    trainers.dense.train_dense(config, tmp_path / "out", resume=True)
    assert seen["trainer_class"] is SentenceTransformerTrainer
    assert seen["arguments_class"] is SentenceTransformerTrainingArguments
    assert seen["model_type"] == "dense" and seen["resume"] is True
    assert seen["model"].max_seq_length == 16  # the training length; the loop restores the inference one
    assert seen["inference_length"] == 64 and seen["evaluator"] is None
    assert len(seen["rows"]) == 4  # one row per judged (query, positive) pair


def test_the_sparse_trainer_hands_its_pieces_to_the_loop(
    tiny_config: Path, monkeypatch, tmp_path: Path
) -> None:
    from sentence_transformers import SparseEncoderTrainer
    from sentence_transformers.sparse_encoder.training_args import SparseEncoderTrainingArguments

    import trainers.sparse
    from tests.test_onnx import build_tiny_mlm

    seen = capture(monkeypatch, trainers.sparse)
    overrides = {"kind": "sparse", "model": str(build_tiny_mlm(tmp_path / "mlm")), "sparse.max_length": 32}
    trainers.sparse.train_sparse(load_config(tiny_config, overrides), tmp_path / "out")
    assert seen["trainer_class"] is SparseEncoderTrainer
    assert seen["arguments_class"] is SparseEncoderTrainingArguments
    assert seen["model_type"] == "sparse" and seen["inference_length"] == 32
    assert seen["arguments"]["router_mapping"] == {"anchor": "query", "positive": "document"}
    assert len(seen["callbacks"]) == 2  # regulariser warm-up and sparsity report (no trainable IDF)
    meta = seen["finish"](seen["model"], [{"doc_active_terms": 7.0, "step": 1}])
    assert meta["query_encoder"] == "idf" and meta["doc_active_terms"] == 7.0


def test_quiet_turns_off_the_trainers_progress_bar(tmp_path: Path, monkeypatch) -> None:
    """``winnow -q train`` shows no trainer progress bar (transformers' tqdm), ``winnow train`` does."""
    import retrieval.settings
    from trainers.arguments import training_arguments

    assert training_arguments(TrainConfig(), tmp_path / "c", None, None).disable_tqdm is False
    monkeypatch.setitem(retrieval.settings._state, "progress", False)  # what -q sets
    assert training_arguments(TrainConfig(), tmp_path / "c", None, None).disable_tqdm is True
