"""Query-level batch samplers for sentence-transformers' trainer: random and TAS-Balanced.

The training dataset holds one row per (query, positive, negative) triple. An epoch visits every
query once; a batch holds distinct queries, and for each query one of its rows is chosen:

- ``QueryBatchSampler``: queries in random order, a uniformly random row per query.
- ``TASBalancedBatchSampler`` (Hofstätter et al., 2021): queries are clustered once (k-means over
  their embeddings); each batch draws from ``clusters_per_batch`` clusters picked uniformly, taking
  up to ``batch_size / clusters_per_batch`` queries from each without replacement and refilling from
  further clusters when one runs dry. Each query's rows are binned by teacher margin into
  ``margin_bins`` equal-width bins; a non-empty bin is picked uniformly, then a row in it.

Both are deterministic for a given seed and epoch, so under DDP every rank computes the same batch
sequence and accelerate's ``BatchSamplerShard`` hands each rank distinct batches.
Pass them to ``SentenceTransformerTrainingArguments(batch_sampler=...)`` through :func:`sampler_factory`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

logger = logging.getLogger(__name__)


def margin_bins(margins: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin index (0..n_bins-1) of each margin over [min, max]; all equal margins share bin 0."""
    margins = np.asarray(margins, dtype=np.float64)
    if n_bins < 1:
        raise ValueError(f"margin_bins must be at least 1; got {n_bins}")
    low, high = margins.min(), margins.max()
    if high - low < 1e-12:
        return np.zeros(len(margins), dtype=np.int64)
    return np.minimum(((margins - low) / (high - low) * n_bins).astype(np.int64), n_bins - 1)


