"""``winnow train --nproc 2``: two CPU processes under torchrun (gloo) prepare once, stay in step, and
train the model one process trains on the same global batch (gradient accumulation)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from retrieval.cli import main
from tests.conftest import DOCS, stop_after_first_checkpoint, tiny_bert_config, tiny_tokenizer, write_beir
from trainers.distributed import torchrun_command

# eight queries, one relevant document each: four full batches of two per epoch
QUERIES = {
    "q1": "cat on a rock",
    "q2": "heart disease from salt",
    "q3": "vitamin and bone",
    "q4": "dogs in the wind",
    "q5": "cancer genes in mice",
    "q6": "fish in the river",
    "q7": "the sun on the cat",
    "q8": "fat and heart risk",
}
QRELS = [
    ("q1", "d1", 1),
    ("q2", "d4", 1),
    ("q3", "d3", 1),
    ("q4", "d2", 1),
    ("q5", "d5", 1),
    ("q6", "d6", 1),
    ("q7", "d1", 1),
    ("q8", "d4", 1),
]


def build_model_without_dropout(path: Path, seed: int = 0) -> Path:
    """The tests' tiny BERT with dropout off, so two runs differ only in how batches meet."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import BertModel

    torch.manual_seed(seed)
    hf = path / "hf"
    hf.mkdir(parents=True)
    tokenizer = tiny_tokenizer(hf, letters=True)
    config = tiny_bert_config(tokenizer.vocab_size, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    transformer = Transformer(str(hf), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")])
    model.save(str(path / "st"))
    return path / "st"


def recipe(root: Path, student: Path, guide: Path, accumulation: int) -> Path:
    path = root / f"ddp-{accumulation}.yaml"
    path.write_text(
        f"model: {student}\ncache_dir: {root / 'cache'}\n"
        "data: {dataset: tiny, split: train}\n"
        f"guide: {{model: {guide}}}\n"
        "mining: {model: bm25, num_negatives: 1, range_max: 4}\n"
        "loss: {name: mnrl, distill: margin_mse, contrastive_weight: 0}\n"
        "sampler: {name: random}\n"
        f"teachers: [{{kind: dense, model: {guide}, weight: 0.5}}, {{kind: bm25, weight: 0.5}}]\n"
        "training: {batch_size: 2, max_steps: 3, learning_rate: 1.0e-3, warmup_ratio: 0, "
        f"gradient_accumulation: {accumulation}, logging_steps: 1}}\n"
    )
    return path


def test_two_processes_prepare_once_stay_in_step_and_match_one(tmp_path: Path, capfd) -> None:
    write_beir(tmp_path / "data" / "beir" / "tiny", DOCS, QUERIES, QRELS, split="train")
    student = build_model_without_dropout(tmp_path / "student")
    guide = build_model_without_dropout(tmp_path / "guide", seed=1)
    data = ["--data-dir", str(tmp_path / "data")]
    two = tmp_path / "two"
    assert (
        main(["train", str(recipe(tmp_path, student, guide, 1)), "--output", str(two), "--nproc", "2", *data])
        == 0
    )
    log = capfd.readouterr()
    text = log.out + log.err
    assert "rank 0 computed the preparation" in text and "rank 1 read the preparation from the cache" in text
    assert not re.search(r"\[rank 1\].*embedding \d+ new", text), "rank 1 must not embed anything itself"
    checksums = dict(re.findall(r"\[rank (\d)\].*rank \d: parameter checksum (\S+)", text))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"]
    meta = json.loads((two / "meta.json").read_text())
    assert meta["steps"] == 3 and not (tmp_path / "two.checkpoints").exists()

    one = tmp_path / "one"  # one process, two micro-batches per step: the same global batches
    assert main(["-q", "train", str(recipe(tmp_path, student, guide, 2)), "--output", str(one), *data]) == 0
    a, b = load_file(str(two / "model.safetensors")), load_file(str(one / "model.safetensors"))
    start = load_file(str(student / "model.safetensors"))
    assert a.keys() == b.keys()
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    gap = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved > 1e-3, "training must move the weights"
    assert gap < 1e-6, f"two processes and one differ by {gap} (training moved the weights by {moved})"


def test_the_launch_command_runs_winnow_under_torchrun() -> None:
    command = torchrun_command(4, ["train", "r.yaml", "--output", "m"])
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    assert command[6:] == ["retrieval", "train", "r.yaml", "--output", "m"]


def test_nproc_below_one_is_refused(tmp_path: Path, capsys) -> None:
    config = tmp_path / "r.yaml"
    config.write_text("guide: null\nloss: {name: mnrl}\n")
    assert main(["train", str(config), "--output", str(tmp_path / "m"), "--nproc", "0"]) == 2
    assert "--nproc 0: expected an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["gradient_accumulation"])
def test_gradient_accumulation_must_be_positive(tmp_path: Path, key: str) -> None:
    from trainers.config import load_config
    from trainers.typed_config import ConfigError

    config = tmp_path / "r.yaml"
    config.write_text(f"training: {{{key}: 0}}\n")
    with pytest.raises(ConfigError, match=f"training.{key} must be"):
        load_config(config)


@pytest.mark.parametrize(("n_queries", "batch_size"), [(50, 4), (37, 4)])
def test_tas_batches_are_distinct_per_rank_and_cover_one_process(n_queries: int, batch_size: int) -> None:
    """The trainer shards the batch sampler's sequence over ranks (accelerate's BatchSamplerShard, as
    sentence-transformers' trainer prepares it): rank r takes batches r, r + N, ..."""
    from accelerate.data_loader import BatchSamplerShard

    from trainers.samplers import TASBalancedBatchSampler

    rows = list(range(n_queries))
    sampler = TASBalancedBatchSampler(
        rows,
        batch_size,
        False,
        row_query=rows,
        query_cluster=[q % 3 for q in rows],
        row_margin=[0.0] * n_queries,
    )
    one = list(sampler)
    ranks = [
        list(BatchSamplerShard(sampler, 2, r, split_batches=False, even_batches=False)) for r in range(2)
    ]
    assert ranks[0] == one[0::2] and ranks[1] == one[1::2]
    assert not {x for b in ranks[0] for x in b} & {x for b in ranks[1] for x in b}


def test_resume_under_two_processes_continues_from_the_checkpoint(tmp_path: Path, capfd, monkeypatch) -> None:
    """A run stopped after its first checkpoint is continued by ``--resume --nproc 2``: both ranks start
    from that checkpoint, stay in step, and the run ends at its step budget."""
    from sentence_transformers import SentenceTransformerTrainer

    write_beir(tmp_path / "data" / "beir" / "tiny", DOCS, QUERIES, QRELS, split="train")
    student = build_model_without_dropout(tmp_path / "student")
    guide = build_model_without_dropout(tmp_path / "guide", seed=1)
    path = recipe(tmp_path, student, guide, 1)
    path.write_text(path.read_text().replace("logging_steps: 1}", "logging_steps: 1, save_steps: 1}"))
    out, data = tmp_path / "model", ["--data-dir", str(tmp_path / "data")]
    real_train = stop_after_first_checkpoint(monkeypatch)  # the "crash"
    assert main(["-q", "train", str(path), "--output", str(out), *data]) == 130
    assert (tmp_path / "model.checkpoints" / "checkpoint-1").is_dir() and not out.exists()
    monkeypatch.setattr(SentenceTransformerTrainer, "train", real_train)
    capfd.readouterr()
    assert main(["train", str(path), "--output", str(out), "--nproc", "2", "--resume", *data]) == 0
    text = "".join(capfd.readouterr())
    for rank in ("0", "1"):
        assert re.search(rf"\[rank {rank}\].*resuming from .*checkpoint-1", text), text[-3000:]
    checksums = dict(re.findall(r"\[rank (\d)\].*rank \d: parameter checksum (\S+)", text))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"]
    assert json.loads((out / "meta.json").read_text())["steps"] == 3
