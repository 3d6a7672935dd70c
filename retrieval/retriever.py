"""``Retriever``: an encoder plus an index: build from a corpus, search, save and load.

Example:
    >>> from retrieval import Retriever, load_encoder
    >>> retriever = Retriever(load_encoder("sentence-transformers/all-MiniLM-L6-v2"), index="faiss:Flat")
    >>> retriever.build("data/beir/scifact")
    >>> hits = retriever.search(["vitamin D lowers the risk of fractures"], k=10)
    >>> retriever.save("runs/scifact-minilm")
    >>> same = Retriever.load("runs/scifact-minilm")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Hits
from indexes.faiss_index import FaissIndex
from indexes.io import read_meta
from retrieval.corpus import CorpusSource, Document
from retrieval.embed import Embeddings, embed_corpus
from retrieval.encoders import Encoder, index_metric, load_encoder

logger = logging.getLogger(__name__)

INDEX_BACKENDS = ("faiss",)
TRAIN_SAMPLE = 100_000  # vectors used to train IVF/PQ indexes


def parse_index_spec(spec: str) -> tuple[str, str]:
    """Split ``"faiss:IVF1024,Flat"`` into ``("faiss", "IVF1024,Flat")``; a bare backend gets its default."""
    backend, _, arg = spec.partition(":")
    if backend not in INDEX_BACKENDS:
        raise ValueError(
            f"unknown index {spec!r}; expected one of: faiss:FACTORY (e.g. faiss:Flat, faiss:HNSW32)"
        )
    return backend, arg or "Flat"


def _encoder_ref(encoder: Encoder) -> str:
    """How to find the encoder again: an absolute path for local models, else the hub id."""
    path = Path(encoder.name)
    return str(path.resolve()) if path.exists() else encoder.name


class Retriever:
    """Dense retrieval over a FAISS index.

    Args:
        encoder: the model that embeds queries and documents.
        index: an index spec such as ``faiss:Flat``, ``faiss:HNSW32`` or ``faiss:IVF1024,PQ32``, or an
            already built :class:`~indexes.faiss_index.FaissIndex`.
        search_params: faiss search-time parameters (``{"nprobe": 32}``, ``{"efSearch": 128}``).
        device: ``auto``, ``cpu`` or ``gpu`` for the index.
    """

    def __init__(
        self,
        encoder: Encoder,
        index: str | FaissIndex = "faiss:Flat",
        search_params: dict[str, Any] | None = None,
        device: str = "auto",
    ) -> None:
        self.encoder = encoder
        if isinstance(index, str):
            _, factory = parse_index_spec(index)
            index = FaissIndex(
                encoder.dim,
                factory,
                metric=index_metric(encoder.similarity),
                device=device,
                search_params=search_params,
            )
        if index.dim != encoder.dim:
            raise ValueError(f"index dimension {index.dim} does not match encoder dimension {encoder.dim}")
        self.index = index

    @property
    def index_spec(self) -> str:
        return f"faiss:{self.index.factory}"

    def build(
        self,
        corpus: CorpusSource | Sequence[Document],
        batch_size: int = 64,
        chunk_size: int = 4096,
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ) -> Retriever:
        """Encode ``corpus`` (in resumable chunks when ``cache_dir`` is given) and add it to the index."""
        embeddings = embed_corpus(
            self.encoder,
            corpus,
            out_dir=cache_dir,
            batch_size=batch_size,
            chunk_size=chunk_size,
            progress=progress,
        )
        self.add_embeddings(embeddings)
        return self

    def add_embeddings(self, embeddings: Embeddings, chunk_size: int = 65_536) -> None:
        """Add precomputed document vectors, training the index first on a sample if it needs it."""
        if not self.index.is_trained:
            n = len(embeddings.ids)
            rows = np.sort(np.random.default_rng(0).choice(n, size=min(n, TRAIN_SAMPLE), replace=False))
            self.index.train(np.asarray(embeddings.vectors[rows]))
        for ids, vectors in embeddings.chunks(chunk_size):
            self.index.add(vectors, ids)
        logger.info("indexed %d documents in %s", len(self.index), self.index_spec)

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """Return the top ``k`` documents for each query (a list of texts or ``{id: text}``)."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings or a {query_id: text} mapping, not one string")
        texts = list(queries.values()) if isinstance(queries, Mapping) else list(queries)
        vectors = self.encoder.encode_queries(texts, batch_size=batch_size)
        return self.index.search(vectors, k)

    def save(self, directory: str | Path) -> Path:
        """Write the index, the document ids and ``meta.json`` (encoder, dimension, metric) atomically."""
        return self.index.save(
            directory,
            extra_meta={
                "encoder": _encoder_ref(self.encoder),
                "encoder_kind": self.encoder.kind,
                "similarity": self.encoder.similarity,
            },
        )

    @classmethod
    def load(
        cls, directory: str | Path, encoder: Encoder | None = None, device: str | None = None
    ) -> Retriever:
        """Load a retriever saved with :meth:`save`; the encoder comes from ``meta.json`` unless given."""
        meta = read_meta(directory, kinds=("faiss",))
        if "encoder" not in meta and encoder is None:
            raise ValueError(f"{directory}/meta.json names no encoder; pass encoder=")
        index = FaissIndex.load(directory, device="gpu" if device == "gpu" else "auto")
        return cls(encoder or load_encoder(meta["encoder"], device=device), index=index)
