"""Token IDF tables for inference-free sparse retrievers (the query side's weights).

``idf_t = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))`` (BM25's IDF), with ``df_t`` the number of documents
containing token ``t`` after the model's tokenizer (no special tokens) and ``N`` the number of documents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from retrieval.query_weights import document_frequencies, idf_from_df

logger = logging.getLogger(__name__)


def compute_idf(texts: Iterable[str], tokenizer: Any) -> np.ndarray:
    """The IDF of every token of ``tokenizer``'s vocabulary over the documents ``texts``."""
    df, n = document_frequencies(texts, tokenizer)
    idf = idf_from_df(df, n)
    logger.info("IDF over %d documents: %d of %d tokens seen", n, int((df > 0).sum()), len(df))
    return idf
