"""The embedded inverted index: exact agreement with brute force, quantisation, round-trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from indexes.inverted import InvertedIndex


def random_sparse(n: int, dim: int, density: float, seed: int) -> sparse.csr_matrix:
    """Non-negative random sparse vectors with a skewed (Zipf-like) term distribution."""
    rng = np.random.default_rng(seed)
    probabilities = 1.0 / np.arange(1, dim + 1) ** 0.8
    probabilities /= probabilities.sum()
    per_row = rng.poisson(density * dim, size=n) + 1
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.choice(dim, size=len(rows), p=probabilities)
    values = rng.gamma(2.0, 0.5, size=len(rows)).astype(np.float32)
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(n, dim), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def brute_force(docs: sparse.csr_matrix, queries: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = (queries @ docs.T).toarray()
    order = np.lexsort((np.broadcast_to(np.arange(docs.shape[0]), scores.shape), -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def data() -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    return random_sparse(3000, 500, 0.03, seed=1), random_sparse(60, 500, 0.01, seed=2)


@pytest.mark.parametrize("threads", [1, 2])
def test_exact_agreement_with_brute_force(data, threads: int) -> None:
    docs, queries = data
    index = InvertedIndex(docs.shape[1], threads=threads)
    ids = [f"d{i}" for i in range(docs.shape[0])]
    index.add(docs[:1000], ids[:1000])  # several batches, and a search in between
    index.search(queries[:2], k=5)
    index.add(docs[1000:], ids[1000:])
    hits = index.search(queries, k=20)
    order, want = brute_force(docs, queries, 20)
    for row in range(queries.shape[0]):
        positive = want[row] > 0
        assert hits.ids[row] == [ids[j] for j in order[row][positive]]
        np.testing.assert_allclose(hits.scores[row][positive], want[row][positive], rtol=1e-5)
        assert np.isneginf(hits.scores[row][~positive]).all()


def test_ties_break_towards_the_earlier_document() -> None:
    docs = sparse.csr_matrix(np.array([[1.0, 0], [1.0, 0], [2.0, 0], [0, 1.0], [1.0, 0]], dtype=np.float32))
    index = InvertedIndex(2)
    index.add(docs, ["a", "b", "c", "d", "e"])
    hits = index.search(np.array([[1.0, 0.0], [1.0, 0.5]], dtype=np.float32), k=3)
    assert hits.ids == [["c", "a", "b"], ["c", "a", "b"]]


def test_negative_query_weights_are_scored_too() -> None:
    docs = sparse.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 2.0]], dtype=np.float32))
    index = InvertedIndex(2)
    index.add(docs, ["a", "b", "c"])
    hits = index.search(np.array([[1.0, -1.0]], dtype=np.float32), k=3)
    assert hits.ids == [["b", "a", "c"]]
    np.testing.assert_array_equal(hits.scores, [[1.0, 0.0, -2.0]])


@pytest.mark.parametrize("dense_ratio", [0, 1_000_000])  # never / always the blocked strategy
@pytest.mark.parametrize("block", [1, 97, 5000])
def test_both_kernel_strategies_agree_with_brute_force(block: int, dense_ratio: int) -> None:
    """Blocks smaller than the collection, ties (integer weights) and queries with an empty term."""
    from indexes.inverted_kernels import block_layout, scratch, search_postings

    rng = np.random.default_rng(block)
    docs = random_sparse(1500, 80, 0.05, seed=block)
    docs.data = np.ceil(docs.data * 2).astype(np.float32)  # few distinct scores: many exact ties
    queries = random_sparse(25, 80, 0.04, seed=block + 1)
    queries.data = rng.integers(1, 4, size=queries.nnz).astype(np.float32)
    csc = docs.tocsc()
    csc.sort_indices()
    k = 12
    indptr, doc_numbers = csc.indptr.astype(np.int64), csc.indices.astype(np.int32)
    bptr, local = block_layout(indptr, doc_numbers, docs.shape[0], block)
    buffers = scratch(2, docs.shape[0])
    got_d, got_s, counts = search_postings(
        indptr,
        doc_numbers,
        csc.data,
        bptr,
        local,
        queries.indptr.astype(np.int64),
        queries.indices.astype(np.int64),
        queries.data,
        docs.shape[0],
        k,
        *buffers,
        block,
        dense_ratio,
    )
    assert not buffers[0].any() and not buffers[1].any()  # left zeroed for the next search
    order, want = brute_force(docs, queries, k)
    for row in range(queries.shape[0]):
        positive = want[row] > 0
        assert counts[row] == min(k, int(((queries[row] @ docs.T).toarray() > 0).sum()))
        assert got_d[row][: counts[row]].tolist() == order[row][positive].tolist()
        np.testing.assert_array_equal(got_s[row][: counts[row]], want[row][positive])


def test_block_maxima_by_hand() -> None:
    from indexes.block_max import block_maxima
    from indexes.inverted_kernels import block_layout

    indptr = np.array([0, 3, 4, 4], np.int64)
    docs = np.array([1, 4, 5, 3], np.int32)
    weights = np.array([7, 2, 9, 4], np.uint16)
    bptr, _ = block_layout(indptr, docs, n_docs=6, block=4)
    assert block_maxima(bptr, weights).tolist() == [[7.0, 9.0], [4.0, 0.0], [0.0, 0.0]]


def idf_like(n_docs: int, n_queries: int, dim: int, seed: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Documents with Zipf-like terms and queries weighted like inference-free ones (log-IDF of each
    term, so the frequent terms with the longest postings weigh least)."""
    docs = random_sparse(n_docs, dim, 0.05, seed=seed)
    docs.data = np.ceil(docs.data * 4).astype(np.float32)  # integer weights: many exact ties
    df = np.bincount(docs.indices, minlength=dim)
    idf = np.log((n_docs + 1) / (df + 1)).astype(np.float32) + 0.1
    queries = random_sparse(n_queries, dim, 0.05, seed=seed + 1)
    queries.data = idf[queries.indices]
    return docs, queries


