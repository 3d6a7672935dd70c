"""Encode a corpus in chunks into a memory-mapped float32 matrix, with progress and resume.

Corpora larger than memory are streamed twice from disk: once to count and fingerprint them, once
to encode them chunk by chunk into a memory-mapped .npy. A cache folder holds one sub-folder per
fingerprint of the encoder and the documents, so runs on different corpora or models never share a
file. Inside it, ``embeddings.partial.npy`` receives the chunks and ``progress.json`` records how many
are done, so an interrupted run resumes where it stopped; the finished matrix is renamed to
``embeddings.npy`` and never written again. A lock file per fingerprint lets one process at a time
encode it: a second run on the same corpus waits, then reuses the finished vectors.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from indexes.io import write_file_atomic, write_json_atomic
from indexes.lock import file_lock
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.encoders import Encoder
from retrieval.identity import model_identity
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

VECTORS_FILE = "embeddings.npy"
PARTIAL_FILE = "embeddings.partial.npy"
IDS_FILE = "ids.json"
PROGRESS_FILE = "progress.json"
LOCK_FILE = ".lock"


@dataclass
class Embeddings:
    """Document vectors (possibly a read-only memmap) and their ids, row for row."""

    ids: list[str]
    vectors: np.ndarray

    def chunks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        for start in range(0, len(self.ids), size):
            yield self.ids[start : start + size], np.asarray(self.vectors[start : start + size])


def scan_corpus(source: CorpusSource, encoder_name: str, dim: int) -> tuple[list[str], str]:
    digest = hashlib.sha1(f"{model_identity(encoder_name)}\0{dim}".encode())
    ids = []
    for doc in iter_corpus(source):
        ids.append(doc["_id"])
        digest.update(f"\0{doc['_id']}\0{document_text(doc)}".encode())
    return ids, digest.hexdigest()


def _batched(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(docs)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def cache_folder(out_dir: str | Path, fingerprint: str) -> Path:
    """The sub-folder of the cache ``out_dir`` that holds the vectors of one fingerprint."""
    return Path(out_dir) / fingerprint[:16]


def _read_progress(folder: Path) -> dict[str, Any]:
    path = folder / PROGRESS_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        logger.warning("%s: invalid JSON (%s); encoding from the start", path, exc.msg)
        return {}
    return state if isinstance(state, dict) else {}


def _matrix_shape(path: Path) -> tuple[int, ...] | None:
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (OSError, ValueError):
        return None


def _encode_chunks(
    encoder: Encoder,
    corpus: CorpusSource | Sequence[Document],
    vectors: np.ndarray,
    *,
    done: int,
    batch_size: int,
    chunk_size: int,
    progress: bool,
    on_chunk: Any = None,
) -> None:
    """Encode chunks ``done``, ``done + 1``, ... into ``vectors``; ``on_chunk(k)`` after the k-th."""
    n = len(vectors)
    bar = tqdm(
        total=n,
        initial=min(done * chunk_size, n),
        unit="doc",
        desc="encoding",
        disable=not (progress and show_progress()),
    )
    for chunk_no, batch in enumerate(_batched(iter_corpus(corpus), chunk_size)):
        if chunk_no < done:
            continue
        start = chunk_no * chunk_size
        step = batch_size * 8  # progress granularity inside a chunk
        for offset in range(0, len(batch), step):
            part = batch[offset : offset + step]
            vectors[start + offset : start + offset + len(part)] = encoder.encode_documents(
                [document_text(d) for d in part], batch_size=batch_size
            )
            bar.update(len(part))
        if on_chunk is not None:
            on_chunk(chunk_no + 1)
    bar.close()


def _fill_cache(
    encoder: Encoder,
    corpus: CorpusSource | Sequence[Document],
    folder: Path,
    ids: list[str],
    fingerprint: str,
    *,
    batch_size: int,
    chunk_size: int,
    progress: bool,
) -> None:
    """Make ``folder/embeddings.npy`` hold the corpus' vectors; the caller holds the folder's lock."""
    n, dim = len(ids), encoder.dim
    final, partial = folder / VECTORS_FILE, folder / PARTIAL_FILE
    state = _read_progress(folder)
    same = state.get("fingerprint") == fingerprint and state.get("n") == n
    if same and _matrix_shape(final) == (n, dim):
        logger.info("reusing the embeddings of %d documents in %s", n, folder)
        return
    for stale in folder.glob(".*.tmp-*"):  # left by a killed run; only the lock holder writes here
        stale.unlink(missing_ok=True)
    n_chunks = -(-n // chunk_size)
    resumable = same and state.get("chunk_size") == chunk_size and _matrix_shape(partial) == (n, dim)
    done = min(int(state.get("chunks_done", 0)), n_chunks) if resumable else 0
    if done:
        logger.info("resuming %s: %d of %d chunks already encoded", folder, done, n_chunks)
    else:
        write_file_atomic(
            partial,
            lambda tmp: np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim)).flush(),
        )
    write_file_atomic(folder / IDS_FILE, lambda tmp: tmp.write_text(json.dumps(ids), encoding="utf-8"))
    vectors = np.lib.format.open_memmap(partial, mode="r+")

    def save_progress(chunks_done: int) -> None:
        vectors.flush()  # the vectors first: progress.json never counts a chunk not on disk
        write_json_atomic(
            folder / PROGRESS_FILE,
            {"fingerprint": fingerprint, "chunk_size": chunk_size, "chunks_done": chunks_done, "n": n},
        )

    save_progress(done)
    _encode_chunks(
        encoder,
        corpus,
        vectors,
        done=done,
        batch_size=batch_size,
        chunk_size=chunk_size,
        progress=progress,
        on_chunk=save_progress,
    )
    vectors.flush()
    os.replace(partial, final)  # a reader that has the old matrix mapped keeps it intact


def embed_corpus(
    encoder: Encoder,
    corpus: CorpusSource | Sequence[Document],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    chunk_size: int = 4096,
    progress: bool = True,
) -> Embeddings:
    """Encode every document of ``corpus`` with ``encoder.encode_documents``.

    Args:
        encoder: any :class:`~retrieval.encoders.Encoder`.
        corpus: a BEIR folder, a JSONL path, or an iterable of ``{"_id", "title", "text"}`` dicts.
        out_dir: a cache folder: the vectors go to a sub-folder named by the fingerprint of the
            encoder and the documents (see :func:`cache_folder`), kept between runs so an interrupted
            run resumes and a rerun encodes nothing; the folder may be shared by concurrent runs.
            ``None`` keeps everything in memory.
        batch_size: texts per forward pass.
        chunk_size: documents per resumable unit.
        progress: show a progress bar.

    Returns:
        the ids and their vectors, row for row (a read-only memmap when ``out_dir`` is given).

    Example:
        >>> embeddings = embed_corpus(encoder, "data/beir/scifact", out_dir="runs/embeddings")
    """
    if not isinstance(corpus, str | Path):
        corpus = list(corpus)  # an iterable can be read only once; we need two passes
    ids, fingerprint = scan_corpus(corpus, encoder.name, encoder.dim)
    n, dim = len(ids), encoder.dim
    if n == 0:
        raise ValueError("the corpus is empty: nothing to encode")
    if out_dir is None:
        vectors = np.zeros((n, dim), dtype=np.float32)
        _encode_chunks(
            encoder, corpus, vectors, done=0, batch_size=batch_size, chunk_size=chunk_size, progress=progress
        )
        return Embeddings(ids=ids, vectors=vectors)
    folder = cache_folder(out_dir, fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    waiting = f"another process is encoding the same corpus into {folder}; waiting for it"
    with file_lock(folder / LOCK_FILE, on_wait=lambda: logger.info(waiting)):
        _fill_cache(
            encoder,
            corpus,
            folder,
            ids,
            fingerprint,
            batch_size=batch_size,
            chunk_size=chunk_size,
            progress=progress,
        )
        vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
    return Embeddings(ids=ids, vectors=vectors)
