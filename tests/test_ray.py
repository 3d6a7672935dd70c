"""Encoding on Ray (``winnow index --ray``): a local 2-CPU Ray instance gives the embeddings a plain
encode gives, resumes per shard, and indexes the same; refusals need no Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.cli import main
from tests.conftest import DOCS

CORPUS = [{"_id": f"d{i}", "title": "", "text": f"{DOCS[i % 6][2]} number {i}"} for i in range(45)]


@pytest.mark.slow
def test_ray_embeddings_equal_a_plain_encode_and_resume_per_shard(
    tiny_model_dir: Path, tmp_path: Path, caplog
) -> None:
    from retrieval.embed import embed_corpus
    from retrieval.encoders import load_encoder
    from retrieval.ray_encode import ray_embed_corpus

    shards = tmp_path / "shards"
    ray_result = ray_embed_corpus(str(tiny_model_dir), CORPUS, shards, shard_size=20, batch_size=8)
    plain = embed_corpus(load_encoder(str(tiny_model_dir)), CORPUS, progress=False)
    assert ray_result.ids == plain.ids
    np.testing.assert_allclose(ray_result.vectors, plain.vectors, atol=1e-6)
    files = sorted(shards.glob("ray-*/shard-*.npy"))
    assert [f.name for f in files] == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    files[1].unlink()  # as if the run had been killed while encoding the second shard
    with caplog.at_level("INFO", logger="retrieval.ray_encode"):
        again = ray_embed_corpus(str(tiny_model_dir), CORPUS, shards, shard_size=20, batch_size=8)
    assert "45 documents in 3 shards; 1 to encode, 2 on disk" in caplog.text
    np.testing.assert_allclose(again.vectors, plain.vectors, atol=1e-6)


@pytest.mark.slow
def test_cli_index_with_ray_searches_like_the_default(
    tiny_model_dir: Path, tiny_beir: Path, tmp_path: Path, capsys
) -> None:
    base = ["-q", "index", "--model", str(tiny_model_dir), "--corpus", str(tiny_beir)]
    assert main([*base, "--output", str(tmp_path / "plain")]) == 0
    assert main([*base, "--output", str(tmp_path / "ray"), "--ray", "--ray-shard-size", "4"]) == 0
    assert not (tmp_path / "ray.ray-shards").exists(), "shards are kept only for resuming the run"
    runs = []
    for name in ("plain", "ray"):
        capsys.readouterr()
        assert (
            main(["-q", "search", "--index-dir", str(tmp_path / name), "--query", "cat on a rock", "-k", "6"])
            == 0
        )
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert json.loads((tmp_path / "ray" / "meta.json").read_text())["size"] == 6


def test_ray_is_refused_for_bm25_and_hybrids_before_any_work(tiny_beir: Path, tmp_path: Path, capsys) -> None:
    argv = ["index", "--model", "bm25", "--corpus", str(tiny_beir), "--output", str(tmp_path / "x"), "--ray"]
    assert main(argv) == 2
    assert "--ray encodes with a dense model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
