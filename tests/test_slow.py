"""Slow checks (``make test-slow``): real models and data, and multi-process training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_tiny_model, write_beir

pytestmark = pytest.mark.slow
DATA = Path(os.environ.get("WINNOW_DATA", Path(__file__).parents[2] / "shared" / "data"))


def test_ddp_training_with_torchrun(tmp_path) -> None:
    """Two CPU processes (gloo) train with the TAS-Balanced sampler; each rank gets distinct batches."""
    student = build_tiny_model(tmp_path / "student")
    guide = build_tiny_model(tmp_path / "guide", seed=1)
    docs = [
        (f"d{i}", "", f"{w} {v} study of the {w}")
        for i, (w, v) in enumerate(
            zip(
                ["cat", "dog", "fish", "sun", "moon", "star", "tree", "rock"] * 2,
                ["red", "blue", "green", "black"] * 4,
                strict=True,
            )
        )
    ]
    queries = {f"q{i}": f"the {doc[2].split()[0]}" for i, doc in enumerate(docs)}
    write_beir(
        tmp_path / "data" / "beir" / "t",
        docs=docs,
        queries=queries,
        qrels=[(f"q{i}", f"d{i}", 1) for i in range(len(docs))],
        split="train",
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {student}\ncache_dir: {tmp_path / 'cache'}\ndata: {{dataset: t}}\n"
        f"guide: {{model: {guide}}}\n"
        "mining: {num_negatives: 2, range_max: 5}\nloss: {name: gist, distill: kl}\n"
        f"teachers: [{{kind: dense, model: {guide}}}, {{kind: bm25}}]\n"
        "sampler: {name: tas_balanced, clusters: 2}\n"
        "training: {batch_size: 4, max_steps: 2, logging_steps: 1}\n"
    )
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = tmp_path / "model"
    result = subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            "-m",
            "retrieval",
            "-q",
            "train",
            str(recipe),
            "--output",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "meta.json").read_text())["steps"] == 2


@pytest.mark.skipif(not (DATA / "beir" / "scifact").is_dir(), reason="needs $WINNOW_DATA/beir/scifact")
def test_minilm_scifact_matches_the_reference() -> None:
    """all-MiniLM-L6-v2 on SciFact test agrees with the published MTEB figure (0.6451) within 0.005."""
    from eval.beir import evaluate
    from retrieval import Retriever, load_encoder

    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    result = evaluate(Retriever(encoder), DATA / "beir" / "scifact")
    assert abs(result["metrics"]["ndcg@10"] - 0.6451) <= 0.005
    assert abs(result["metrics"]["recall@100"] - 0.9250) <= 0.005
