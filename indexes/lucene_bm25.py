"""BM25 over raw text in Lucene through pyserini: the reference lexical baseline.

``LuceneBM25Index`` indexes raw text (``JsonCollection``, Lucene's English analyzer: Porter stemmer and
stop words) and searches with ``LuceneSearcher`` BM25 (Anserini's defaults k1=0.9, b=0.4). Saving,
loading and lazy indexing are :class:`~indexes.lucene.LuceneBase`'s.

Example:
    >>> index = LuceneBM25Index()
    >>> index.add_texts(["vitamin d and bones", "protein folding"], ["d1", "d2"])
    >>> hits = index.search_texts(["vitamin"], k=10)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexes import _jvm
from indexes.base import Hits, check_ids
from indexes.io import meta_value, read_meta
from indexes.lucene import LuceneBase, pyserini_hits

BM25_KIND = "lucene-bm25"


class LuceneBM25Index(LuceneBase):
    """BM25 over raw text with pyserini's ``LuceneSearcher`` (the reference lexical baseline).

    Args:
        k1, b: BM25 parameters (Anserini defaults 0.9 and 0.4).
        threads: indexing and default search threads.
    """

    kind = BM25_KIND
    collection = "JsonCollection"

    def __init__(self, k1: float = 0.9, b: float = 0.4, threads: int | None = None) -> None:
        super().__init__(threads)
        self.k1, self.b = float(k1), float(b)

    def _extra_meta(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b}

    def add_texts(self, texts: Sequence[str], ids: Sequence[str]) -> None:
        ids = check_ids(ids, len(texts), self._ids)
        with self._new_part().open("w", encoding="utf-8") as out:
            for doc_id, text in zip(ids, texts, strict=True):
                out.write(json.dumps({"id": doc_id, "contents": text}) + "\n")
        self._remember(ids)

    def searcher(self) -> Any:
        if self._searcher is None:
            _jvm.pyserini()
            from pyserini.search.lucene import LuceneSearcher

            self._searcher = LuceneSearcher(str(self.build()))
            self._searcher.set_bm25(self.k1, self.b)
        return self._searcher

    def search_texts(self, queries: Sequence[str], k: int, threads: int | None = None) -> Hits:
        qids = [str(i) for i in range(len(queries))]
        results = self.searcher().batch_search(
            list(queries), qids, k=int(k), threads=int(threads or self.threads)
        )
        return pyserini_hits(results, len(queries), k, 1.0)

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> LuceneBM25Index:
        directory = Path(directory)
        meta = read_meta(directory, kinds=(BM25_KIND,))
        k1, b = meta_value(directory, meta, "k1", float), meta_value(directory, meta, "b", float)
        index = cls(k1=k1, b=b, threads=threads)
        index._open(directory, meta)
        return index
