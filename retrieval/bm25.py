"""``BM25Retriever``: BM25 over raw text in Lucene (pyserini), the lexical reference of every evaluation.

It follows :class:`~retrieval.base.RetrieverProtocol` (``build``, ``search``, ``index``, ``index_spec``,
``save``/``load``), so ``winnow eval beir --model bm25`` scores it like any model and
:func:`~retrieval.base.load_retriever` opens its saved folders.

Example:
    >>> bm25 = BM25Retriever().build("data/beir/scifact")
    >>> bm25.search(["vitamin D and bone fractures"], k=10).ids[0][:3]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from indexes.base import Hits
from indexes.factory import index_spec
from indexes.lucene_bm25 import BM25_KIND, LuceneBM25Index
from retrieval.base import query_texts, register_loader
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus

logger = logging.getLogger(__name__)

BM25_MODEL = "bm25"


class BM25Retriever:
    """BM25 in Lucene with Anserini's defaults (k1=0.9, b=0.4, English analyzer).

    Args:
        k1, b: BM25 parameters.
        threads: indexing and search threads (default: all cores).
    """

    name = BM25_MODEL
    kind = BM25_MODEL

    def __init__(self, k1: float = 0.9, b: float = 0.4, threads: int | None = None) -> None:
        self.index = LuceneBM25Index(k1=k1, b=b, threads=threads)

    @property
    def index_spec(self) -> str:
        """``lucene:bm25(k1=...,b=...)``."""
        return index_spec(self.index)

    def build(
        self, corpus: CorpusSource | Sequence[Document], chunk_size: int = 65_536, **_: object
    ) -> BM25Retriever:
        """Write the documents (``title + " " + text``) to a Lucene collection; indexed on first search.

        Other keywords (an encoder's ``batch_size``, ``progress``) are accepted and ignored.
        """
        docs = iter_corpus(corpus)
        while chunk := list(itertools.islice(docs, chunk_size)):
            self.index.add_texts([document_text(d) for d in chunk], [d["_id"] for d in chunk])
        return self

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """The top ``k`` documents by BM25 for each query (texts or ``{id: text}``); ``batch_size`` is
        accepted for the retrievers' common signature (Lucene searches all queries in one batch)."""
        texts = query_texts(queries)
        return self.index.search_texts(texts, k)

    def save(self, directory: str | Path) -> Path:
        """Write the Lucene index, the document ids and ``meta.json`` atomically; return the directory."""
        return self.index.save(directory, extra_meta={"encoder": BM25_MODEL, "encoder_kind": "lexical"})

    @classmethod
    def load(cls, directory: str | Path) -> BM25Retriever:
        """Open a folder written by :meth:`save`."""
        retriever = cls.__new__(cls)
        retriever.index = LuceneBM25Index.load(directory)
        return retriever


register_loader([BM25_KIND], lambda directory, device=None: BM25Retriever.load(directory))
