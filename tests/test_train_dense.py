"""Two-step end-to-end training runs on a tiny model, and resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from retrieval.cli import main
from tests.conftest import build_tiny_model, stop_after_first_checkpoint, write_beir


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    write_beir(root / "data" / "beir" / "tiny", split="train")
    write_beir(root / "data" / "beir" / "tiny", split="dev")
    guide = build_tiny_model(root / "guide", seed=1)
    return {"root": root, "student": tiny_model_dir, "guide": guide}


def recipe(setup: dict[str, Path], name: str, body: str) -> Path:
    path = setup["root"] / f"{name}.yaml"
    dev_corpus = ", dev_corpus: full" if "DEV_CORPUS" in body else ""  # the report's own metric
    body = body.replace("DEV_CORPUS", "")
    path.write_text(
        f"model: {setup['student']}\ncache_dir: {setup['root'] / 'cache'}\n"
        f"data: {{dataset: tiny, split: train, dev_split: dev{dev_corpus}}}\n"
        f"training: {{batch_size: 2, max_steps: 2, logging_steps: 1, eval_steps: 1}}\n"
        + body.replace("GUIDE", str(setup["guide"]))
    )
    return path


FULL = """
guide: {model: GUIDE}
mining: {num_negatives: 2, range_max: 4}
loss: {name: gist, distill: margin_mse}
sampler: {name: tas_balanced, clusters: 2}
teachers:
  - {kind: dense, model: GUIDE, weight: 0.5}
  - {kind: bm25, weight: 0.5}
"""


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("mnrl", "guide: null\nloss: {name: mnrl}\nmining: {num_negatives: 1}\n"),
        ("full-dev", "guide: null\nloss: {name: mnrl}\nmining: {num_negatives: 1}\nDEV_CORPUS"),
        ("full", FULL),
        ("kl", FULL.replace("margin_mse", "kl")),
        (
            "in-batch",
            FULL.replace(
                "distill: margin_mse", "distill: margin_mse, in_batch_weight: 1.0, mask_labelled: true"
            ),
        ),
    ],
)
def test_two_step_training_writes_a_loadable_model(setup, name: str, body: str) -> None:
    out = setup["root"] / f"model-{name}"
    assert (
        main(
            [
                "-q",
                "train",
                str(recipe(setup, name, body)),
                "--output",
                str(out),
                "--data-dir",
                str(setup["root"] / "data"),
            ]
        )
        == 0
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "model" and meta["steps"] == 2 and meta["best_dev_ndcg_at_10"] is not None
    assert (out / "training_curve.png").stat().st_size > 0
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    dev_key = "eval_dev_ndcg@10" if name == "full-dev" else "eval_dev_cosine_ndcg@10"
    assert any("loss" in e for e in log) and any(dev_key in e for e in log)
    model = SentenceTransformer(str(out), device="cpu")  # loads unchanged with sentence-transformers
    assert model.encode(["cat"]).shape == (1, 32)
    assert not out.with_name(out.name + ".checkpoints").exists()


def test_resume_after_interruption(setup, monkeypatch) -> None:
    from sentence_transformers import SentenceTransformerTrainer

    path = recipe(setup, "resume", FULL.replace("max_steps: 2", "max_steps: 2"))
    out = setup["root"] / "model-resume"
    real_train = stop_after_first_checkpoint(monkeypatch)  # the "crash"
    assert (
        main(["-q", "train", str(path), "--output", str(out), "--data-dir", str(setup["root"] / "data")])
        == 130
    )
    checkpoints = out.with_name(out.name + ".checkpoints")
    assert (checkpoints / "checkpoint-1").is_dir() and not out.exists()  # nothing half-written
    monkeypatch.setattr(SentenceTransformerTrainer, "train", real_train)
    resumed = {}

    def spy(self, *args, **kwargs):
        resumed["from"] = kwargs.get("resume_from_checkpoint")
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "train", spy)
    assert (
        main(
            [
                "-q",
                "train",
                str(path),
                "--output",
                str(out),
                "--data-dir",
                str(setup["root"] / "data"),
                "--resume",
            ]
        )
        == 0
    )
    assert resumed["from"].endswith("checkpoint-1")
    assert json.loads((out / "meta.json").read_text())["steps"] == 2


def test_bad_recipe_is_one_clear_line(setup, capsys) -> None:
    path = setup["root"] / "bad.yaml"
    path.write_text("loss: {nme: gist}\n")
    assert main(["train", str(path), "--output", str(setup["root"] / "x")]) == 2
    assert "unknown key 'loss.nme'; did you mean 'name'?" in capsys.readouterr().err


def train_mnrl(setup: dict[str, Path], name: str, model_section: str) -> Path:
    """Train two MNRL steps on the tiny training set with the recipe's ``model`` section as given;
    returns the model folder."""
    path = setup["root"] / f"{name}.yaml"
    path.write_text(
        model_section + f"cache_dir: {setup['root'] / 'cache'}\n"
        "data: {dataset: tiny, split: train}\n"
        "guide: null\nloss: {name: mnrl}\nmining: {num_negatives: 1}\n"
        "training: {batch_size: 2, max_steps: 2, logging_steps: 1}\n"
    )
    out = setup["root"] / f"model-{name}"
    args = ["-q", "train", str(path), "--output", str(out), "--data-dir", str(setup["root"] / "data")]
    assert main(args) == 0
    return out


def test_training_with_latent_attention_pooling(setup) -> None:
    """``model`` as a mapping: the new pooling trains (its zero-initialised output layer moves) at
    its own learning rate, and the saved folder loads in load_encoder with the module in place."""
    from retrieval.encoders import load_encoder
    from retrieval.pooling import LatentAttentionPooling, load_sentence_transformer

    model_section = (
        f"model:\n  name: {setup['student']}\n"
        "  pooling: {type: latent_attention, latents: 4, heads: 2}\n"
        "  pooling_learning_rate: 0.01\n"
    )
    out = train_mnrl(setup, "latent", model_section)
    model = load_sentence_transformer(str(out))
    pooling = next(m for m in model if isinstance(m, LatentAttentionPooling))
    assert pooling.latents == 4 and pooling.mlp[2].weight.abs().max() > 0  # trained away from zero
    assert load_encoder(out).encode_documents(["the cat"]).shape == (1, 32)


def test_training_a_bidirectional_decoder_with_a_query_prompt(setup) -> None:
    """A causal LM as the student: the causal mask removed, EOS pooled, queries prefixed; the saved
    model keeps all three."""
    from retrieval.pooling import BidirectionalAttention, load_sentence_transformer
    from tests.test_decoder_encoder import build_tiny_decoder

    decoder = build_tiny_decoder(setup["root"] / "decoder")
    out = train_mnrl(
        setup, "decoder", f"model: {{name: {decoder}, bidirectional: true, query_prompt: 'query: '}}\n"
    )
    model = load_sentence_transformer(str(out))
    assert any(isinstance(m, BidirectionalAttention) for m in model)
    assert model.prompts["query"] == "query: " and not model[0].auto_model.config.is_causal
    assert model[0].tokenizer("cat")["input_ids"][-1] == model[0].tokenizer.eos_token_id
