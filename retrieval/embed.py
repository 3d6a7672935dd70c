"""Encode a corpus in chunks into a memory-mapped float32 matrix, with progress and resume.

Corpora larger than memory are streamed twice from disk: once to count and fingerprint them, once
to encode them chunk by chunk into ``embeddings.npy`` (a memory-mapped .npy). ``progress.json``
records how many chunks are done and a fingerprint of the encoder and the documents, so an
interrupted run resumes where it stopped, and a changed corpus or model never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from indexes.io import write_json_atomic
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.encoders import Encoder
from retrieval.identity import model_identity
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

VECTORS_FILE = "embeddings.npy"
IDS_FILE = "ids.json"
PROGRESS_FILE = "progress.json"


@dataclass
class Embeddings:
    """Document vectors (possibly a read-only memmap) and their ids, row for row."""

    ids: list[str]
    vectors: np.ndarray

    def chunks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        for start in range(0, len(self.ids), size):
            yield self.ids[start : start + size], np.asarray(self.vectors[start : start + size])


def _scan(source: CorpusSource, encoder_name: str, dim: int) -> tuple[list[str], str]:
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
        out_dir: where to keep ``embeddings.npy`` (a memmap) and resume information; ``None`` keeps
            everything in memory.
        batch_size: texts per forward pass.
        chunk_size: documents per resumable unit.
        progress: show a progress bar.
    """
    if not isinstance(corpus, str | Path):
        corpus = list(corpus)  # an iterable can be read only once; we need two passes
    ids, fingerprint = _scan(corpus, encoder.name, encoder.dim)
    n, dim = len(ids), encoder.dim
    if n == 0:
        raise ValueError("the corpus is empty: nothing to encode")
    n_chunks = -(-n // chunk_size)
    done = 0
    if out_dir is None:
        vectors: np.ndarray = np.zeros((n, dim), dtype=np.float32)
    else:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state_path = out / PROGRESS_FILE
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        resumable = (
            state.get("fingerprint") == fingerprint
            and state.get("chunk_size") == chunk_size
            and (out / VECTORS_FILE).is_file()
        )
        done = int(state.get("chunks_done", 0)) if resumable else 0
        if done:
            logger.info("resuming %s: %d of %d chunks already encoded", out, done, n_chunks)
        mode = "r+" if resumable else "w+"
        vectors = np.lib.format.open_memmap(out / VECTORS_FILE, mode=mode, dtype=np.float32, shape=(n, dim))
        (out / IDS_FILE).write_text(json.dumps(ids), encoding="utf-8")
    bar = tqdm(
        total=n,
        initial=min(done * chunk_size, n),
        unit="doc",
        desc="encoding",
        disable=not (progress and show_progress()),
    )
    docs = iter_corpus(corpus)
    for chunk_no, batch in enumerate(_batched(docs, chunk_size)):
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
        if out_dir is not None:
            vectors.flush()
            write_json_atomic(
                Path(out_dir) / PROGRESS_FILE,
                {"fingerprint": fingerprint, "chunk_size": chunk_size, "chunks_done": chunk_no + 1, "n": n},
            )
    bar.close()
    return Embeddings(ids=ids, vectors=vectors)
