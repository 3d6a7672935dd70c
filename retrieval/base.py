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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from indexes.base import Hits
from indexes.factory import INDEX_KINDS
from indexes.io import read_meta
from indexes.lucene import BM25_KIND
from retrieval.corpus import CorpusSource, Document


@runtime_checkable
class RetrieverProtocol(Protocol):
    """What every Winnow retriever offers.

    Attributes:
        name: the model it retrieves with (an encoder's hub id or path; ``bm25``).
        index_spec: how its index is specified (``faiss:Flat``, ``inverted:impact=100``,
            ``lucene:bm25(...)``).
        index: the index it searches; ``len(index)`` documents with ids ``index.ids``.
    """

    index: Any

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


def load_retriever(directory: str | Path, device: str | None = None) -> RetrieverProtocol:
    """Open any folder written by ``winnow index``, ``Retriever.save`` or ``BM25Retriever.save``.

    Args:
        directory: the saved folder (its ``meta.json`` names the index kind and the encoder).
        device: where the encoder runs (``cpu``, ``cuda``, ``None``: its default); ``gpu``/``cpu`` also
            place a FAISS index.

    Returns:
        a :class:`~retrieval.bm25.BM25Retriever` for a Lucene BM25 folder, else a
        :class:`~retrieval.retriever.Retriever` with the encoder ``meta.json`` names.
    """
    meta = read_meta(directory)
    kind = meta.get("kind")
    if kind == BM25_KIND:
        from retrieval.bm25 import BM25Retriever

        return BM25Retriever.load(directory)
    if kind not in INDEX_KINDS:
        raise ValueError(
            f"{Path(directory) / 'meta.json'}: kind {kind!r} is not a retriever's index; "
            f"expected one of {', '.join(INDEX_KINDS)}"
        )
    from retrieval.retriever import Retriever

    return Retriever.load(directory, device=device)
