"""Teachers score (query, candidate) pairs; an ensemble normalises them per query and combines them.

Heterogeneous teachers (dense bi-encoders, siamese sparse encoders, cross-encoders, BM25) score on
different scales. Each teacher's scores are min-max normalised over each query's candidates, then
combined with configurable weights (normalised to sum to 1), so the ensemble score of every
candidate lies in [0, 1]. Scores are computed once and cached on disk, keyed by teacher and pair.

Example:
    >>> ensemble = Ensemble([DenseTeacher(cache), BM25Teacher(corpus)], weights=[0.7, 0.3])
    >>> scores = ensemble.score(["q text"], [["doc a", "doc b"]])   # one array per query
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from retrieval.embedding_cache import EmbeddingCache
from retrieval.identity import model_identity
from trainers.bm25 import BM25
from trainers.pair_scores import PairScoreStore

logger = logging.getLogger(__name__)


@runtime_checkable
class Teacher(Protocol):
    """Scores each query's candidate documents (texts); higher is more relevant."""

    name: str

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]: ...


class DenseTeacher:
    """A frozen bi-encoder; its embeddings come from (and go to) an :class:`EmbeddingCache`."""

    def __init__(self, cache: EmbeddingCache) -> None:
        self.cache = cache
        self.name = f"dense:{model_identity(cache.encoder.name)}"

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self.cache.get(queries, "query")
        flat = [t for docs in candidates for t in docs]
        d = self.cache.get(flat, "document") if flat else np.zeros((0, q.shape[1]), np.float32)
        out, start = [], 0
        for i, docs in enumerate(candidates):
            out.append(d[start : start + len(docs)] @ q[i])
            start += len(docs)
        return out


class SparseTeacher:
    """A siamese sparse encoder (SPLADE): its own query encoder, dot product of sparse vectors."""

    def __init__(self, model_name: str, batch_size: int = 32, max_length: int = 256) -> None:
        from retrieval.pooling.loading import load_sparse_encoder
        from retrieval.sparse_encoder import SparseModelEncoder

        model = load_sparse_encoder(model_name, device="cpu" if not _cuda() else None)
        self.encoder = SparseModelEncoder(model, name=model_name, max_length=max_length)
        self.name = f"sparse:{model_identity(model_name)}"
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self.encoder.encode_queries(list(queries), batch_size=self.batch_size, progress=True)
        unique = list(dict.fromkeys(t for docs in candidates for t in docs))
        d = self.encoder.encode_documents(unique, batch_size=self.batch_size, progress=True)
        position = {t: i for i, t in enumerate(unique)}
        return [
            np.asarray((d[[position[t] for t in docs]] @ q[i].T).toarray()).ravel().astype(np.float32)
            for i, docs in enumerate(candidates)
        ]


class CrossEncoderTeacher:
    """Any sentence-transformers ``CrossEncoder``."""

    def __init__(self, model_name: str, batch_size: int = 32) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(model_name)
        self.name = f"cross:{model_identity(model_name)}"
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        pairs = [(q, d) for q, docs in zip(queries, candidates, strict=True) for d in docs]
        flat = np.asarray(self.model.predict(pairs, batch_size=self.batch_size), dtype=np.float32)
        out, start = [], 0
        for docs in candidates:
            out.append(flat[start : start + len(docs)])
            start += len(docs)
        return out


class BM25Teacher:
    """BM25 over the training corpus (texts must be corpus documents)."""

    name = "bm25"

    def __init__(self, corpus: dict[str, str]) -> None:
        self.bm25 = BM25(corpus)
        self._id_of = {text: doc_id for doc_id, text in corpus.items()}

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return self.bm25.pair_scores(queries, [[self._id_of[t] for t in docs] for docs in candidates])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def minmax_per_query(scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scale each query's scores to [0, 1]; a query whose candidates all score alike gets 0.5 for each."""
    out = []
    for raw in scores:
        row = np.asarray(raw, dtype=np.float32)
        if row.size == 0:
            out.append(row)
            continue
        low, high = float(row.min()), float(row.max())
        out.append(np.full_like(row, 0.5) if high - low < 1e-12 else (row - low) / (high - low))
    return out


class Ensemble:
    """Weighted sum of per-query min-max normalised teacher scores, cached on disk.

    Args:
        teachers: the members.
        weights: one non-negative weight per teacher (normalised to sum to 1); default equal.
        cache_dir: where each teacher's raw pair scores are kept
            (:class:`~trainers.pair_scores.PairScoreStore`; ``None``: no cache).
    """

    def __init__(
        self,
        teachers: Sequence[Teacher],
        weights: Sequence[float] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not teachers:
            raise ValueError("an ensemble needs at least one teacher")
        weights = list(weights) if weights is not None else [1.0] * len(teachers)
        if len(weights) != len(teachers):
            raise ValueError(f"got {len(weights)} weights for {len(teachers)} teachers")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"teacher weights must be non-negative with a positive sum; got {weights}")
        self.teachers = list(teachers)
        self.weights = [w / sum(weights) for w in weights]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._stores: dict[str, PairScoreStore] = {}

    def _raw(
        self, teacher: Teacher, queries: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        if self.cache_dir is None:
            logger.info("scoring %d pairs with teacher %s", sum(map(len, candidates)), teacher.name)
            return teacher.score(queries, candidates)
        if teacher.name not in self._stores:
            self._stores[teacher.name] = PairScoreStore(self.cache_dir, teacher.name)
        return self._stores[teacher.name].score(queries, candidates, teacher.score)

    def member_scores(
        self, queries: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> list[list[np.ndarray]]:
        """Each teacher's per-query min-max normalised scores (teacher-major), from the score cache."""
        return [minmax_per_query(self._raw(teacher, queries, candidates)) for teacher in self.teachers]

    def score(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Ensemble score of each candidate, in [0, 1], one array per query."""
        return combine(self.member_scores(queries, candidates), self.weights)


def combine(normalised: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> list[np.ndarray]:
    """Weighted sum of per-teacher normalised scores (teacher-major input), one float32 array per query."""
    combined = [np.zeros(len(scores), dtype=np.float32) for scores in normalised[0]]
    for member, weight in zip(normalised, weights, strict=True):
        combined = [acc + weight * norm for acc, norm in zip(combined, member, strict=True)]
    return combined
