"""One way to make an index and one way to open a saved one, faiss-style.

An index spec string names the backend and its options:

- ``faiss:FACTORY``: a dense FAISS index from a faiss factory string (``faiss:Flat``, ``faiss:HNSW32``,
  ``faiss:IVF1024,PQ32``; a bare ``faiss`` is ``faiss:Flat``);
- ``inverted[:impact[=SCALE]]``: the embedded exact inverted index, float weights or integer impacts;
- ``lucene[:impact=SCALE]``: a Lucene impact index through pyserini (integer impacts, scale 100 by default);
- ``milvus[:TYPE[,NAME=VALUE...]]``: a Milvus collection, dense or sparse (``milvus`` is exact: ``FLAT``
  or ``SPARSE_INVERTED_INDEX``; ``milvus:HNSW,M=16,efConstruction=200``, ``milvus:IVF_FLAT,nlist=1024``),
  in Milvus Lite inside the index folder or on the server ``uri=`` names (:mod:`indexes.milvus`).

:func:`load_index` opens any index folder by the ``kind`` its ``meta.json`` names.

Example:
    >>> index = index_factory("faiss:HNSW32", 384, metric="ip", search_params={"efSearch": 64})
    >>> index.add(doc_vectors, doc_ids)
    >>> index.save("runs/my-index")
    >>> same = load_index("runs/my-index")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexes.base import Index
from indexes.faiss_index import KIND as FAISS_KIND
from indexes.faiss_index import FaissIndex
from indexes.inverted import KIND as INVERTED_KIND
from indexes.inverted import InvertedIndex
from indexes.io import read_meta
from indexes.lucene import IMPACT_KIND, LuceneImpactIndex
from indexes.lucene_bm25 import BM25_KIND, LuceneBM25Index
from indexes.milvus import KIND as MILVUS_KIND
from indexes.milvus import MilvusIndex

INDEX_BACKENDS = ("faiss", "inverted", "lucene", "milvus")
INDEX_SPECS = (
    "faiss:FACTORY (dense; e.g. faiss:Flat, faiss:HNSW32, faiss:IVF1024,PQ32), "
    "inverted[:impact[=SCALE]] (sparse, embedded exact index; float weights or integer impacts), "
    "lucene[:impact=SCALE] (sparse, Lucene impact index through pyserini), "
    "milvus[:TYPE[,NAME=VALUE...]] (dense or sparse, a Milvus collection; exact by default)"
)
DEFAULT_IMPACT_SCALE = 100.0
INDEX_KINDS = (FAISS_KIND, INVERTED_KIND, IMPACT_KIND, BM25_KIND, MILVUS_KIND)


def parse_index_spec(spec: str) -> tuple[str, str]:
    """Split ``"faiss:IVF1024,Flat"`` into ``("faiss", "IVF1024,Flat")``; a bare backend gets its default.

    Raises:
        ValueError: an unknown backend or option, naming the valid specs.
    """
    backend, _, arg = str(spec).partition(":")
    if backend not in INDEX_BACKENDS:
        raise ValueError(f"unknown index {spec!r}; expected one of: {INDEX_SPECS}")
    if backend == "faiss":
        return backend, arg or "Flat"
    if backend == "milvus":
        milvus_options(arg)  # checked here, before any work
        return backend, arg
    if arg and not (arg == "impact" or arg.startswith("impact=")):
        raise ValueError(f"index {spec!r}: unknown option {arg!r}; expected impact or impact=SCALE")
    return backend, arg


def parse_number(text: str) -> int | float | None:
    """``text`` as an int, else a float, else ``None`` (index and search parameters)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return None


def milvus_options(arg: str) -> tuple[str | None, dict[str, Any]]:
    """``"HNSW,M=16,efConstruction=200"`` -> ``("HNSW", {"M": 16, "efConstruction": 200})``; ``""`` -> the
    default (exact) index type."""
    if not arg:
        return None, {}
    index_type, *pairs = arg.split(",")
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"index 'milvus:{arg}': {pair!r} is not NAME=VALUE")
        number = parse_number(value)
        params[name] = value if number is None else number
    return index_type.upper(), params


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