@pytest.mark.parametrize("block", [64, 500])
def test_maxscore_equals_blocked_and_brute_force(block: int) -> None:
    docs, queries = idf_like(4000, 40, 120, seed=block)
    index = InvertedIndex(docs.shape[1])
    index.add(docs, [f"d{i}" for i in range(docs.shape[0])])
    pruned = index.search(queries, k=10, strategy="maxscore", block=block)
    plain = index.search(queries, k=10, strategy="blocked", block=block)
    assert pruned.ids == plain.ids
    np.testing.assert_array_equal(pruned.scores, plain.scores)  # bit for bit: same sums, same order
    order, want = brute_force(docs, queries, 10)
    assert pruned.ids == [[f"d{j}" for j in row] for row in order]
    np.testing.assert_allclose(pruned.scores, want, rtol=1e-6)


def test_maxscore_prunes_and_refuses_negative_weights() -> None:
    """A collection whose block maxima prune (one rare heavy term, frequent light ones): block-max MaxScore
    returns the blocked kernel's hits, leaves its accumulator zero; negative weights are refused."""
    from indexes.block_max import block_maxima, query_maxscore
    from indexes.inverted_kernels import block_layout

    n = 20_000
    rows = np.arange(n)
    light = sparse.csr_matrix((np.ones(n, np.float32), (rows, rows % 3)), shape=(n, 4))
    heavy = sparse.csr_matrix((np.full(5, 50.0, np.float32), ([3, 7, 11, 15, 19], [3] * 5)), shape=(n, 4))
    docs = (light + heavy).tocsr()
    index = InvertedIndex(4)
    index.add(docs, [f"d{i}" for i in range(n)])
    queries = np.array([[1.0, 1.0, 1.0, 2.0]], np.float32)
    pruned = index.search(queries, k=3, strategy="maxscore", block=256)
    assert (
        pruned.ids == index.search(queries, k=3, strategy="blocked", block=256).ids == [["d3", "d7", "d11"]]
    )
    csc = docs.tocsc()
    csc.sort_indices()
    bptr, local = block_layout(csc.indptr.astype(np.int64), csc.indices.astype(np.int32), n, 256)
    acc = np.zeros(256, np.float32)
    out_s, out_d = np.full(3, -np.inf, np.float32), np.full(3, -1, np.int64)
    count = query_maxscore(
        bptr,
        local,
        csc.data,
        block_maxima(bptr, csc.data),
        np.arange(4),
        queries[0],
        n,
        3,
        256,
        acc,
        out_s,
        out_d,
    )
    assert count == 3 and out_d.tolist() == [3, 7, 11] and not acc.any()
    with pytest.raises(ValueError, match="positive query weights"):
        index.search(-queries, k=3, strategy="maxscore")


