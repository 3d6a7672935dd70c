"""Token IDF tables for inference-free sparse retrievers (the query side's weights).

``idf_t = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))`` (BM25's IDF), with ``df_t`` the number of documents
containing token ``t`` after the model's tokenizer (no special tokens) and ``N`` the number of documents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from retrieval.settings import show_progress

logger = logging.getLogger(__name__)


def document_frequencies(
    texts: Iterable[str], tokenizer: Any, batch_size: int = 1024
) -> tuple[np.ndarray, int]:
    """(df per token id, number of documents) over ``texts``, streamed in batches."""
    vocab_size = len(tokenizer)
    df = np.zeros(vocab_size, dtype=np.int64)
    n = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal n
        for ids in tokenizer(batch, add_special_tokens=False, truncation=False)["input_ids"]:
            df[np.unique(np.asarray(ids, dtype=np.int64))] += 1
        n += len(batch)
        batch.clear()

    for text in tqdm(
        texts, desc="document frequencies", unit="doc", mininterval=5, disable=not show_progress()
    ):
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return df, n


def idf_from_df(df: np.ndarray, n_documents: int) -> np.ndarray:
    """``ln(1 + (N - df + 0.5) / (df + 0.5))`` as float32."""
    if n_documents <= 0:
        raise ValueError("IDF needs at least one document")
    if (df < 0).any() or (df > n_documents).any():
        raise ValueError(f"document frequencies must lie in [0, {n_documents}]")
    df = df.astype(np.float64)
    return np.log1p((n_documents - df + 0.5) / (df + 0.5)).astype(np.float32)


def compute_idf(texts: Iterable[str], tokenizer: Any) -> np.ndarray:
    """The IDF of every token of ``tokenizer``'s vocabulary over the documents ``texts``."""
    df, n = document_frequencies(texts, tokenizer)
    idf = idf_from_df(df, n)
    logger.info("IDF over %d documents: %d of %d tokens seen", n, int((df > 0).sum()), len(df))
    return idf
