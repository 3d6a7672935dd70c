"""``Preparation``: the cached training inputs both trainers share.

A recipe (a training configuration such as ``configs/dense-full.yaml``) names the data, the miners,
the guide, the teachers and the sampler; :class:`Preparation` computes what they produce before the
first step: training pairs (``trainers.data``), hard negatives mined and guide-filtered
(``trainers.mining``), the guide's and the dense teacher's embeddings of every training text
(``retrieval.embedding_cache``), the teacher ensemble's per-query normalised scores
(``trainers.teachers``), the row table (``trainers.rows``) and the query-level batch sampler
(``trainers.samplers``), each cached on disk so a rerun or ``--resume`` repeats no work.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from indexes.io import write_file_atomic
from retrieval.embedding_cache import EmbeddingCache
from retrieval.encoders import Encoder, load_encoder
from trainers.config import TeacherConfig, TrainConfig
from trainers.data import TrainingData, extra_prefix, load_training_data
from trainers.guide import Guide
from trainers.mining import Searcher, SparseSearcher, build_searcher, interleave, mine_hard_negatives
from trainers.rows import TrainingRows, build_rows
from trainers.samplers import (
    QueryBatchSampler,
    TASBalancedBatchSampler,
    cluster_queries,
    default_cluster_count,
    sampler_factory,
)
from trainers.teachers import BM25Teacher, CrossEncoderTeacher, DenseTeacher, Ensemble, SparseTeacher, Teacher

logger = logging.getLogger(__name__)


class Preparation:
    """The cached training inputs of one recipe, shared by the dense and sparse trainers.

    Args:
        config: the recipe.
        student_encoder: mines with ``mining.model: student`` (dense: FAISS over cached embeddings;
            sparse: the embedded inverted index); its name goes into the mined-negative cache key.

    Example:
        >>> preparation = Preparation(config, DenseEncoder(model, name=config.model_name))
        >>> rows = preparation.rows()
        >>> sampler = preparation.batch_sampler(rows)
    """

    def __init__(self, config: TrainConfig, student_encoder: Encoder | None = None) -> None:
        self.config = config
        self.cache_root = Path(config.cache_dir)
        self.data: TrainingData = load_training_data(config.data)
        self.student_encoder = student_encoder
        self._searcher: Searcher | None = None
        self.guide: Guide | None = None
        if config.guide is not None:
            encoder = load_encoder(config.guide.model, max_length=config.guide.max_length)
            self.guide = Guide(
                encoder, self.embedding_cache(encoder), config.guide.margin_strategy, config.guide.margin
            )

    def embedding_cache(self, encoder: Any) -> EmbeddingCache:
        return EmbeddingCache(encoder, self.cache_root / "embeddings")

    def searcher(self) -> Searcher:
        """The miner ``mining.model`` names, built once (it also fills ``loss.teacher_pool``)."""
        if self._searcher is None:
            self._searcher = self._build_searcher(self.config.mining.model)
        return self._searcher

    def _build_searcher(self, model: str) -> Searcher:
        if model == "student":
            if self.student_encoder is None:
                raise ValueError(
                    "mining model 'student' needs a student encoder; choose guide, bm25 or a model id"
                )
            if getattr(self.student_encoder, "kind", "dense") == "sparse":
                return SparseSearcher(self.student_encoder, self.data.search_corpus)
            return build_searcher("dense", self.data, self.embedding_cache(self.student_encoder))
        if model == "guide":
            return build_searcher("dense", self.data, self.guide.cache)  # type: ignore[union-attr]
        if model == "bm25":
            return build_searcher("bm25", self.data, None)
        return build_searcher("dense", self.data, self.embedding_cache(load_encoder(model)))

    def negatives(self) -> dict[str, list[str]]:
        """Given negatives first, then each miner's in turn (``mining.model``, then ``extra_models``)."""
        mining = self.config.mining
        given = {q: list(d) for q, d in self.data.negatives.items()}
        if not mining.enabled:
            return given
        cache = self.cache_root / "negatives"
        searchers = [self.searcher(), *(self._build_searcher(m) for m in mining.extra_models)]
        mined = [mine_hard_negatives(self.data, s, mining, self.guide, cache) for s in searchers]
        negatives = {
            q: list(dict.fromkeys([*given.get(q, []), *interleave([m.get(q, []) for m in mined])]))[
                : max(mining.num_negatives, 1)
            ]
            for q in self.data.query_ids
        }
        return self.fill_empty(negatives)

    def fill_empty(self, negatives: dict[str, list[str]]) -> dict[str, list[str]]:
        """A query whose candidates were all filtered keeps its rows with one random (easy) negative."""
        rng = np.random.default_rng(self.config.training.seed)
        doc_ids = list(self.data.search_corpus)
        searchable = set(doc_ids)
        filled = 0
        for qid, docs in negatives.items():
            if docs:
                continue
            excluded = self.data.excluded(qid)
            if len(excluded & searchable) >= len(doc_ids):
                continue
            candidate = doc_ids[int(rng.integers(len(doc_ids)))]
            while candidate in excluded:
                candidate = doc_ids[int(rng.integers(len(doc_ids)))]
            negatives[qid] = [candidate]
            filled += 1
        if filled:
            logger.info("%d queries had no negative left after filtering; each got a random one", filled)
        return negatives

    def teachers(self) -> Ensemble | None:
        if not self.config.teachers:
            return None
        members: list[Teacher] = []
        for spec in self.config.teachers:
            if spec.kind == "dense":
                cache = self.dense_teacher_cache(spec)
                members.append(DenseTeacher(cache))
            elif spec.kind == "sparse":
                members.append(SparseTeacher(spec.model, max_length=spec.max_length or 512))
            elif spec.kind == "cross":
                members.append(CrossEncoderTeacher(spec.model))
            else:
                members.append(BM25Teacher(self.data.corpus))
        return Ensemble(members, [t.weight for t in self.config.teachers], self.cache_root / "teacher_scores")

    def pools(self, depth: int) -> dict[str, list[str]]:
        """Each query's top ``depth`` candidates from the miner (never its positives or known matches)."""
        query_ids = self.data.query_ids
        extra = max(len(self.data.excluded(q)) for q in query_ids)
        ids, _ = self.searcher().search([self.data.queries[q] for q in query_ids], depth + extra)
        pools = {}
        for qid, ranked in zip(query_ids, ids, strict=True):
            excluded = self.data.excluded(qid)
            pools[qid] = [d for d in ranked if d not in excluded][:depth]
        return pools

    def rows(self) -> TrainingRows:
        negatives = self.negatives()
        teachers = self.teachers()
        depth = self.config.loss.teacher_pool
        pools = self.pools(depth) if depth and teachers is not None else None
        return build_rows(self.data, negatives, teachers, pools)

    def dense_teacher_cache(self, spec: TeacherConfig) -> EmbeddingCache:
        """The embedding cache of a dense teacher: the guide's when the teacher is the guide."""
        guide = self.config.guide
        same_as_guide = guide is not None and (spec.model, spec.max_length) == (guide.model, guide.max_length)
        if same_as_guide and self.guide is not None:
            return self.guide.cache
        return self.embedding_cache(load_encoder(spec.model, max_length=spec.max_length))

    @staticmethod
    def table_matrix(rows: TrainingRows, cache: EmbeddingCache) -> np.ndarray:
        """``cache``'s embedding of every text in the row table, row ``i`` for text id ``i``."""
        out = np.zeros((len(rows.table), cache.encoder.dim), dtype=np.float32)
        for role in ("query", "document"):
            ids, texts = rows.table.by_role(role)
            if len(ids):
                out[ids] = cache.get(texts, role)
        return out

    def guide_matrix(self, rows: TrainingRows) -> np.ndarray:
        """Guide embedding of every text in the row table, row ``i`` for text id ``i``."""
        if self.guide is None:
            raise ValueError("no guide configured")
        return self.table_matrix(rows, self.guide.cache)

    def teacher_matrix(self, rows: TrainingRows) -> np.ndarray:
        """The first dense teacher's embedding of every text in the row table (the guide's when equal)."""
        spec = next((t for t in self.config.teachers if t.kind == "dense"), None)
        if spec is None:
            raise ValueError("no teacher of kind 'dense' configured")
        return self.table_matrix(rows, self.dense_teacher_cache(spec))

    def batch_sampler(self, rows: TrainingRows):
        sampler = self.config.sampler
        if sampler.name == "random":
            return sampler_factory(QueryBatchSampler, row_query=rows.row_query)
        n_queries = len(rows.query_ids)
        texts = [self.data.queries[q] for q in rows.query_ids]
        if sampler.cluster_on == "guide" and self.guide is not None:
            embeddings = self.guide.embed(texts, "query")
        else:
            dense = next((t for t in self.config.teachers if t.kind == "dense"), None)
            if dense is None:
                raise ValueError("sampler.cluster_on 'teacher' needs a dense teacher")
            encoder = load_encoder(dense.model, max_length=dense.max_length)
            embeddings = self.embedding_cache(encoder).get(texts, "query")
        k = sampler.clusters or default_cluster_count(n_queries, self.config.training.batch_size)
        groups = self.dataset_groups(rows.query_ids)
        clusters = self.dataset_clusters(groups, embeddings, k)
        logger.info(
            "TAS-Balanced: %d queries in %d clusters, %d per batch",
            n_queries,
            len(np.unique(clusters)),
            sampler.clusters_per_batch,
        )
        return sampler_factory(
            TASBalancedBatchSampler,
            row_query=rows.row_query,
            query_cluster=clusters,
            row_margin=rows.row_margin,
            clusters_per_batch=sampler.clusters_per_batch,
            n_bins=sampler.margin_bins,
            query_group=groups,
        )

    def dataset_groups(self, query_ids: list[str]) -> np.ndarray:
        """The training data set of each query: 0 for ``data.dataset``, ``i + 1`` for the i-th extra."""
        extras = [extra_prefix(name) for name in self.config.data.extra_datasets]
        return np.array(
            [next((i + 1 for i, p in enumerate(extras) if q.startswith(p)), 0) for q in query_ids],
            dtype=np.int64,
        )

    def dataset_clusters(self, groups: np.ndarray, embeddings: np.ndarray, k: int) -> np.ndarray:
        """Cluster each training data set's queries apart (``groups``: :meth:`dataset_groups`; ``k``
        shared in proportion to their queries), so that a cluster holds one data set's queries."""
        clusters = np.zeros(len(groups), dtype=np.int64)
        offset = 0
        for group in np.unique(groups):
            members = np.flatnonzero(groups == group)
            k_group = max(1, round(k * len(members) / len(groups)))
            clusters[members] = self.cached_clusters(embeddings[members], k_group) + offset
            offset += k_group
        return clusters

    def cached_clusters(self, embeddings: np.ndarray, k: int) -> np.ndarray:
        """K-means assignment of the training queries, computed once per embeddings, k and seed."""
        seed = self.config.training.seed
        digest = hashlib.sha1(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
        digest.update(f"{k}|{seed}".encode())
        path = self.cache_root / "clusters" / f"clusters-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path)
        clusters = cluster_queries(embeddings, k, seed=seed)
        write_file_atomic(path, lambda tmp: np.save(tmp, clusters))
        return clusters
