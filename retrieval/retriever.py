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

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from indexes.base import Hits, Index
from indexes.faiss_index import FaissIndex
from indexes.inverted import InvertedIndex
from indexes.io import read_meta
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.embed import Embeddings, embed_corpus
from retrieval.encoders import Encoder, index_metric, load_encoder

logger = logging.getLogger(__name__)

INDEX_BACKENDS = ("faiss", "inverted", "lucene")
INDEX_SPECS = (
    "faiss:FACTORY (dense; e.g. faiss:Flat, faiss:HNSW32, faiss:IVF1024,PQ32), "
    "inverted[:impact[=SCALE]] (sparse, embedded exact index; float weights or integer impacts), "
    "lucene[:impact=SCALE] (sparse, Lucene impact index through pyserini)"
)
TRAIN_SAMPLE = 100_000  # vectors used to train IVF/PQ indexes
DEFAULT_IMPACT_SCALE = 100.0


def parse_index_spec(spec: str) -> tuple[str, str]:
    """Split ``"faiss:IVF1024,Flat"`` into ``("faiss", "IVF1024,Flat")``; a bare backend gets its default."""
    backend, _, arg = spec.partition(":")
    if backend not in INDEX_BACKENDS:
        raise ValueError(f"unknown index {spec!r}; expected one of: {INDEX_SPECS}")
    if backend == "faiss":
        return backend, arg or "Flat"
    if arg and not (arg == "impact" or arg.startswith("impact=")):
        raise ValueError(f"index {spec!r}: unknown option {arg!r}; expected impact or impact=SCALE")
    return backend, arg


def impact_scale(backend: str, arg: str) -> float | None:
    """The integer-impact scale an ``inverted``/``lucene`` spec asks for (None: float weights)."""
    if not arg:
        return DEFAULT_IMPACT_SCALE if backend == "lucene" else None
    _, _, value = arg.partition("=")
    try:
        scale = float(value) if value else DEFAULT_IMPACT_SCALE
    except ValueError as exc:
        raise ValueError(f"impact scale {value!r} is not a number") from exc
    if scale <= 0:
        raise ValueError(f"impact scale must be positive; got {scale}")
    return scale


def default_index_spec(encoder: Encoder) -> str:
    """``faiss:Flat`` for dense encoders, ``inverted`` (exact, float weights) for sparse ones."""
    return "faiss:Flat" if encoder.kind == "dense" else "inverted"


def make_index(spec: str | None, encoder: Encoder, search_params: dict[str, Any] | None, device: str) -> Any:
    """A new, empty index of the kind ``spec`` names (None: the default), checked against the encoder."""
    spec = spec or default_index_spec(encoder)
    backend, arg = parse_index_spec(spec)
    if (backend == "faiss") != (encoder.kind == "dense"):
        want = "faiss:FACTORY" if encoder.kind == "dense" else "inverted or lucene"
        raise ValueError(
            f"index {spec!r} does not fit the {encoder.kind} encoder {encoder.name!r}; use {want}"
        )
    if backend == "faiss":
        return FaissIndex(
            encoder.dim,
            arg,
            metric=index_metric(encoder.similarity),
            device=device,
            search_params=search_params,
        )
    vocabulary = getattr(encoder, "vocabulary", None)
    scale = impact_scale(backend, arg)
    if backend == "inverted":
        return InvertedIndex(encoder.dim, impact_scale=scale, vocabulary=vocabulary)
    from indexes.lucene import LuceneImpactIndex

    if vocabulary is None:
        raise ValueError(f"encoder {encoder.name!r} names no vocabulary; a Lucene index needs token strings")
    return LuceneImpactIndex(encoder.dim, vocabulary, impact_scale=scale or DEFAULT_IMPACT_SCALE)


def index_spec(index: Any) -> str:
    if isinstance(index, FaissIndex):
        return f"faiss:{index.factory}"
    backend = "inverted" if isinstance(index, InvertedIndex) else "lucene"
    scale = getattr(index, "impact_scale", None)
    return f"{backend}:impact={scale:g}" if scale is not None else backend