def test_block_layout_by_hand() -> None:
    """Term 0 in documents 1, 4, 5; term 1 in 3; term 2 nowhere; blocks of 4 documents (0-3, 4-5)."""
    from indexes.inverted_kernels import block_layout

    indptr = np.array([0, 3, 4, 4], np.int64)
    docs = np.array([1, 4, 5, 3], np.int32)
    bptr, local = block_layout(indptr, docs, n_docs=6, block=4)
    assert bptr.tolist() == [[0, 1, 3], [3, 4, 4], [4, 4, 4]]
    assert local.dtype == np.uint16 and local.tolist() == [1, 0, 1, 3]
    with pytest.raises(ValueError, match="between 1 and 65536 documents"):
        block_layout(indptr, docs, n_docs=6, block=70000)


def test_layout_is_rebuilt_after_add() -> None:
    index = InvertedIndex(3)
    index.add(sparse.csr_matrix(np.array([[1.0, 0, 0], [0, 2.0, 0]], np.float32)), ["a", "b"])
    assert index.search(np.array([[1.0, 1.0, 0]], np.float32), k=2, strategy="blocked").ids == [["b", "a"]]
    index.add(sparse.csr_matrix(np.array([[3.0, 0, 0]], np.float32)), ["c"])
    assert index.search(np.array([[1.0, 1.0, 0]], np.float32), k=3, strategy="blocked").ids == [
        ["c", "b", "a"]
    ]


def test_strategies_give_the_same_hits(data) -> None:
    docs, queries = data
    index = InvertedIndex(docs.shape[1], impact_scale=100)
    index.add(docs, [f"d{i}" for i in range(docs.shape[0])])
    hits = {s: index.search(queries, k=15, strategy=s) for s in ("auto", "touched", "blocked", "maxscore")}
    assert hits["auto"].ids == hits["touched"].ids == hits["blocked"].ids == hits["maxscore"].ids
    np.testing.assert_array_equal(hits["auto"].scores, hits["blocked"].scores)
    np.testing.assert_array_equal(hits["maxscore"].scores, hits["blocked"].scores)
    np.testing.assert_array_equal(hits["touched"].scores, hits["blocked"].scores)
    small = index.search(queries, k=15, strategy="blocked", block=97)  # many blocks, same hits
    assert small.ids == hits["blocked"].ids
    np.testing.assert_array_equal(small.scores, hits["blocked"].scores)
    with pytest.raises(ValueError, match="unknown strategy 'wand'; expected one of auto, touched, blocked"):
        index.search(queries, k=3, strategy="wand")
    with pytest.raises(ValueError, match="block must be between 1 and 65536 documents"):
        index.search(queries, k=3, block=0)
    with pytest.raises(ValueError, match=r"\(uint16 offsets\); got 65537"):
        index.search(queries, k=3, block=65537)


