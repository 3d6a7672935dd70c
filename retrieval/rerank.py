"""``Reranker``: a retriever whose top ``depth`` hits a cross-encoder scores again and reorders.

Any sentence-transformers ``CrossEncoder`` (a hub id or a folder, a Winnow-trained one from
``winnow train configs/rerank.yaml`` included) or its ONNX export (``winnow export onnx`` of a
cross-encoder; :mod:`retrieval.onnx_cross`) reads each (query, document text) pair of the first
stage's top ``depth``, in batches, with a progress bar. The texts come from the corpus
(:class:`~retrieval.documents.DocumentTexts`), since indexes hold only ids and vectors.

Hits below ``depth`` keep the first stage's order, scored below every reranked hit, so metrics that
rank by score (pytrec_eval) see the same order.

Example:
    >>> from retrieval import BM25Retriever, Reranker
    >>> reranker = Reranker(BM25Retriever(), "cross-encoder/ms-marco-MiniLM-L6-v2", depth=100)
    >>> reranker.build("data/beir/scifact")  # indexes the corpus and keeps where its texts are
    >>> hits = reranker.search(["vitamin D and bone fractures"], k=10)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Hits
from indexes.io import atomic_directory, meta_value, read_meta, write_meta
from retrieval.base import (
    RERANKED_KIND,
    RetrieverProtocol,
    load_retriever,
    query_texts,
    query_weights_of,
    register_loader,
)
from retrieval.corpus import CorpusSource, Document
from retrieval.documents import DocumentTexts
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

FIRST_STAGE_DIR = "first-stage"
DEFAULT_RERANK_DEPTH = 100


def load_cross_encoder(name_or_path: str, device: str | None = None, max_length: int | None = None) -> Any:
    """A scorer with ``predict(pairs, batch_size=, show_progress_bar=)``: a sentence-transformers
    ``CrossEncoder`` (hub id or folder), or an :class:`~retrieval.onnx_cross.OnnxCrossEncoder` for a
    folder holding ``model.onnx``."""
    path = Path(name_or_path)
    if (path / "model.onnx").is_file():
        from retrieval.onnx_cross import OnnxCrossEncoder

        return OnnxCrossEncoder(path, device=device, max_length=max_length)
    if (path.exists() or str(name_or_path).startswith((".", "/"))) and not path.is_dir():
        raise FileNotFoundError(f"cross-encoder folder {name_or_path} not found")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(name_or_path), device=device, max_length=max_length)


def _reference(name: str) -> str:
    path = Path(name)
    return str(path.resolve()) if path.exists() else name


class Reranker:
    """A first-stage retriever plus a cross-encoder that reorders its top ``depth`` hits.

    Args:
        retriever: the first stage (any retriever: dense, sparse, BM25, hybrid).
        cross_encoder: a hub id or folder (loaded with :func:`load_cross_encoder`), or a loaded scorer.
        depth: how many first-stage hits per query the cross-encoder scores.
        batch_size: (query, document) pairs per forward pass.
        documents: where the texts of the candidates come from: a corpus (folder, ``corpus.jsonl``,
            documents) or ``{id: text}``; :meth:`build` sets it from the corpus it indexes.
        device, max_length: passed to :func:`load_cross_encoder` for a named cross-encoder.
    """

    kind = RERANKED_KIND

    def __init__(
        self,
        retriever: RetrieverProtocol,
        cross_encoder: str | Any,
        *,
        depth: int = DEFAULT_RERANK_DEPTH,
        batch_size: int = 32,
        documents: CorpusSource | Mapping[str, str] | DocumentTexts | None = None,
        device: str | None = None,
        max_length: int | None = None,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"rerank depth {depth!r}: expected an integer >= 1")
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size!r}: expected an integer >= 1")
        self.retriever = retriever
        if isinstance(cross_encoder, str | Path):
            self.cross_encoder_name = str(cross_encoder)
            self.cross_encoder = load_cross_encoder(str(cross_encoder), device=device, max_length=max_length)
        else:
            self.cross_encoder = cross_encoder
            self.cross_encoder_name = str(
                getattr(cross_encoder, "name_or_path", None)
                or getattr(getattr(cross_encoder, "config", None), "_name_or_path", "")
                or type(cross_encoder).__name__
            )
        self.depth = depth
        self.batch_size = batch_size
        self.documents = DocumentTexts.of(documents) if documents is not None else None

    @property
    def name(self) -> str:
        """The first stage's name (the model its results are recorded under)."""
        return self.retriever.name

    @property
    def index_spec(self) -> str:
        return f"{self.retriever.index_spec}+rerank(depth={self.depth})"

    @property
    def query_weights(self) -> str:
        """The first stage's query weights (``model`` unless it searches with corpus IDF)."""
        return query_weights_of(self.retriever)

    @property
    def index(self) -> Any:
        """The first stage's index (its documents)."""
        return self.retriever.index

    def describe(self) -> dict[str, Any]:
        """The first stage and the reranker, as result files record them."""
        first = self.retriever.describe() if hasattr(self.retriever, "describe") else {}
        return {**first, "reranker": {"model": self.cross_encoder_name, "depth": self.depth}}

    def build(
        self, corpus: CorpusSource | Sequence[Document], batch_size: int = 64, **kwargs: Any
    ) -> Reranker:
        """Index ``corpus`` with the first stage and read its texts for reranking."""
        if not isinstance(corpus, str | Path):
            corpus = list(corpus)  # read once, used twice
        self.retriever.build(corpus, batch_size=batch_size, **kwargs)
        self.documents = DocumentTexts.of(corpus)
        return self

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """The first stage's top ``max(k, depth)``, its top ``depth`` reordered by the cross-encoder."""
        texts = query_texts(queries)
        self._documents()  # before the first stage searches
        first = self.retriever.search(texts, k=max(k, self.depth), batch_size=batch_size)
        return self.rerank(texts, first, k=k)

    def rerank(self, queries: Sequence[str], first: Hits, k: int = 10) -> Hits:
        """Reorder the top ``depth`` of each query's first-stage ``first`` hits by cross-encoder score."""
        documents = self._documents()
        heads = [ids[: self.depth] for ids in first.ids]
        doc_texts = documents.get_many([d for head in heads for d in head])
        pairs, start = [], 0
        for query, head in zip(queries, heads, strict=True):
            pairs.extend((query, text) for text in doc_texts[start : start + len(head)])
            start += len(head)
        return self._reorder(first.ids, heads, self._predict(pairs), k)

    def _documents(self) -> DocumentTexts:
        if self.documents is None:
            raise ValueError(
                "the reranker has no document texts: build it on a corpus, or pass documents= (the corpus "
                "the first stage indexed)"
            )
        return self.documents

    def _predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        logger.info("reranking %d (query, document) pairs", len(pairs))
        out = self.cross_encoder.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=show_progress(), convert_to_numpy=True
        )
        return np.asarray(out, dtype=np.float32).reshape(len(pairs), -1)[:, 0]

    @staticmethod
    def _reorder(all_ids: list[list[str]], heads: list[list[str]], scores: np.ndarray, k: int) -> Hits:
        """Each query's head sorted by cross-encoder score (ties: first-stage order), then its tail."""
        out_ids, out_scores = [], np.full((len(all_ids), k), -np.inf, dtype=np.float32)
        start = 0
        for row, (ids, head) in enumerate(zip(all_ids, heads, strict=True)):
            head_scores = scores[start : start + len(head)]
            start += len(head)
            order = np.argsort(-head_scores, kind="stable")
            ranked = [head[i] for i in order] + ids[len(head) :]
            floor = float(head_scores.min()) if len(head_scores) else 0.0
            tail = floor - 1.0 - np.arange(len(ids) - len(head), dtype=np.float32)
            row_scores = np.concatenate([head_scores[order], tail])[:k]
            out_ids.append(ranked[:k])
            out_scores[row, : len(row_scores)] = row_scores
        return Hits(ids=out_ids, scores=out_scores)

    def save(self, directory: str | Path) -> Path:
        """Write the first stage under ``first-stage/`` and ``meta.json`` (cross-encoder, depth, corpus).

        Raises:
            ValueError: the document texts came from memory, not a file that a later load can read.
        """
        if self.documents is None or self.documents.path is None:
            raise ValueError(
                "only a reranker whose documents come from a corpus file can be saved (its meta.json "
                "records where the texts are); save the first stage alone and pass documents= on load"
            )
        with atomic_directory(directory, family="index") as tmp:
            self.retriever.save(tmp / FIRST_STAGE_DIR)
            write_meta(
                tmp,
                RERANKED_KIND,
                cross_encoder=_reference(self.cross_encoder_name),
                depth=self.depth,
                corpus=str(self.documents.path),
            )
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | None = None,
        documents: CorpusSource | Mapping[str, str] | None = None,
    ) -> Reranker:
        """Open a folder written by :meth:`save` (the corpus recorded there unless ``documents`` is given)."""
        meta = read_meta(directory, (RERANKED_KIND,))
        first = load_retriever(Path(directory) / FIRST_STAGE_DIR, device=device)
        corpus = documents if documents is not None else meta_value(directory, meta, "corpus", str)
        if isinstance(corpus, str) and not Path(corpus).exists():
            raise FileNotFoundError(
                f"{Path(directory) / 'meta.json'}: the corpus {corpus} it reranks from is gone; "
                "pass documents= (the corpus the first stage indexed)"
            )
        return cls(
            first,
            meta_value(directory, meta, "cross_encoder", str),
            depth=meta_value(directory, meta, "depth", int),
            documents=corpus,
            device=device,
        )


register_loader([RERANKED_KIND], Reranker.load)
