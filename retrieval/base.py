"""The retriever vocabulary: what every retriever offers, and one loader for any saved retriever folder.

:class:`~retrieval.retriever.Retriever` (an encoder plus a FAISS, inverted or Lucene impact index) and
:class:`~retrieval.bm25.BM25Retriever` (BM25 over text in Lucene) both follow :class:`RetrieverProtocol`;
:func:`load_retriever` opens a folder written by either one's ``save`` (or by ``winnow index``) by the
``kind`` its ``meta.json`` names.

Example:
    >>> retriever = load_retriever("runs/scifact-minilm")
    >>> hits = retriever.search(["vitamin D and bone fractures"], k=10)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from indexes.base import Hits
from indexes.io import read_meta
from retrieval.corpus import CorpusSource, Document

HYBRID_KIND = "hybrid"
RERANKED_KIND = "reranked"


@runtime_checkable
class RetrieverProtocol(Protocol):
    """What every Winnow retriever offers.

    Attributes:
        kind: ``dense``, ``sparse`` (an encoder and a vector index), ``bm25``, ``hybrid`` (several fused)
            or ``reranked`` (a retriever whose top hits a cross-encoder reorders).
        name: the model it retrieves with (an encoder's hub id or path; ``bm25``).
        index_spec: how its index is specified (``faiss:Flat``, ``inverted:impact=100``,
            ``lucene:bm25(...)``).
        index: the index it searches; ``len(index)`` documents with ids ``index.ids``.
    """

    index: Any

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def index_spec(self) -> str: ...

    def build(self, corpus: CorpusSource | Sequence[Document], batch_size: int = 64) -> RetrieverProtocol: ...

    def search(
        self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64
    ) -> Hits: ...

    def save(self, directory: str | Path) -> Path: ...

    @classmethod
    def load(cls, directory: str | Path) -> RetrieverProtocol: ...


def query_texts(queries: Sequence[str] | Mapping[str, str]) -> list[str]:
    """The texts of a batch of queries given as a list or as ``{query_id: text}``; one bare string is
    refused (it would be searched character by character)."""
    if isinstance(queries, str):
        raise TypeError("queries must be a list of strings or a {query_id: text} mapping, not one string")
    return list(queries.values()) if isinstance(queries, Mapping) else list(queries)


#: How to open a saved folder, by the ``kind`` its ``meta.json`` names; each retriever module registers
#: its own kinds when it is imported (``import retrieval`` imports them all).
LOADERS: dict[str, Callable[..., RetrieverProtocol]] = {}


def query_weights_of(retriever: object) -> str:
    """What weights a retriever's queries: ``model`` (the encoder's own; BM25, dense and hybrid
    retrievers too) or ``corpus`` (an inference-free model's IDF over the indexed documents)."""
    return str(getattr(retriever, "query_weights", "model"))


def register_loader(kinds: Sequence[str], loader: Callable[..., RetrieverProtocol]) -> None:
    """Make :func:`load_retriever` open folders of ``kinds`` with ``loader(directory, device=...)``."""
    for kind in kinds:
        LOADERS[kind] = loader


def load_retriever(directory: str | Path, device: str | None = None) -> RetrieverProtocol:
    """Open any folder written by ``winnow index`` or a retriever's ``save``, by its ``meta.json`` kind.

    Args:
        directory: the saved folder (its ``meta.json`` names the index kind and the encoder).
        device: where the encoder runs (``cpu``, ``cuda``, ``None``: its default); ``gpu``/``cpu`` also
            place a FAISS index.

    Returns:
        a :class:`~retrieval.retriever.Retriever` (dense or sparse: the encoder ``meta.json`` names),
        a :class:`~retrieval.bm25.BM25Retriever`, a :class:`~retrieval.hybrid.Hybrid` (members opened
        the same way) or a :class:`~retrieval.rerank.Reranker`.
    """
    kind = read_meta(directory).get("kind")
    loader = LOADERS.get(str(kind))
    if loader is None:
        raise ValueError(
            f"{Path(directory) / 'meta.json'}: kind {kind!r} is not a retriever's index; "
            f"expected one of {', '.join(LOADERS)}"
        )
    return loader(directory, device=device)