def cluster_queries(embeddings: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """K-means (faiss) cluster id of each query embedding."""
    import faiss

    n = len(embeddings)
    n_clusters = max(1, min(n_clusters, n))
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    kmeans = faiss.Kmeans(
        x.shape[1], n_clusters, niter=25, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1
    )
    kmeans.train(x)
    _, assignment = kmeans.index.search(x, 1)
    return assignment.ravel().astype(np.int64)


def default_cluster_count(n_queries: int, batch_size: int) -> int:
    """About four batches' worth of queries per cluster, at least 2 clusters."""
    return max(2, n_queries // (4 * batch_size))


class QueryBatchSampler(DefaultBatchSampler):
    """Each epoch: every query once, in random order, with one uniformly chosen row per query.

    Args:
        dataset: the training dataset (rows).
        batch_size: queries per batch.
        drop_last: drop a last, incomplete batch.
        row_query: query index of each dataset row.
        seed: base seed; the epoch is added so epochs differ and ranks agree.
    """

    def __init__(  # noqa: PLR0917 - the positional signature sentence-transformers calls
        self,
        dataset: Sequence,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: object | None = None,
        seed: int = 0,
        *,
        row_query: Sequence[int],
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        row_query = np.asarray(row_query, dtype=np.int64)
        if len(row_query) != len(dataset):
            raise ValueError(f"row_query has {len(row_query)} entries for {len(dataset)} dataset rows")
        order = np.argsort(row_query, kind="stable")
        queries, starts = np.unique(row_query[order], return_index=True)
        self.query_rows = {int(q): rows for q, rows in zip(queries, np.split(order, starts[1:]), strict=True)}
        self.queries = np.asarray(list(self.query_rows), dtype=np.int64)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def pick_row(self, query: int, rng: np.random.Generator) -> int:
        rows = self.query_rows[query]
        return int(rows[rng.integers(len(rows))])

    def query_batches(self, rng: np.random.Generator) -> Iterator[list[int]]:
        order = rng.permutation(self.queries)
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        for queries in self.query_batches(rng):
            if self.drop_last and len(queries) < self.batch_size:
                return
            yield [self.pick_row(q, rng) for q in queries]

    def __len__(self) -> int:
        n = len(self.queries)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class TASBalancedBatchSampler(QueryBatchSampler):
    """Topic-aware batches with margin-balanced pair sampling (TAS-Balanced).

    Args:
        query_cluster: cluster id of each query (indexed like ``row_query`` values).
        row_margin: teacher margin (positive score - negative score) of each row.
        clusters_per_batch: clusters each batch is drawn from.
        n_bins: equal-width margin bins per query.
        query_group: group of each query (its training data set); a batch's clusters, refills
            included, all come from one group, and a group's last batch is filled with queries of that
            group drawn again, so every batch is full. ``None``: one group.
    """

    def __init__(  # noqa: PLR0917 - the positional signature sentence-transformers calls
        self,
        dataset: Sequence,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: object | None = None,
        seed: int = 0,
        *,
        row_query: Sequence[int],
        query_cluster: Sequence[int],
        row_margin: Sequence[float],
        clusters_per_batch: int = 1,
        n_bins: int = 10,
        query_group: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            dataset, batch_size, drop_last, valid_label_columns, generator, seed, row_query=row_query
        )
        if clusters_per_batch < 1:
            raise ValueError(f"clusters_per_batch must be at least 1; got {clusters_per_batch}")
        query_cluster = np.asarray(query_cluster, dtype=np.int64)
        row_margin = np.asarray(row_margin, dtype=np.float64)
        if len(row_margin) != len(dataset):
            raise ValueError(f"row_margin has {len(row_margin)} entries for {len(dataset)} rows")
        self.clusters_per_batch = clusters_per_batch
        groups = (
            np.zeros(len(query_cluster), dtype=np.int64) if query_group is None else np.asarray(query_group)
        )
        if len(groups) != len(query_cluster):
            raise ValueError(f"query_group has {len(groups)} entries for {len(query_cluster)} queries")
        self.cluster_queries: dict[int, list[int]] = {}
        self.cluster_group: dict[int, int] = {}
        self.group_queries: dict[int, list[int]] = {}
        for q in self.queries.tolist():
            cluster = int(query_cluster[q])
            self.cluster_queries.setdefault(cluster, []).append(q)
            self.group_queries.setdefault(int(groups[q]), []).append(q)
            if self.cluster_group.setdefault(cluster, int(groups[q])) != int(groups[q]):
                raise ValueError(
                    f"cluster {cluster} holds queries of groups {self.cluster_group[cluster]} and {groups[q]}"
                )
        # Per query: its rows grouped by margin bin (non-empty bins only).
        self.query_bins = {
            q: [rows[bins == b] for b in np.unique(bins)]
            for q, rows in self.query_rows.items()
            for bins in [margin_bins(row_margin[rows], n_bins)]
        }

    def pick_row(self, query: int, rng: np.random.Generator) -> int:
        bins = self.query_bins[query]
        rows = bins[rng.integers(len(bins))]
        return int(rows[rng.integers(len(rows))])

    def query_batches(self, rng: np.random.Generator) -> Iterator[list[int]]:
        pools = {c: list(rng.permutation(qs)) for c, qs in self.cluster_queries.items()}
        per_cluster = max(1, self.batch_size // self.clusters_per_batch)
        while pools:
            batch: list[int] = []
            chosen: list[int] = []
            while len(batch) < self.batch_size and pools:
                same = [
                    c for c in pools if not chosen or self.cluster_group[c] == self.cluster_group[chosen[0]]
                ]
                if not same:
                    break  # the batch's group has no queries left
                candidates = [c for c in same if c not in chosen] or same
                cluster = candidates[rng.integers(len(candidates))]
                chosen.append(cluster)
                take = min(
                    per_cluster if len(chosen) <= self.clusters_per_batch else self.batch_size,
                    self.batch_size - len(batch),
                )
                pool = pools[cluster]
                batch += [int(q) for q in pool[:take]]
                del pool[:take]
                if not pool:
                    del pools[cluster]
            if len(self.group_queries) > 1 and len(batch) < self.batch_size:
                batch += self.top_up(batch, self.cluster_group[chosen[0]], rng)
            yield batch

    def top_up(self, batch: list[int], group: int, rng: np.random.Generator) -> list[int]:
        """Queries of ``group`` drawn again to fill its last batch, so that with several groups every
        batch is full (DDP shards count on full batches) and still holds one group."""
        taken = set(batch)
        others = [q for q in self.group_queries[group] if q not in taken]
        want = min(self.batch_size - len(batch), len(others))
        return [int(q) for q in rng.choice(others, size=want, replace=False)] if want else []

    def __len__(self) -> int:
        if len(self.group_queries) == 1:
            return super().__len__()
        return sum(-(-len(qs) // self.batch_size) for qs in self.group_queries.values())


def sampler_factory(cls: type[QueryBatchSampler], **kwargs: object) -> functools.partial:
    """A callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)`` with our extra arguments."""
    return functools.partial(cls, **kwargs)
