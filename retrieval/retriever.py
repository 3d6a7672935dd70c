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
from indexes.factory import INDEX_KINDS, index_factory, index_spec, load_index, parse_index_spec
from indexes.io import meta_array, meta_value, read_meta
from indexes.lucene_bm25 import BM25_KIND
from retrieval.base import query_texts, register_loader
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.embed import Embeddings, embed_corpus
from retrieval.encoders import Encoder, index_metric, load_encoder
from retrieval.identity import model_fingerprint
from retrieval.query_weights import QUERY_WEIGHTS, DocumentFrequencies, query_tokenizer, reweight
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

TRAIN_SAMPLE = 100_000  # vectors used to train IVF/PQ indexes


def default_index_spec(encoder: Encoder) -> str:
    """``faiss:Flat`` for dense encoders, ``inverted`` (exact, float weights) for sparse ones."""
    return "faiss:Flat" if encoder.kind == "dense" else "inverted"


def make_index(
    spec: str | None,
    encoder: Encoder,
    search_params: dict[str, Any] | None,
    device: str,
    *,
    milvus_uri: str | None = None,
    milvus_collection: str = "winnow",
) -> Index:
    """A new, empty index of the kind ``spec`` names (None: the default), checked against the encoder:
    a dense encoder needs ``faiss:FACTORY`` or ``milvus``, a sparse one ``inverted``, ``lucene`` or
    ``milvus`` (collection ``milvus_collection`` on the server ``milvus_uri``; ``None``: Milvus Lite)."""
    spec = spec or default_index_spec(encoder)
    backend, _ = parse_index_spec(spec)
    if backend != "milvus" and (backend == "faiss") != (encoder.kind == "dense"):
        want = "faiss:FACTORY or milvus" if encoder.kind == "dense" else "inverted, lucene or milvus"
        raise ValueError(
            f"index {spec!r} does not fit the {encoder.kind} encoder {encoder.name!r}; use {want}"
        )
    return index_factory(
        spec,
        encoder.dim,
        metric=index_metric(encoder.similarity),
        vocabulary=encoder.vocabulary,
        device=device,
        search_params=search_params,
        sparse=encoder.kind == "sparse",
        uri=milvus_uri,
        collection=milvus_collection,
    )


def encoder_reference(encoder: Encoder) -> str:
    """How to find the encoder again: an absolute path for local models, else the hub id."""
    path = Path(encoder.name)
    return str(path.resolve()) if path.exists() else encoder.name


def check_encoder_identity(
    directory: str | Path, meta: dict[str, Any], encoder_name: str, given: bool, force: bool = False
) -> None:
    """Refuse to search an index with another model than the one that built it.

    ``meta.json`` records the encoder's reference and fingerprint
    (:func:`~retrieval.identity.model_fingerprint`); the encoder to use must have the same fingerprint
    (where both are known; else the same reference). A model of the same dimension would otherwise
    search silently and return wrong hits.

    Args:
        directory: the index folder (for messages).
        meta: its ``meta.json``.
        encoder_name: the name or path of the encoder about to be used.
        given: the caller passed the encoder (else it is the one ``meta.json`` names).
        force: only log a warning.

    Raises:
        ValueError: naming both models and their fingerprints.
    """
    recorded_ref, recorded = meta.get("encoder"), meta.get("encoder_fingerprint")
    if recorded_ref is None and recorded is None:  # saved by an index alone: nothing to compare
        return
    current = model_fingerprint(encoder_name)
    if recorded and current:
        same = recorded == current
    else:
        path = Path(encoder_name)
        same = (str(path.resolve()) if path.exists() else encoder_name) == recorded_ref
    if same:
        return
    where = Path(directory) / "meta.json"
    if given:
        problem = (
            f"{where}: the index was built with encoder {recorded_ref!r} ({recorded or 'no fingerprint'}), "
            f"not with the given encoder {encoder_name!r} ({current or 'no fingerprint'}); its vectors "
            "would not match the index's"
        )
    else:
        problem = (
            f"{where}: the model at {recorded_ref!r} has changed since the index was built (fingerprint "
            f"{recorded}, now {current}): it was retrained or replaced in place"
        )
    if force:
        logger.warning("%s; searching anyway (force=True)", problem)
        return
    raise ValueError(f"{problem}. Rebuild the index with this model, or pass force=True to use it anyway")