def index_factory(
    spec: str,
    dim: int,
    *,
    metric: str = "ip",
    vocabulary: Sequence[str] | None = None,
    device: str = "auto",
    search_params: dict[str, Any] | None = None,
    sparse: bool = False,
    uri: str | None = None,
    collection: str = "winnow",
) -> Index:
    """A new, empty index of the kind ``spec`` names.

    Args:
        spec: ``faiss:FACTORY``, ``inverted[:impact[=SCALE]]`` or ``lucene[:impact=SCALE]``.
        dim: vector dimension (the vocabulary size for sparse indexes).
        metric: ``ip`` or ``l2`` for FAISS; sparse indexes score inner products only.
        vocabulary: token string of every dimension, for sparse indexes (saved with an inverted index,
            required by Lucene, whose terms they are); ignored by FAISS.
        device: ``auto``, ``cpu`` or ``gpu`` for a FAISS index.
        search_params: FAISS search-time parameters (``{"nprobe": 32}``, ``{"efSearch": 128}``), Milvus
            ones (``{"ef": 64}``, ``{"nprobe": 16}``), or a Lucene impact index's two-phase search
            (``{"prune_ratio": 0.5, "expansion_rate": 5}``, :mod:`indexes.two_phase`).
        sparse: a sparse Milvus collection (the other backends are dense or sparse by kind).
        uri: the Milvus server of a ``milvus`` index (``None``: Milvus Lite in the index folder).
        collection: the collection of a ``milvus`` index.

    Example:
        >>> index_factory("faiss:IVF1024,PQ32", 768, metric="ip", search_params={"nprobe": 16})
        >>> index_factory("inverted:impact=100", encoder.dim, vocabulary=encoder.vocabulary)
    """
    backend, arg = parse_index_spec(spec)
    if backend == "faiss":
        return FaissIndex(dim, arg, metric=metric, device=device, search_params=search_params)
    if backend == "milvus":
        index_type, params = milvus_options(arg)
        return MilvusIndex(
            dim,
            metric,
            sparse=sparse,
            index_type=index_type,
            index_params=params,
            search_params=search_params,
            uri=uri,
            collection=collection,
        )
    if metric != "ip":
        raise ValueError(f"index {spec!r} scores inner products; got metric {metric!r}, expected ip")
    if search_params and backend == "inverted":
        raise ValueError(
            f"index {spec!r} takes no search parameters (got {', '.join(search_params)}); "
            "they apply to faiss, milvus and lucene indexes"
        )
    scale = impact_scale(backend, arg)
    if backend == "inverted":
        return InvertedIndex(dim, impact_scale=scale, vocabulary=vocabulary)
    if vocabulary is None:
        raise ValueError(f"index {spec!r} needs vocabulary= (the token string of each of the {dim} terms)")
    return LuceneImpactIndex(
        dim, vocabulary, impact_scale=scale or DEFAULT_IMPACT_SCALE, search_params=search_params
    )


def index_spec(index: Any) -> str:
    """The spec string that :func:`index_factory` would take to build ``index`` again (for a
    :class:`~indexes.lucene_bm25.LuceneBM25Index`, which it does not build, ``lucene:bm25(k1=...,b=...)``)."""
    if isinstance(index, FaissIndex):
        return f"faiss:{index.factory}"
    if isinstance(index, LuceneBM25Index):
        return f"lucene:bm25(k1={index.k1:g},b={index.b:g})"
    if isinstance(index, MilvusIndex):
        params = "".join(f",{name}={value}" for name, value in index.index_params.items())
        return f"milvus:{index.index_type}{params}"
    backend = "inverted" if isinstance(index, InvertedIndex) else "lucene"
    scale = getattr(index, "impact_scale", None)
    return f"{backend}:impact={scale:g}" if scale is not None else backend


def load_index(directory: str | Path, device: str | None = None) -> Index | LuceneBM25Index:
    """Open any saved index folder by the ``kind`` its ``meta.json`` names.

    Args:
        directory: written by an index's ``save`` (or a retriever's, or ``winnow index``).
        device: ``gpu`` or ``cpu`` places a FAISS index there; anything else (``None``, ``auto``, a torch
            device such as ``cuda:0``) lets FAISS use the GPUs it sees.

    Returns:
        a :class:`~indexes.faiss_index.FaissIndex`, :class:`~indexes.inverted.InvertedIndex`,
        :class:`~indexes.lucene.LuceneImpactIndex` or :class:`~indexes.lucene_bm25.LuceneBM25Index` (BM25
        over text: searched with ``search_texts``, not vectors).
    """
    kind = read_meta(directory).get("kind")
    if kind == FAISS_KIND:
        return FaissIndex.load(directory, device=device if device in ("cpu", "gpu") else "auto")
    if kind == INVERTED_KIND:
        return InvertedIndex.load(directory)
    if kind == IMPACT_KIND:
        return LuceneImpactIndex.load(directory)
    if kind == BM25_KIND:
        return LuceneBM25Index.load(directory)
    if kind == MILVUS_KIND:
        return MilvusIndex.load(directory)
    raise ValueError(
        f"{Path(directory) / 'meta.json'}: kind {kind!r} is not an index; "
        f"expected one of {', '.join(INDEX_KINDS)}"
    )