def load_index(directory: str | Path, device: str | None = None) -> Any:
    """Any saved index, by the kind its ``meta.json`` names."""
    kind = read_meta(directory).get("kind")
    if kind == "faiss":
        return FaissIndex.load(directory, device="gpu" if device == "gpu" else "auto")
    if kind == "inverted":
        return InvertedIndex.load(directory)
    if kind == "lucene-impact":
        from indexes.lucene import LuceneImpactIndex

        return LuceneImpactIndex.load(directory)
    raise ValueError(
        f"{directory}: index kind {kind!r} cannot back a Retriever (faiss, inverted, lucene-impact)"
    )


def _encoder_ref(encoder: Encoder) -> str:
    """How to find the encoder again: an absolute path for local models, else the hub id."""
    path = Path(encoder.name)
    return str(path.resolve()) if path.exists() else encoder.name


class Retriever:
    """An encoder plus an index: dense vectors in FAISS, sparse vectors in an inverted or Lucene index.

    Args:
        encoder: the model that embeds queries and documents.
        index: an index spec (``faiss:Flat``, ``faiss:HNSW32``, ``faiss:IVF1024,PQ32`` for dense
            encoders; ``inverted``, ``inverted:impact=100``, ``lucene`` for sparse ones), or an index.
        search_params: faiss search-time parameters (``{"nprobe": 32}``, ``{"efSearch": 128}``).
        device: ``auto``, ``cpu`` or ``gpu`` for the index.
    """

    def __init__(
        self,
        encoder: Encoder,
        index: str | Index | None = None,
        search_params: dict[str, Any] | None = None,
        device: str = "auto",
    ) -> None:
        self.encoder = encoder
        if index is None or isinstance(index, str):
            index = make_index(index, encoder, search_params, device)
        if index.dim != encoder.dim:
            raise ValueError(f"index dimension {index.dim} does not match encoder dimension {encoder.dim}")
        self.index = index

    @property
    def index_spec(self) -> str:
        return index_spec(self.index)

    def build(
        self,
        corpus: CorpusSource | Sequence[Document],
        batch_size: int = 64,
        chunk_size: int = 4096,
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ) -> Retriever:
        """Encode ``corpus`` and add it to the index (dense: resumable chunks when ``cache_dir`` is given)."""
        if self.encoder.kind == "sparse":
            self.add_sparse(corpus, batch_size=batch_size, chunk_size=chunk_size, progress=progress)
            return self
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

    def add_sparse(
        self,
        corpus: CorpusSource | Sequence[Document],
        batch_size: int = 16,
        chunk_size: int = 1024,
        progress: bool = True,
    ) -> None:
        """Encode documents chunk by chunk into CSR rows and add them to the sparse index."""
        docs = iter_corpus(corpus)
        bar = tqdm(desc="encoding documents", unit="doc", disable=not progress)
        nnz = 0
        while chunk := list(itertools.islice(docs, chunk_size)):
            vectors = self.encoder.encode_documents([document_text(d) for d in chunk], batch_size=batch_size)
            self.index.add(vectors, [d["_id"] for d in chunk])
            nnz += vectors.nnz
            bar.update(len(chunk))
        bar.close()
        n = max(len(self.index), 1)
        logger.info("indexed %d documents in %s, %.1f terms each", len(self.index), self.index_spec, nnz / n)

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """Return the top ``k`` documents for each query (a list of texts or ``{id: text}``)."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings or a {query_id: text} mapping, not one string")
        texts = list(queries.values()) if isinstance(queries, Mapping) else list(queries)
        vectors = self.encoder.encode_queries(texts, batch_size=batch_size)
        return self.index.search(vectors, k)

    def save(self, directory: str | Path) -> Path:
        """Write the index, the document ids and ``meta.json`` (encoder, dimension, metric) atomically."""
        self.index.save(
            directory,
            extra_meta={
                "encoder": _encoder_ref(self.encoder),
                "encoder_kind": self.encoder.kind,
                "similarity": self.encoder.similarity,
            },
        )
        return Path(directory)

    @classmethod
    def load(
        cls, directory: str | Path, encoder: Encoder | None = None, device: str | None = None
    ) -> Retriever:
        """Load a retriever saved with :meth:`save`; the encoder comes from ``meta.json`` unless given."""
        meta = read_meta(directory)
        if "encoder" not in meta and encoder is None:
            raise ValueError(f"{directory}/meta.json names no encoder; pass encoder=")
        index = load_index(directory, device=device)
        return cls(encoder or load_encoder(meta["encoder"], device=device), index=index)
