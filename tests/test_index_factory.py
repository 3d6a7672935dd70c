"""One factory and one loader for every index; every vector index follows the ``Index`` protocol."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from indexes import FaissIndex, Index, InvertedIndex, index_factory, index_spec, load_index
from indexes.factory import parse_index_spec
from indexes.lucene import LuceneImpactIndex
from tests.test_inverted_index import random_sparse

PROTOCOL_METHODS = ("train", "add", "search", "save", "load", "__len__")
VOCAB = [f"tok{i}" for i in range(50)]


def dense_data(n: int = 40, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("cls", [FaissIndex, InvertedIndex, LuceneImpactIndex])
def test_every_vector_index_class_implements_the_protocol(cls) -> None:
    for name in PROTOCOL_METHODS:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}()"
    assert isinstance(inspect.getattr_static(cls, "load"), classmethod)
    assert isinstance(inspect.getattr_static(cls, "is_trained"), property)
    index = LuceneImpactIndex(len(VOCAB), VOCAB) if cls is LuceneImpactIndex else cls(16)
    assert isinstance(index, Index)
    assert index.metric == "ip" and index.dim == (len(VOCAB) if cls is LuceneImpactIndex else 16)
    assert len(index) == 0 and index.ids == []


def test_things_that_are_not_indexes_fail_the_protocol() -> None:
    class NoSearch:
        dim, metric, is_trained, ids = 4, "ip", True, []

        def add(self, vectors, ids) -> None: ...

        def __len__(self) -> int:
            return 0

    assert not isinstance(NoSearch(), Index)


@pytest.mark.parametrize(
    ("spec", "cls"),
    [("faiss:Flat", FaissIndex), ("faiss", FaissIndex), ("faiss:IVF4,Flat", FaissIndex)],
)
def test_dense_round_trip_through_factory_and_loader(spec, cls, tmp_path) -> None:
    x, q = dense_data(), dense_data(5, seed=1)
    ids = [f"d{i}" for i in range(len(x))]
    index = index_factory(spec, 8, metric="ip", device="cpu")
    assert isinstance(index, cls) and isinstance(index, Index)
    assert index.is_trained == (spec != "faiss:IVF4,Flat")
    index.train(x)
    assert index.is_trained
    index.add(x, ids)
    hits = index.search(q, 5)
    loaded = load_index(index.save(tmp_path / "i"), device="cpu")
    assert isinstance(loaded, cls) and len(loaded) == len(x) and loaded.ids == ids
    again = loaded.search(q, 5)
    assert again.ids == hits.ids
    np.testing.assert_allclose(again.scores, hits.scores, rtol=1e-6)
    assert index_spec(loaded) == ("faiss:Flat" if spec == "faiss" else spec)


@pytest.mark.parametrize("spec", ["inverted", "inverted:impact", "inverted:impact=50"])
def test_inverted_round_trip_through_factory_and_loader(spec, tmp_path) -> None:
    docs, queries = random_sparse(60, 50, 0.1, seed=1), random_sparse(4, 50, 0.1, seed=2)
    ids = [f"d{i}" for i in range(60)]
    index = index_factory(spec, 50, vocabulary=VOCAB)
    assert isinstance(index, InvertedIndex) and index.is_trained
    index.train(docs)  # a no-op
    index.add(docs, ids)
    hits = index.search(queries, 5)
    loaded = load_index(index.save(tmp_path / "i"))
    assert isinstance(loaded, InvertedIndex) and loaded.ids == ids and loaded.vocabulary == VOCAB
    assert loaded.search(queries, 5).ids == hits.ids
    expected = {"inverted": "inverted", "inverted:impact": "inverted:impact=100"}.get(spec, spec)
    assert index_spec(loaded) == expected


def test_spec_and_argument_errors_name_what_is_valid(tmp_path) -> None:
    assert parse_index_spec("faiss:IVF16,PQ4") == ("faiss", "IVF16,PQ4")
    assert parse_index_spec("lucene") == ("lucene", "")
    with pytest.raises(ValueError, match=r"unknown index 'annoy'.*faiss:FACTORY.*inverted.*lucene"):
        index_factory("annoy", 8)
    with pytest.raises(ValueError, match="unknown option 'quant'; expected impact or impact=SCALE"):
        index_factory("inverted:quant", 8)
    with pytest.raises(ValueError, match="impact scale must be positive"):
        index_factory("inverted:impact=-1", 8)
    with pytest.raises(ValueError, match="metric 'l2', expected ip"):
        index_factory("inverted", 8, metric="l2")
    with pytest.raises(ValueError, match=r"no search parameters \(got nprobe\)"):
        index_factory("inverted", 8, search_params={"nprobe": 4})
    with pytest.raises(ValueError, match="needs vocabulary="):
        index_factory("lucene", 8)
    with pytest.raises(ValueError, match="faiss cannot build factory string 'Nope'"):
        index_factory("faiss:Nope", 8)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text(json.dumps({"kind": "onnx-encoder"}))
    with pytest.raises(ValueError, match=r"kind 'onnx-encoder' is not an index; expected one of faiss"):
        load_index(tmp_path / "other")


@pytest.mark.lucene
def test_lucene_round_trip_through_factory_and_loader(tmp_path) -> None:
    pytest.importorskip("pyserini")
    docs, queries = random_sparse(60, 50, 0.1, seed=1), random_sparse(4, 50, 0.1, seed=2)
    ids = [f"d{i}" for i in range(60)]
    index = index_factory("lucene:impact=100", 50, vocabulary=VOCAB)
    assert isinstance(index, LuceneImpactIndex) and isinstance(index, Index) and index.is_trained
    index.add(docs, ids)
    hits = index.search(queries, 5)
    embedded = index_factory("inverted:impact=100", 50)
    embedded.add(docs, ids)
    assert embedded.search(queries, 5).ids == hits.ids  # same impacts, same ranking
    loaded = load_index(index.save(tmp_path / "lucene"))
    assert isinstance(loaded, LuceneImpactIndex) and loaded.ids == ids and len(loaded) == 60
    assert loaded.search(queries, 5).ids == hits.ids
    assert index_spec(loaded) == "lucene:impact=100"
