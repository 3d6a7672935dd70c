"""``SparseModelEncoder``: a sentence-transformers ``SparseEncoder`` behind the :class:`Encoder` protocol.

Sparse encoders return ``scipy.sparse.csr_matrix`` rows over the tokenizer's vocabulary (float32),
never dense vocabulary-sized arrays. Two kinds of model are served the same way:

- siamese SPLADE (``Transformer(fill-mask)`` + ``SpladePooling``): queries and documents run the MLM;
- inference-free (a ``Router`` whose query route is one ``SparseStaticEmbedding``): documents run the
  MLM; a query is its distinct tokens weighted by the IDF table (:attr:`query_weights`), no model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import sparse

from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # texts per encode() call: bounds the dense (batch, vocab) buffers


def to_csr(tensor: Any) -> sparse.csr_matrix:
    """A torch sparse COO (or dense) tensor of shape (n, vocab) as a float32 CSR matrix."""
    import torch

    if tensor.is_sparse:
        coo = tensor.coalesce().cpu()
        rows, cols = coo.indices().numpy()
        values = coo.values().numpy().astype(np.float32)
        return sparse.csr_matrix((values, (rows, cols)), shape=tuple(coo.shape), dtype=np.float32)
    return sparse.csr_matrix(torch.as_tensor(tensor).detach().cpu().float().numpy())


def query_module(model: Any) -> Any | None:
    """The query route's ``SparseStaticEmbedding`` of an inference-free model, else None."""
    from sentence_transformers.base.modules import Router

    first = model[0]
    if not isinstance(first, Router) or "query" not in first.sub_modules:
        return None
    route = first.sub_modules["query"]
    if len(route) == 1 and type(route[0]).__name__ == "SparseStaticEmbedding":
        return route[0]
    return None


def query_table(model: Any) -> np.ndarray | None:
    """The IDF table of an inference-free model (its query route's ``SparseStaticEmbedding``), else None."""
    module = query_module(model)
    return None if module is None else module.weight.detach().cpu().numpy().astype(np.float32)


def keep_top_terms(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Each row's ``k`` largest entries (ties: lower term id first), like ST's ``max_active_dims``."""
    matrix = matrix.tocsr()
    lengths = np.diff(matrix.indptr)
    if lengths.size == 0 or lengths.max() <= k:
        return matrix
    keep = np.zeros(matrix.nnz, dtype=bool)
    for row in np.flatnonzero(lengths):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if end - start <= k:
            keep[start:end] = True
        else:
            order = np.lexsort((matrix.indices[start:end], -matrix.data[start:end]))
            keep[start + order[:k]] = True
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)[keep]
    return sparse.csr_matrix(
        (matrix.data[keep], (rows, matrix.indices[keep])), shape=matrix.shape, dtype=matrix.dtype
    )


def drop_small_contributions(
    matrix: sparse.csr_matrix, query_weights: np.ndarray, min_contribution: float
) -> sparse.csr_matrix:
    """Document vectors without the terms whose score contribution ``w * query_weights[term]`` is below
    ``min_contribution``.

    An inference-free query weighs each of its tokens by a fixed table, so a document term adds exactly
    ``w * query_weights[term]`` to the score of every query that holds it: dropping the terms that add
    less than ``min_contribution`` changes any query's score by less than ``min_contribution`` per query
    token, and removes first the postings of frequent, low-IDF terms, the long lists a search reads.
    """
    matrix = sparse.csr_matrix(matrix, copy=True)
    matrix.data[matrix.data * query_weights[matrix.indices] < min_contribution] = 0
    matrix.eliminate_zeros()
    return matrix


def vocabulary(tokenizer: Any, size: int) -> list[str]:
    """Token strings for ids ``0..size-1`` (the term names of inverted and Lucene indexes)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    return [t if t is not None else f"[id{i}]" for i, t in enumerate(tokens)]


class SparseModelEncoder:
    """Sparse query and document vectors from a ``SparseEncoder``.

    Args:
        model: a loaded ``sentence_transformers.SparseEncoder``.
        name: the hub id or path it was loaded from.
        max_length: optional override of the document encoder's token limit.
        doc_min_contribution: an inference-free model's document pruning by score contribution
            (:func:`drop_small_contributions`; ``winnow models prune --doc-min-contribution``), applied
            after the model's own ``max_active_dims``.

    Example:
        >>> enc = load_encoder("rasyosef/splade-tiny")
        >>> enc.encode_documents(["a rare disease"]).nnz > 0
        True
    """

    kind: Literal["sparse"] = "sparse"
    similarity: Literal["dot"] = "dot"

    def __init__(
        self, model: Any, name: str, max_length: int | None = None, doc_min_contribution: float | None = None
    ) -> None:
        self.model = model
        self.name = name
        if max_length is not None:
            model.max_seq_length = max_length
        # SpladePooling saved without its dimension makes get_embedding_dimension() report the hidden
        # size; a sparse vector spans the tokenizer's vocabulary.
        self._dim = len(model.tokenizer)
        self.query_weights = query_table(model)
        if doc_min_contribution is not None and self.query_weights is None:
            raise ValueError(
                f"{name}: doc_min_contribution needs an inference-free model (an IDF query table)"
            )
        self.doc_min_contribution = doc_min_contribution
        self._vocabulary: list[str] | None = None

    @property
    def max_active_dims(self) -> int | None:
        """The terms each document keeps (the model's ``max_active_dims``; ``None``: all), as an ONNX
        export's encoder names it; setting it sets the model's."""
        return self.model.max_active_dims

    @max_active_dims.setter
    def max_active_dims(self, value: int | None) -> None:
        self.model.max_active_dims = value

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (its ids are the vector dimensions)."""
        return self.model.tokenizer

    @property
    def inference_free(self) -> bool:
        return self.query_weights is not None

    @property
    def vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            self._vocabulary = vocabulary(self.model.tokenizer, self.dim)
        return self._vocabulary

    def _encode(self, role: str, texts: Sequence[str], batch_size: int, progress: bool) -> sparse.csr_matrix:
        texts = list(texts)
        if not texts:
            return sparse.csr_matrix((0, self.dim), dtype=np.float32)
        encode = self.model.encode_query if role == "query" else self.model.encode_document
        parts = [
            to_csr(
                encode(
                    texts[start : start + ENCODE_CHUNK],
                    batch_size=batch_size,
                    convert_to_sparse_tensor=True,
                    show_progress_bar=progress and show_progress(),
                )
            )
            for start in range(0, len(texts), ENCODE_CHUNK)
        ]
        return sparse.vstack(parts, format="csr", dtype=np.float32)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 16, progress: bool = False
    ) -> sparse.csr_matrix:
        return self._encode("query", texts, batch_size, progress)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 16, progress: bool = False
    ) -> sparse.csr_matrix:
        out = self._encode("document", texts, batch_size, progress)
        if self.doc_min_contribution is None:
            return out
        return drop_small_contributions(out, self.query_weights, self.doc_min_contribution)

    def __repr__(self) -> str:
        kind = "inference-free" if self.inference_free else "siamese"
        return f"SparseModelEncoder(name={self.name!r}, vocab={self.dim}, {kind})"