class Retriever:
    """An encoder plus an index: dense vectors in FAISS, sparse vectors in an inverted or Lucene index.

    Args:
        encoder: the model that embeds queries and documents.
        index: an index spec (``faiss:Flat``, ``faiss:HNSW32``, ``faiss:IVF1024,PQ32`` for dense
            encoders; ``inverted``, ``inverted:impact=100``, ``lucene`` for sparse ones; ``milvus`` for
            either), or an index.
        search_params: search-time parameters of the index: faiss (``{"nprobe": 32}``,
            ``{"efSearch": 128}``), milvus (``{"ef": 64}``) or lucene two-phase search
            (``{"prune_ratio": 0.5, "expansion_rate": 5}``).
        device: ``auto``, ``cpu`` or ``gpu`` for the index.
        milvus_uri: the Milvus server of a ``milvus`` index (``None``: Milvus Lite in the index folder).
        milvus_collection: its collection.
        query_weights: for an inference-free sparse model, ``model`` (its own IDF table) or ``corpus``
            (IDF re-estimated on the documents this retriever indexes, kept in the index folder; see
            :mod:`retrieval.query_weights`).
    """

    def __init__(
        self,
        encoder: Encoder,
        index: str | Index | None = None,
        search_params: dict[str, Any] | None = None,
        device: str = "auto",
        *,
        milvus_uri: str | None = None,
        milvus_collection: str = "winnow",
        query_weights: str = "model",
        document_frequencies: DocumentFrequencies | None = None,
    ) -> None:
        if query_weights not in QUERY_WEIGHTS:
            raise ValueError(f"query_weights={query_weights!r}; expected one of {', '.join(QUERY_WEIGHTS)}")
        if query_weights == "corpus" and document_frequencies is None:
            document_frequencies = DocumentFrequencies(query_tokenizer(encoder))
        self.encoder = encoder
        self.query_weights = query_weights
        self.document_frequencies = document_frequencies if query_weights == "corpus" else None
        if index is None or isinstance(index, str):
            index = make_index(
                index,
                encoder,
                search_params,
                device,
                milvus_uri=milvus_uri,
                milvus_collection=milvus_collection,
            )
        if index.dim != encoder.dim:
            raise ValueError(f"index dimension {index.dim} does not match encoder dimension {encoder.dim}")
        counted = self.document_frequencies.n_documents if self.document_frequencies else len(index)
        if counted != len(index):
            raise ValueError(
                f"query_weights='corpus' counts {counted} documents but the index holds {len(index)}: "
                "corpus query weights are counted while this retriever indexes, so start from an empty "
                "index (or load a folder saved with them)"
            )
        self.index = index

    @property
    def kind(self) -> str:
        """``dense`` or ``sparse``: the encoder's kind."""
        return self.encoder.kind

    @property
    def name(self) -> str:
        """The encoder's name (hub id or path): what results and ``meta.json`` record as the model."""
        return self.encoder.name

    @property
    def index_spec(self) -> str:
        """The index spec string (``faiss:HNSW32``, ``inverted:impact=100`` ...)."""
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
        bar = tqdm(desc="encoding documents", unit="doc", disable=not (progress and show_progress()))
        nnz = 0
        while chunk := list(itertools.islice(docs, chunk_size)):
            texts = [document_text(d) for d in chunk]
            vectors = self.encoder.encode_documents(texts, batch_size=batch_size)
            self.index.add(vectors, [d["_id"] for d in chunk])
            if self.document_frequencies is not None:
                self.document_frequencies.update(texts)
            nnz += vectors.nnz
            bar.update(len(chunk))
        bar.close()
        n = max(len(self.index), 1)
        logger.info("indexed %d documents in %s, %.1f terms each", len(self.index), self.index_spec, nnz / n)

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """Return the top ``k`` documents for each query (a list of texts or ``{id: text}``)."""
        texts = query_texts(queries)
        vectors = self.encoder.encode_queries(texts, batch_size=batch_size)
        if self.document_frequencies is not None:
            vectors = reweight(vectors, self.document_frequencies.idf())
        return self.index.search(vectors, k)

    def save(self, directory: str | Path) -> Path:
        """Write the index, the document ids and ``meta.json`` (encoder, dimension, metric) atomically;
        with ``query_weights="corpus"``, the token document frequencies too."""
        meta: dict[str, Any] = {
            "encoder": encoder_reference(self.encoder),
            "encoder_fingerprint": model_fingerprint(self.encoder.name),
            "encoder_kind": self.encoder.kind,
            "similarity": self.encoder.similarity,
        }
        if self.document_frequencies is not None:
            meta["query_weights"] = "corpus"
            meta["document_frequencies"] = self.document_frequencies.df
            meta["document_frequency_documents"] = self.document_frequencies.n_documents
        self.index.save(directory, extra_meta=meta)
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        encoder: Encoder | None = None,
        device: str | None = None,
        force: bool = False,
    ) -> Retriever:
        """Load a retriever saved with :meth:`save`; the encoder comes from ``meta.json`` unless given.

        :func:`retrieval.load_retriever` opens BM25 folders as well.

        Args:
            directory: the saved folder.
            encoder: the encoder to search with; it must be the model that built the index
                (:func:`check_encoder_identity`).
            device: where the encoder runs; ``gpu``/``cpu`` also place a FAISS index.
            force: search even when the encoder is not the one that built the index (a warning).

        Raises:
            ValueError: the encoder (given, or the one ``meta.json`` names, changed since) is not the
                model that built the index, unless ``force``.
        """
        meta = read_meta(directory)
        counts = saved_document_frequencies(directory, meta)  # checked before the index and model load
        if meta.get("kind") == BM25_KIND:
            raise ValueError(
                f"{directory} holds a BM25 index, which has no encoder; open it with "
                "retrieval.load_retriever or BM25Retriever.load"
            )
        if "encoder" not in meta and encoder is None:
            raise ValueError(f"{directory}/meta.json names no encoder; pass encoder=")
        name = encoder.name if encoder is not None else str(meta["encoder"])
        check_encoder_identity(directory, meta, name, given=encoder is not None, force=force)
        index = load_index(directory, device=device)
        encoder = encoder or load_encoder(name, device=device)
        if counts is None:
            return cls(encoder, index=index)
        df, n_documents = counts
        frequencies = DocumentFrequencies(query_tokenizer(encoder), df, n_documents)
        return cls(encoder, index=index, query_weights="corpus", document_frequencies=frequencies)


def saved_document_frequencies(directory: str | Path, meta: dict[str, Any]) -> tuple[np.ndarray, int] | None:
    """The token document frequencies and document count an index folder searches with, or ``None``
    when it uses the model's own query weights; an error names the key or file that is wrong."""
    weights = meta.get("query_weights", "model")
    if weights not in QUERY_WEIGHTS:
        raise ValueError(
            f"{Path(directory) / 'meta.json'}: query_weights = {weights!r}; expected one of "
            f"{', '.join(QUERY_WEIGHTS)}"
        )
    if weights == "model":
        return None
    return (
        meta_array(directory, meta, "document_frequencies"),
        meta_value(directory, meta, "document_frequency_documents", int),
    )


register_loader([kind for kind in INDEX_KINDS if kind != BM25_KIND], Retriever.load)
