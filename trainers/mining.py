"""Hard-negative mining in bounded memory, with sentence-transformers' options and the GIST filter.

A dense miner adds the corpus embeddings (cached in shards on disk) to a FAISS index chunk by chunk
and searches the queries in chunks: memory is the index plus one chunk of scores, never a full
query x corpus matrix. A sparse miner (a sparse student: SPLADE or inference-free) encodes the corpus
into the embedded inverted index and searches it exactly. A BM25 miner uses bm25s. Options mirror
``mine_hard_negatives``: ``range_min``/``range_max`` choose the rank window,
``absolute_margin``/``relative_margin`` drop candidates scored too close to the positive,
``num_negatives`` caps the count. The guide then drops
probable false negatives (:meth:`trainers.guide.Guide.filter_candidates`). Results are cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from indexes.base import Index
from indexes.factory import index_factory
from indexes.io import write_json_atomic
from retrieval.embedding_cache import EmbeddingCache
from retrieval.encoders import index_metric
from retrieval.identity import model_identity
from retrieval.settings import show_progress
from trainers.bm25 import BM25
from trainers.config import MiningConfig
from trainers.data import TrainingData
from trainers.guide import Guide, positive_reference

logger = logging.getLogger(__name__)

QUERY_CHUNK = 1024


class Searcher(Protocol):
    name: str

    def search(self, queries: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]: ...

    def pair_scores(self, queries: Sequence[str], doc_ids: Sequence[Sequence[str]]) -> list[np.ndarray]: ...


class DenseSearcher:
    """Exact inner-product search over cached corpus embeddings of a frozen encoder.

    The index is built on the first search, so a run whose mined negatives are cached on disk
    (the cache key needs only ``name``) embeds and indexes nothing.
    """

    def __init__(self, cache: EmbeddingCache, corpus: dict[str, str], chunk_size: int = 16_384) -> None:
        self.cache = cache
        self.name = model_identity(cache.encoder.name)
        self.corpus = corpus
        self.chunk_size = chunk_size

    @functools.cached_property
    def index(self) -> Index:
        encoder = self.cache.encoder
        index = index_factory("faiss:Flat", encoder.dim, metric=index_metric(encoder.similarity))
        doc_ids = list(self.corpus)
        for start in range(0, len(doc_ids), self.chunk_size):
            ids = doc_ids[start : start + self.chunk_size]
            index.add(self.cache.get([self.corpus[d] for d in ids], "document"), ids)
        return index

    def search(self, queries: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
        ids: list[list[str]] = []
        scores = []
        for start in range(0, len(queries), QUERY_CHUNK):
            hits = self.index.search(self.cache.get(queries[start : start + QUERY_CHUNK], "query"), k)
            ids += hits.ids
            scores.append(hits.scores)
        return ids, np.concatenate(scores)

    def pair_scores(self, queries: Sequence[str], doc_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self.cache.get(queries, "query")
        return [
            self.cache.get([self.corpus[d] for d in docs], "document") @ q[i]
            if docs
            else np.zeros(0, np.float32)
            for i, docs in enumerate(doc_ids)
        ]


class SparseSearcher:
    """Exact dot-product search with a sparse encoder (``SparseModelEncoder``) over an inverted index.

    The corpus is encoded on the first search, so a run whose mined negatives are cached on disk
    encodes nothing.

    Args:
        encoder: a sparse encoder (CSR outputs); an inference-free one needs no model for the queries.
        corpus: document id -> text.
    """

    def __init__(self, encoder: Any, corpus: dict[str, str]) -> None:
        self.encoder = encoder
        self.name = model_identity(encoder.name)
        self.corpus = corpus
        self.rows = {d: i for i, d in enumerate(corpus)}

    @functools.cached_property
    def docs(self) -> Any:
        """The corpus' document vectors (CSR), row ``rows[doc_id]``."""
        logger.info("encoding %d documents with %s for mining", len(self.corpus), self.name)
        return self.encoder.encode_documents(list(self.corpus.values()), progress=True)

    @functools.cached_property
    def index(self) -> Index:
        index = index_factory("inverted", self.docs.shape[1])
        index.add(self.docs, list(self.corpus))
        return index

    def search(self, queries: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
        hits = self.index.search(self.encoder.encode_queries(list(queries)), k)
        return hits.ids, hits.scores

    def pair_scores(self, queries: Sequence[str], doc_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self.encoder.encode_queries(list(queries))
        return [
            (self.docs[[self.rows[d] for d in docs]] @ q[i].T).toarray().ravel().astype(np.float32)
            if docs
            else np.zeros(0, np.float32)
            for i, docs in enumerate(doc_ids)
        ]


def _cache_key(searcher: Searcher, data: TrainingData, config: MiningConfig, guide: Guide | None) -> str:
    digest = hashlib.sha1(searcher.name.encode())
    settings = {k: v for k, v in vars(config).items() if k != "enabled"}
    if settings.get("positive_reference") == "least":  # the default before the option: keys unchanged
        del settings["positive_reference"]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    if guide is not None and config.guide_filter:
        digest.update(f"{guide.name}|{guide.margin_strategy}|{guide.margin}".encode())
    for qid in data.query_ids:
        digest.update(f"\0{qid}\0{data.queries[qid]}\0{','.join(data.positives[qid])}".encode())
    for qid in data.query_ids:  # what mining leaves out for the queries it mines (not the dropped ones)
        if qid in data.not_negative:
            digest.update(f"\1{qid}\0{','.join(data.not_negative[qid])}".encode())
    corpus = data.search_corpus
    digest.update(str(len(corpus)).encode())
    for doc_id in corpus:
        digest.update(f"\0{doc_id}".encode())
    return digest.hexdigest()[:16]


def mine_hard_negatives(
    data: TrainingData,
    searcher: Searcher,
    config: MiningConfig,
    guide: Guide | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, list[str]]:
    """Mine up to ``config.num_negatives`` negatives per training query; returns ``{query_id: [doc_id]}``."""
    if config.range_min < 0 or config.range_max <= config.range_min:
        raise ValueError(f"need 0 <= range_min < range_max; got {config.range_min} and {config.range_max}")
    reference = positive_reference(config.positive_reference)  # checked before any search
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"negatives-{_cache_key(searcher, data, config, guide)}.json"
        if cache_file.is_file():
            logger.info("reusing mined negatives from %s", cache_file)
            return json.loads(cache_file.read_text())
    query_ids = data.query_ids
    texts = [data.queries[q] for q in query_ids]
    depth = config.range_max + max(len(data.excluded(q)) for q in data.query_ids)
    ids, scores = searcher.search(texts, depth)
    positive_scores: list[np.ndarray] = []
    if config.absolute_margin is not None or config.relative_margin is not None:
        if data.unsearchable:
            raise ValueError(
                "mining.absolute_margin / relative_margin compare candidates with the positive's search "
                "score, which unsearchable positives (data.title_queries) do not have; unset the margin"
            )
        positive_scores = searcher.pair_scores(texts, [data.positives[q] for q in query_ids])
    use_guide = guide is not None and config.guide_filter
    if use_guide:
        guide_queries = guide.embed(texts, "query")
        for start in range(0, len(query_ids), QUERY_CHUNK):  # embed new texts in batches, not per query
            chunk = range(start, min(start + QUERY_CHUNK, len(query_ids)))
            needed = {d for i in chunk for d in [*data.positives[query_ids[i]], *ids[i][:depth]]}
            guide.embed([data.corpus[d] for d in sorted(needed)], "document")
    mined: dict[str, list[str]] = {}
    dropped_guide = dropped_margin = 0
    for i, qid in enumerate(
        tqdm(query_ids, desc="mining", unit="query", disable=len(query_ids) < 1000 or not show_progress())
    ):
        excluded = data.excluded(qid)
        ranked = [(d, s) for d, s in zip(ids[i], scores[i], strict=False) if d not in excluded]
        window = ranked[config.range_min : config.range_max]
        if config.absolute_margin is not None:
            floor = float(reference(positive_scores[i]))
            kept = [(d, s) for d, s in window if s <= floor - config.absolute_margin]
        elif config.relative_margin is not None:
            floor = float(reference(positive_scores[i]))
            kept = [(d, s) for d, s in window if s <= floor * (1 - config.relative_margin)]
        else:
            kept = window
        dropped_margin += len(window) - len(kept)
        if use_guide and kept:
            candidates = guide.embed([data.corpus[d] for d, _ in kept], "document")
            pos = guide.embed([data.corpus[d] for d in data.positives[qid]], "document")
            keep = guide.filter_candidates(guide_queries[i], pos, candidates, config.positive_reference)
            dropped_guide += int((~keep).sum())
            kept = [c for c, k in zip(kept, keep, strict=True) if k]
        mined[qid] = [d for d, _ in kept[: config.num_negatives]]
    total = sum(map(len, mined.values()))
    logger.info(
        "mined %d negatives for %d queries with %s (dropped %d by margin, %d by the guide)",
        total,
        len(mined),
        searcher.name,
        dropped_margin,
        dropped_guide,
    )
    if cache_file is not None:
        write_json_atomic(cache_file, mined)
    return mined


def interleave(ranked: Sequence[Sequence[str]]) -> list[str]:
    """Merge several miners' negatives for one query: first of each, then second of each, ...;
    a document two miners found stays where it first came."""
    merged: dict[str, None] = {}
    for depth in range(max(map(len, ranked), default=0)):
        for docs in ranked:
            if depth < len(docs):
                merged.setdefault(docs[depth])
    return list(merged)


def build_searcher(name: str, data: TrainingData, cache: EmbeddingCache | None) -> Searcher:
    """``bm25`` or a dense searcher over ``cache`` (the student's or guide's embeddings)."""
    if name == "bm25":
        return BM25(data.search_corpus)
    if cache is None:
        raise ValueError(f"mining model {name!r} needs an encoder")
    return DenseSearcher(cache, data.search_corpus)
