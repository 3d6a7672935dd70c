"""Query weights that follow the corpus searched: an inference-free model's IDF table re-estimated on
the documents an index holds.

The query side of an inference-free sparse model is a table of token weights (an IDF table computed
on the training corpora, and trained further by some recipes). ``Retriever(..., query_weights=
"corpus")`` counts token document frequencies over the documents it indexes, with the model's own
tokenizer, and weights each query token by the IDF of the indexed collection instead; the counts are
stored in the index folder (``document_frequencies.npy``), so a loaded index searches the same way.
Tokens the model pruned from its table (weight 0) stay pruned.

``idf_t = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))`` (BM25's IDF), with ``df_t`` the number of documents
containing token ``t`` (no special tokens, no truncation) and ``N`` the number of documents.

Example:
    >>> counts = DocumentFrequencies(tokenizer)
    >>> counts.update(["a rare disease", "a common cold"])
    >>> queries = reweight(encoder.encode_queries(["rare cold"]), counts.idf())
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

#: ``Retriever(query_weights=...)``: the model's own table, or IDF over the indexed documents.
QUERY_WEIGHTS = ("model", "corpus")


def idf_from_df(df: np.ndarray, n_documents: int) -> np.ndarray:
    """``ln(1 + (N - df + 0.5) / (df + 0.5))`` as float32."""
    if n_documents <= 0:
        raise ValueError("IDF needs at least one document")
    if (df < 0).any() or (df > n_documents).any():
        raise ValueError(f"document frequencies must lie in [0, {n_documents}]")
    df = df.astype(np.float64)
    return np.log1p((n_documents - df + 0.5) / (df + 0.5)).astype(np.float32)


class DocumentFrequencies:
    """Token document frequencies over the documents seen so far.

    Args:
        tokenizer: the model's (Hugging Face) tokenizer; its vocabulary size is the table's length.
        df: counts to continue from (a loaded index's), one per token id.
        n_documents: the number of documents ``df`` counts.
    """

    def __init__(self, tokenizer: Any, df: np.ndarray | None = None, n_documents: int = 0) -> None:
        self.tokenizer = tokenizer
        size = len(tokenizer)
        if df is None:
            df = np.zeros(size, dtype=np.int64)
        df = np.asarray(df, dtype=np.int64)
        if df.shape != (size,):
            raise ValueError(f"document frequencies of shape {df.shape}; the tokenizer has {size} tokens")
        if n_documents < 0 or (df < 0).any() or (df > n_documents).any():
            raise ValueError(f"document frequencies must lie in [0, n_documents={n_documents}]")
        self.df = df
        self.n_documents = n_documents
        self._idf: np.ndarray | None = None  # kept until the next update: searches read it per call

    def update(self, texts: Sequence[str]) -> None:
        """Count the distinct tokens of each of ``texts``."""
        if not texts:
            return
        for ids in self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]:
            self.df[np.unique(np.asarray(ids, dtype=np.int64))] += 1
        self.n_documents += len(texts)
        self._idf = None

    def idf(self) -> np.ndarray:
        """The IDF of every token over the documents counted."""
        if self._idf is None:
            self._idf = idf_from_df(self.df, self.n_documents)
        return self._idf


def document_frequencies(
    texts: Iterable[str], tokenizer: Any, batch_size: int = 1024
) -> tuple[np.ndarray, int]:
    """(df per token id, number of documents) over ``texts``, streamed in batches."""
    counts = DocumentFrequencies(tokenizer)
    batch: list[str] = []
    for text in tqdm(
        texts, desc="document frequencies", unit="doc", mininterval=5, disable=not show_progress()
    ):
        batch.append(text)
        if len(batch) >= batch_size:
            counts.update(batch)
            batch.clear()
    counts.update(batch)
    return counts.df, counts.n_documents


def reweight(queries: sparse.csr_matrix, table: np.ndarray) -> sparse.csr_matrix:
    """``queries`` (an inference-free model's query rows) with each token's weight replaced by
    ``table``'s; the tokens a query has stay the same."""
    queries = queries.tocsr().copy()
    if queries.shape[1] != len(table):
        raise ValueError(f"query vectors have {queries.shape[1]} dimensions; the table has {len(table)}")
    queries.data = np.asarray(table, dtype=np.float32)[queries.indices]
    queries.eliminate_zeros()
    return queries


def query_tokenizer(encoder: Any) -> Any:
    """The tokenizer of an inference-free sparse ``encoder`` (what its query table is indexed by)."""
    if getattr(encoder, "query_weights", None) is None:
        raise ValueError(
            f"query_weights='corpus' re-weights the IDF table of an inference-free sparse model; "
            f"{getattr(encoder, 'name', encoder)!r} has none (a dense or siamese sparse model)"
        )
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"{encoder!r} exposes no tokenizer to count document frequencies with")
    return tokenizer