def test_impact_quantisation_scores_like_integers(data) -> None:
    docs, queries = data
    index = InvertedIndex(docs.shape[1], impact_scale=100, query_scale=50)
    index.add(docs, [str(i) for i in range(docs.shape[0])])
    hits = index.search(queries, k=10)
    q_docs = docs.copy()
    q_docs.data = np.rint(q_docs.data * 100)
    q_queries = queries.copy()
    q_queries.data = np.rint(q_queries.data * 50)
    order, want = brute_force(q_docs, q_queries, 10)
    for row in range(queries.shape[0]):
        positive = want[row] > 0
        assert hits.ids[row] == [str(j) for j in order[row][positive]]
        np.testing.assert_allclose(hits.scores[row][positive], want[row][positive] / 5000, rtol=1e-6)
    assert index.n_postings == docs.nnz - int((np.rint(docs.data * 100) == 0).sum())


def test_save_load_round_trip(tmp_path, data) -> None:
    docs, queries = data
    index = InvertedIndex(docs.shape[1], impact_scale=10, vocabulary=[f"t{i}" for i in range(docs.shape[1])])
    index.add(docs, [f"d{i}" for i in range(docs.shape[0])])
    before = index.search(queries, k=7)
    index.save(tmp_path / "inv")
    for mmap in (False, True):
        loaded = InvertedIndex.load(tmp_path / "inv", mmap=mmap)
        after = loaded.search(queries, k=7)
        assert after.ids == before.ids
        np.testing.assert_array_equal(after.scores, before.scores)
        assert loaded.vocabulary == index.vocabulary and len(loaded) == len(index)
        assert (loaded.term_frequencies() == index.term_frequencies()).all()


def test_k_beyond_the_collection_and_empty_queries() -> None:
    index = InvertedIndex(4)
    index.add(sparse.csr_matrix(np.eye(4, dtype=np.float32)[:2]), ["x", "y"])
    hits = index.search(sparse.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32)), k=5)
    assert hits.ids == [["x", "y"], []]
    assert hits.scores.shape == (2, 5) and np.isneginf(hits.scores[1]).all()


@pytest.mark.parametrize(
    ("vectors", "ids", "message"),
    [
        (np.ones((2, 3), dtype=np.float32), ["a", "b"], "have 3 dimensions; this index has 4"),
        (np.array([[1, 0, 0, 0.0], [1, 0, 0, -1.0]]), ["a", "b"], "non-negative weights .*row 1 has -1"),
        (np.array([[np.nan, 0, 0, 1.0]]), ["a"], "NaN or infinite weights, first in row 0"),
        (np.ones((2, 4)), ["a", "a"], "duplicate id 'a'"),
        (np.ones((2, 4)), ["a"], "got 1 ids for 2 vectors"),
    ],
)
def test_bad_input_names_the_problem(vectors, ids, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InvertedIndex(4).add(vectors, ids)


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch) -> None:
    index = InvertedIndex(4)
    index.add(np.eye(4, dtype=np.float32), list("abcd"))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("indexes.inverted.write_meta", boom)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "inv")
    assert list(tmp_path.iterdir()) == []


def test_scratch_is_kept_between_searches_and_concurrent_searches_stay_exact(data) -> None:
    from concurrent.futures import ThreadPoolExecutor

    docs, queries = data
    index = InvertedIndex(docs.shape[1], threads=2)
    index.add(docs, [f"d{i}" for i in range(docs.shape[0])])
    want = index.search(queries, k=10)
    kept = index._scratch.kept
    assert kept is not None and index.search(queries[:3], k=10).ids == want.ids[:3]
    assert index._scratch.kept is kept  # the same arrays, reused
    with ThreadPoolExecutor(4) as pool:  # searches that find the scratch taken get their own
        results = list(pool.map(lambda _: index.search(queries, k=10), range(8)))
    assert all(r.ids == want.ids for r in results)
    index.add(docs[:5], [f"e{i}" for i in range(5)])
    index.search(queries[:1], k=1)
    assert index._scratch.kept[0].shape[1] == docs.shape[0] + 5  # re-sized with the collection
