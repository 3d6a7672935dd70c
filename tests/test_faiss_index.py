"""FaissIndex against brute force on synthetic data, input checks, and atomic save/load."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from indexes.faiss_index import FaissIndex


def clustered(n: int, dim: int, n_clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    x = centres[rng.integers(0, n_clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    x = clustered(3000, 32)
    q = clustered(50, 32, seed=1)
    return x, q, [f"doc-{i}" for i in range(len(x))]


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_flat_matches_brute_force(data, metric: str) -> None:
    x, q, ids = data
    index = FaissIndex(32, "Flat", metric=metric, device="cpu")
    index.add(x, ids)
    hits = index.search(q, 10)
    scores = q @ x.T if metric == "ip" else -((q[:, None, :] - x[None]) ** 2).sum(-1)
    expected = np.argsort(-scores, axis=1)[:, :10]
    assert [[ids[j] for j in row] for row in expected] == hits.ids
    assert hits.scores.dtype == np.float32 and hits.scores.shape == (50, 10)


@pytest.mark.parametrize(
    ("factory", "params", "min_recall"),
    [
        ("HNSW32", {"efSearch": 256}, 0.85),
        ("IVF32,Flat", {"nprobe": 8}, 0.9),
        ("IVF32,PQ8", {"nprobe": 8}, 0.4),
    ],
)
def test_approximate_recall_against_flat(data, factory: str, params: dict, min_recall: float) -> None:
    x, q, ids = data
    exact = FaissIndex(32, "Flat", device="cpu")
    exact.add(x, ids)
    approx = FaissIndex(32, factory, device="cpu", search_params=params)
    approx.add(x, ids)  # trains on first add
    truth, got = exact.search(q, 10).ids, approx.search(q, 10).ids
    recall = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)])
    assert recall >= min_recall, f"{factory} recall@10 {recall:.3f} < {min_recall}"


def test_search_params_take_effect(data) -> None:
    x, q, ids = data
    exact = FaissIndex(32, "Flat", device="cpu")
    exact.add(x, ids)
    truth = exact.search(q, 10).ids
    recalls = []
    for ef in (16, 1024):
        approx = FaissIndex(32, "HNSW32", device="cpu", search_params={"efSearch": ef})
        approx.add(x, ids)
        got = approx.search(q, 10).ids
        recalls.append(np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)]))
    assert recalls[1] > recalls[0] and recalls[1] >= 0.99
    with pytest.raises(ValueError, match="does not apply"):
        FaissIndex(32, "Flat", search_params={"nprobe": 4})


def test_k_larger_than_index_returns_all() -> None:
    index = FaissIndex(4, "Flat", device="cpu")
    index.add(np.eye(4, dtype=np.float32)[:3], ["a", "b", "c"])
    hits = index.search(np.eye(4, dtype=np.float32)[:1], 10)
    assert hits.ids[0][0] == "a" and sorted(hits.ids[0]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("vectors", "ids", "message"),
    [
        (np.zeros((2, 3), np.float32), ["a", "b"], "dimension 3; this index expects dimension 4"),
        (np.zeros(4, np.float32), ["a"], "2-D array"),
        (np.array([[0, np.nan, 0, 0]], np.float32), ["a"], "NaN"),
        (np.zeros((2, 4), np.float32), ["a", "a"], "duplicate id 'a'"),
        (np.zeros((2, 4), np.float32), ["a"], "1 ids for 2 vectors"),
    ],
)
def test_bad_input_names_the_problem(vectors, ids, message: str) -> None:
    index = FaissIndex(4, "Flat", device="cpu")
    with pytest.raises(ValueError, match=message):
        index.add(vectors, ids)


def test_duplicate_id_across_batches_and_bad_factory() -> None:
    index = FaissIndex(4, "Flat", device="cpu")
    index.add(np.ones((1, 4), np.float32), ["a"])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(np.ones((1, 4), np.float32), ["a"])
    with pytest.raises(ValueError, match="factory string 'NoSuch9'"):
        FaissIndex(4, "NoSuch9")
    with pytest.raises(ValueError, match="unknown metric 'cos'"):
        FaissIndex(4, "Flat", metric="cos")
    with pytest.raises(ValueError, match="needs at least"):
        FaissIndex(4, "IVF64,Flat").add(np.random.rand(10, 4).astype(np.float32), [str(i) for i in range(10)])


def test_save_load_round_trip(tmp_path, data) -> None:
    x, q, ids = data
    index = FaissIndex(32, "HNSW32", search_params={"efSearch": 48}, device="cpu")
    index.add(x, ids)
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix", device="cpu")
    assert len(loaded) == len(index) and loaded.search_params == {"efSearch": 48}
    a, b = index.search(q, 5), loaded.search(q, 5)
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.scores, b.scores)


def test_interrupted_save_keeps_the_old_index(tmp_path, monkeypatch) -> None:
    index = FaissIndex(4, "Flat", device="cpu")
    index.add(np.eye(4, dtype=np.float32), list("abcd"))
    index.save(tmp_path / "ix")
    index.add(np.ones((1, 4), np.float32), ["e"])

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "ix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # no temporary left behind
    assert len(FaissIndex.load(tmp_path / "ix", device="cpu")) == 4  # the old index is intact


def test_refuses_to_overwrite_a_foreign_directory(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    index = FaissIndex(4, "Flat", device="cpu")
    index.add(np.eye(4, dtype=np.float32), list("abcd"))
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        index.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_gpu_request_without_gpu_is_explained() -> None:
    from indexes.faiss_index import gpu_count

    if gpu_count() > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="no GPU support"):
        FaissIndex(4, "Flat", device="gpu")


def test_vectors_returns_what_a_flat_index_stores() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 8)).astype(np.float32)
    index = FaissIndex(8, "Flat")
    index.add(vectors, [f"d{i}" for i in range(7)])
    np.testing.assert_array_equal(index.vectors(), vectors)
