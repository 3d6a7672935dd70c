"""Concurrent runs sharing an embedding cache or an output folder never corrupt or lose each other's work.

The cache runs are child processes started with ``spawn``; they encode with a small deterministic
hashing encoder (NumPy only, so a child starts in seconds), slowed down so that the runs overlap
deterministically: a barrier makes two runs on different corpora encode chunk by chunk in lockstep,
and two events start the second run on the same corpus while the first is encoding. The output lock
is checked through the command line with the tiny model of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.lock import output_lock, output_lock_path
from retrieval.embed import VECTORS_FILE, embed_corpus
from retrieval.embedding_cache import EmbeddingCache
from retrieval.retriever import Retriever
from tests.conftest import write_beir

ROOT = Path(__file__).parents[1]
OTHER_DOCS = [
    ("e1", "Stars", "the moon and the star in the black sky"),
    ("e2", "Snow", "cold snow and rain with the wind"),
    ("e3", "Sugar", "sugar diet causes higher blood sugar"),
    ("e4", "Genes", "genes of cells in the brain of mice"),
    ("e5", "", "the red bird in the green tree"),
    ("e6", "Sand", "white sand by the sea"),
]
QUERIES = ["cat on a rock", "snow in the cold sky", "heart disease", "mice genes"]
TIMEOUT = 120


class HashEncoder:
    """A deterministic bag-of-words encoder: each word a fixed random vector, texts their normalised sum."""

    name, kind, similarity, dim, vocabulary = "test/hash-encoder", "dense", "cosine", 32, None

    def encode_queries(self, texts: list[str], batch_size: int = 64, **kwargs: Any) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_documents = encode_queries


class SlowEncoder(HashEncoder):
    """Counts document batches; waits at ``barrier`` on each, or on the first one sets ``started`` and
    waits for ``ready`` (then a little more, for the other run to reach the cache)."""

    def __init__(self, calls: Any, barrier: Any = None, events: Any = None) -> None:
        self.calls, self.barrier, self.events = calls, barrier, events

    def encode_documents(self, texts: list[str], batch_size: int = 64, **kwargs: Any) -> np.ndarray:
        with self.calls.get_lock():
            self.calls.value += 1
        if self.events is not None:
            started, ready = self.events
            if not started.is_set():
                started.set()
                assert ready.wait(timeout=TIMEOUT), "the second run never started"
                time.sleep(0.5)
            time.sleep(0.2)
        if self.barrier is not None:
            self.barrier.wait(timeout=TIMEOUT)
        return super().encode_documents(texts, batch_size)


def _build_index(corpus: str, cache: str, output: str, calls: Any, barrier: Any) -> None:
    retriever = Retriever(SlowEncoder(calls, barrier=barrier), index="faiss:Flat")
    retriever.build(corpus, batch_size=1, chunk_size=2, cache_dir=cache, progress=False)
    retriever.save(output)


def _embed(corpus: str, cache: str, output: str, calls: Any, events: Any, first: bool) -> None:
    if not first:  # start once the first run is encoding, and let it go on only then
        started, ready = events
        assert started.wait(timeout=TIMEOUT), "the first run never started encoding"
        ready.set()
    encoder = SlowEncoder(calls, events=events)
    embeddings = embed_corpus(encoder, corpus, out_dir=cache, batch_size=1, chunk_size=2, progress=False)
    np.save(output, np.asarray(embeddings.vectors))
    Path(output).with_suffix(".json").write_text(json.dumps(embeddings.ids))


def _run_all(processes: list[Any]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=TIMEOUT)
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


def test_different_corpora_share_a_cache_dir(tmp_path) -> None:
    corpora = [write_beir(tmp_path / "a"), write_beir(tmp_path / "b", docs=OTHER_DOCS)]
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    calls, barrier = ctx.Value("i", 0), ctx.Barrier(2)  # both runs encode chunk k at the same time
    _run_all(
        [
            ctx.Process(
                target=_build_index, args=(str(c), str(cache), str(tmp_path / f"index-{i}"), calls, barrier)
            )
            for i, c in enumerate(corpora)
        ]
    )
    assert calls.value == 6  # three chunks of two documents per corpus, each encoded once
    encoder = HashEncoder()
    for i, corpus in enumerate(corpora):
        alone = Retriever(encoder, index="faiss:Flat").build(corpus, progress=False)
        shared = Retriever.load(tmp_path / f"index-{i}", encoder=encoder)
        a, b = alone.search(QUERIES, k=6), shared.search(QUERIES, k=6)
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        fresh = embed_corpus(encoder, corpus, progress=False)
        cached = embed_corpus(SlowEncoder(calls), corpus, out_dir=cache, chunk_size=2, progress=False)
        assert cached.ids == fresh.ids and calls.value == 6  # read from the cache, not encoded again
        np.testing.assert_allclose(np.asarray(cached.vectors), fresh.vectors, atol=1e-6)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # one folder per corpus


def test_same_corpus_is_encoded_once_by_concurrent_runs(tiny_beir, tmp_path) -> None:
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    calls, events = ctx.Value("i", 0), (ctx.Event(), ctx.Event())
    outputs = [tmp_path / "first.npy", tmp_path / "second.npy"]
    _run_all(
        [
            ctx.Process(target=_embed, args=(str(tiny_beir), str(cache), str(out), calls, events, first))
            for out, first in zip(outputs, [True, False], strict=True)
        ]
    )
    assert calls.value == 3  # the second run waited for the first and reused its three chunks
    fresh = embed_corpus(HashEncoder(), tiny_beir, progress=False)
    for out in outputs:
        assert json.loads(out.with_suffix(".json").read_text()) == fresh.ids
        np.testing.assert_allclose(np.load(out), fresh.vectors, atol=1e-6)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    np.testing.assert_allclose(np.load(folder / VECTORS_FILE), fresh.vectors, atol=1e-6)
    assert not list(folder.glob(".*tmp*")) and not (folder / ".lock").exists()


def test_a_second_cache_writer_keeps_one_copy_of_each_text(tiny_encoder, tmp_path) -> None:
    texts = ["cat on a rock", "blue sea", "vitamin and bone"]
    first, second = EmbeddingCache(tiny_encoder, tmp_path), EmbeddingCache(tiny_encoder, tmp_path)
    assert second.missing(texts, "query") == texts  # read before the first one stores them
    expected = first.get(texts, "query", progress=False)
    np.testing.assert_allclose(second.get(texts, "query", progress=False), expected, atol=1e-6)
    keys = [k for f in sorted((first.dir / "query").glob("shard-*.json")) for k in json.loads(f.read_text())]
    assert len(keys) == len(texts)  # not stored twice


HOLD = """
import sys
from indexes.lock import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _hold_output_lock(output: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(output)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_of_one_output_fails_before_any_work(
    tiny_model_dir, tiny_beir, tmp_path, monkeypatch, capsys
) -> None:
    from retrieval import encoders
    from retrieval.cli import main

    output = tmp_path / "index"
    argv = [
        "-q",
        "index",
        "--model",
        str(tiny_model_dir),
        "--corpus",
        str(tiny_beir),
        "--output",
        str(output),
    ]
    holder = _hold_output_lock(output)
    try:

        def no_model(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the model was loaded although the output is locked")

        with monkeypatch.context() as patch:
            patch.setattr(encoders, "load_encoder", no_model)  # what model_retriever calls
            assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"winnow index: error: another winnow process is writing {output}" in err
        assert str(output_lock_path(output)) in err and not output.exists()
    finally:
        holder.communicate("", timeout=TIMEOUT)
    assert main(argv) == 0  # the lock went with its holder
    assert output.is_dir() and not output_lock_path(output).exists()


def test_a_second_trainer_of_one_output_fails(
    tiny_model_dir, tiny_beir, tmp_path, monkeypatch, capsys
) -> None:
    import trainers.dense
    from retrieval.cli import main

    output = tmp_path / "model"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"kind: dense\nmodel: {tiny_model_dir}\ndata: {{dataset: {tiny_beir}}}\n")
    monkeypatch.setattr(trainers.dense, "train_dense", lambda *a, **k: pytest.fail("training started"))
    holder = _hold_output_lock(output)
    try:
        assert main(["-q", "train", str(recipe), "--output", str(output)]) == 2
    finally:
        holder.communicate("", timeout=TIMEOUT)
    assert f"winnow train: error: another winnow process is writing {output}" in capsys.readouterr().err


def test_output_lock_nests_in_one_process_and_excludes_another(tmp_path) -> None:
    output = tmp_path / "out"
    with output_lock(output) as lock, output_lock(output):  # the CLI and the save underneath it
        assert lock.exists()
        holder = subprocess.run(
            [sys.executable, "-c", HOLD, str(output)],
            check=False,
            cwd=ROOT,
            input="",
            capture_output=True,
            text=True,
        )
        assert holder.returncode != 0 and "another winnow process is writing" in holder.stderr
    assert not lock.exists()
