"""TAS-Balanced invariants: each query once per epoch, few clusters per batch, balanced margin bins."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard

from trainers.samplers import QueryBatchSampler, TASBalancedBatchSampler, cluster_queries, margin_bins


def make(n_queries=40, rows_per_query=6, batch=8, clusters_per_batch=1, seed=0):
    row_query = np.repeat(np.arange(n_queries), rows_per_query)
    query_cluster = np.arange(n_queries) % 5
    rng = np.random.default_rng(0)
    # Per query: one row with a huge margin, the others bunched near 0.
    margins = np.where(
        np.arange(len(row_query)) % rows_per_query == 0, 10.0, rng.uniform(0, 0.1, len(row_query))
    )
    return (
        TASBalancedBatchSampler(
            list(range(len(row_query))),
            batch,
            False,
            seed=seed,
            row_query=row_query,
            query_cluster=query_cluster,
            row_margin=margins,
            clusters_per_batch=clusters_per_batch,
            n_bins=10,
        ),
        row_query,
        query_cluster,
    )


def test_every_query_once_per_epoch_and_batches_from_one_cluster() -> None:
    sampler, row_query, cluster = make()
    batches = list(sampler)
    queries = [row_query[r] for b in batches for r in b]
    assert sorted(queries) == list(range(40)) and len(batches) == len(sampler) == 5
    for batch in batches:
        assert len({cluster[row_query[r]] for r in batch}) == 1  # 8 queries per cluster, batch 8


def test_refill_from_further_clusters_when_one_runs_dry() -> None:
    sampler, row_query, _cluster = make(n_queries=30, batch=8)  # clusters of 6: each batch needs two
    for batch in sampler:
        assert len(batch) <= 8 and len({row_query[r] for r in batch}) == len(batch)
    sampler2, row_query2, cluster2 = make(clusters_per_batch=2)
    for batch in sampler2:
        assert len({cluster2[row_query2[r]] for r in batch}) <= 2


def test_margin_bins_are_sampled_evenly() -> None:
    sampler, _row_query, _ = make(n_queries=5, batch=5, rows_per_query=6)
    picks = Counter()
    for epoch in range(400):
        sampler.set_epoch(epoch)
        for batch in sampler:
            picks.update(r % 6 == 0 for r in batch)
    # Two non-empty bins per query (the outlier, the bunch): the outlier row is drawn about half the time,
    # where uniform row sampling would draw it one time in six.
    share = picks[True] / sum(picks.values())
    assert 0.45 < share < 0.55


def test_margin_bins_edge_cases() -> None:
    assert margin_bins(np.array([0.3, 0.3, 0.3]), 10).tolist() == [0, 0, 0]
    assert margin_bins(np.array([0.0, 0.5, 1.0]), 2).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="margin_bins must be at least 1"):
        margin_bins(np.array([0.0]), 0)


def test_deterministic_per_epoch_and_distinct_batches_per_rank() -> None:
    sampler, _row_query, _ = make()
    first, again = list(sampler), list(sampler)
    assert first == again
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    # sentence-transformers' trainer prepares its train loader with even_batches=False.
    shards = [
        list(BatchSamplerShard(sampler, num_processes=2, process_index=i, even_batches=False))
        for i in range(2)
    ]
    rows = [{r for b in shard for r in b} for shard in shards]
    assert rows[0] and rows[1] and not rows[0] & rows[1]  # ranks see distinct batches
    assert len(rows[0] | rows[1]) == 40  # and together every query of the epoch


def test_random_sampler_and_clustering() -> None:
    row_query = np.repeat(np.arange(10), 3)
    sampler = QueryBatchSampler(list(range(30)), 4, True, row_query=row_query)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 and all(len(b) == 4 for b in batches)
    x = np.concatenate([np.random.default_rng(0).normal(c, 0.01, (10, 4)) for c in (-1.0, 1.0)])
    assignment = cluster_queries(x, 2)
    assert (
        len(set(assignment[:10])) == 1 and len(set(assignment[10:])) == 1 and assignment[0] != assignment[10]
    )
    with pytest.raises(ValueError, match="row_query has 3 entries for 30 dataset rows"):
        QueryBatchSampler(list(range(30)), 4, True, row_query=[0, 1, 2])


def test_each_training_data_set_is_clustered_apart(tmp_path) -> None:
    """Queries of an extra data set (ids prefixed ``name/``) never share a cluster with the main set's,
    even when their embeddings coincide; clusters are shared out in proportion to the queries."""
    from types import SimpleNamespace

    from tests.conftest import write_beir
    from trainers.preparation import Preparation

    extra = write_beir(tmp_path / "nfcorpus")
    preparation = Preparation.__new__(Preparation)
    preparation.cache_root = tmp_path / "cache"
    preparation.config = SimpleNamespace(
        data=SimpleNamespace(extra_datasets=[str(extra)]), training=SimpleNamespace(seed=0)
    )
    query_ids = [f"q{i}" for i in range(30)] + [f"nfcorpus/q{i}" for i in range(10)]
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    embeddings = np.concatenate([x, x, x, x])  # the extra set's queries repeat the main set's
    clusters = preparation.dataset_clusters(preparation.dataset_groups(query_ids), embeddings, 8)
    main, other = set(clusters[:30]), set(clusters[30:])
    assert not main & other
    assert len(main) == 6 and len(other) == 2
    alone = Preparation.__new__(Preparation)
    alone.cache_root, alone.config = (
        tmp_path / "cache",
        SimpleNamespace(data=SimpleNamespace(extra_datasets=[]), training=SimpleNamespace(seed=0)),
    )
    np.testing.assert_array_equal(
        alone.dataset_clusters(alone.dataset_groups(query_ids[:30]), embeddings[:30], 4),
        cluster_queries(embeddings[:30], 4),
    )


def test_batches_stay_within_one_group_and_every_batch_is_full() -> None:
    """With query groups (training data sets), refills come from the same group and a group's last
    batch is filled with its own queries drawn again: full batches, so DDP shards lose none."""
    n_queries = 50
    row_query = np.repeat(np.arange(n_queries), 2)
    group = (np.arange(n_queries) >= 30).astype(int)  # 30 queries of one set, 20 of another
    cluster = np.where(group == 0, np.arange(n_queries) % 3, 3 + np.arange(n_queries) % 2)
    kwargs = dict(row_query=row_query, query_cluster=cluster, row_margin=np.zeros(len(row_query)))
    for drop_last in (False, True):
        sampler = TASBalancedBatchSampler(
            list(range(len(row_query))), 8, drop_last, query_group=group, **kwargs
        )
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = [[int(row_query[r]) for r in b] for b in sampler]
            assert all(len({int(group[q]) for q in b}) == 1 for b in batches)
            assert all(len(b) == 8 and len(set(b)) == 8 for b in batches)
            assert set(q for b in batches for q in b) == set(range(n_queries))
            assert len(batches) == len(sampler) == 4 + 3  # ceil(30 / 8) + ceil(20 / 8)
    sampler = TASBalancedBatchSampler(list(range(len(row_query))), 8, False, query_group=group, **kwargs)
    shards = [
        list(BatchSamplerShard(sampler, num_processes=2, process_index=i, even_batches=False)) for i in (0, 1)
    ]
    assert [len(shard) for shard in shards] == [4, 3]  # no batch lost
    seen = [int(row_query[r]) for shard in shards for b in shard for r in b]
    assert set(seen) == set(range(n_queries))  # two processes together still draw every query
    with pytest.raises(ValueError, match="query_group has 3 entries for 50 queries"):
        TASBalancedBatchSampler(list(range(len(row_query))), 8, False, query_group=[0, 1, 0], **kwargs)
    mixed = np.where(np.arange(n_queries) < 40, 0, 1)  # cluster 3 holds queries of both groups
    with pytest.raises(ValueError, match="holds queries of groups"):
        TASBalancedBatchSampler(list(range(len(row_query))), 8, False, query_group=mixed, **kwargs)
