"""In-process BM25 over a training corpus (bm25s with PyStemmer's English stemmer and stop words).

Used as a hard-negative miner and as a teacher. ``winnow eval beir --model bm25`` (Lucene through
pyserini) is the reference for evaluation; this one needs no JVM and indexes SciFact in a second.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


class BM25:
    """BM25 (bm25s defaults: Lucene variant, k1=1.5, b=0.75) over ``{doc_id: text}``.

    Example:
        >>> bm25 = BM25({"d1": "the cat sat", "d2": "dogs bark"})
        >>> bm25.search(["cat"], k=1)[0]
        [['d1']]
    """

    name = "bm25"

    def __init__(self, corpus: dict[str, str]) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("english")
        self.doc_ids = list(corpus)
        self._position = {d: i for i, d in enumerate(self.doc_ids)}
        tokens = bm25s.tokenize(
            list(corpus.values()), stopwords="en", stemmer=self._stemmer, show_progress=False
        )
        self._retriever = bm25s.BM25()
        self._retriever.index(tokens, show_progress=False)

    def _tokens(self, queries: Sequence[str]) -> list[list[str]]:
        return self._bm25s.tokenize(
            list(queries), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False
        )

    def search(self, queries: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` document ids and scores per query."""
        k = min(k, len(self.doc_ids))
        tokens = self._tokens(queries)
        # bm25s cannot score an empty query: give it no hits (score 0) instead.
        results, scores = self._retriever.retrieve(
            [t if t else ["\x00"] for t in tokens], k=k, show_progress=False, n_threads=1
        )
        ids = [[self.doc_ids[j] for j in row] for row in results.tolist()]
        return ids, np.asarray(scores, dtype=np.float32)

    def pair_scores(self, queries: Sequence[str], doc_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """BM25 score of each named document for each query."""
        out = []
        for tokens, docs in zip(self._tokens(queries), doc_ids, strict=True):
            all_scores = self._retriever.get_scores(tokens) if tokens else np.zeros(len(self.doc_ids))
            out.append(np.asarray([all_scores[self._position[d]] for d in docs], dtype=np.float32))
        return out
