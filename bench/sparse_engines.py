"""What the sparse search benchmarks share: pyseismic-lsr behind the bench's calls, recall against exact
results, and the peak resident memory of a step (this process and its children, sampled)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from indexes.two_phase import TwoPhase

K = 10


@dataclass(frozen=True)
class SeismicBuild:
    """How pyseismic-lsr builds its index; each field is ``SeismicIndex.build_from_dataset``'s argument
    of that name, and the defaults are pyseismic's own (its guidelines suggest ``max_fraction`` 6 and
    ``summary_energy`` 0.4-0.6 for accuracy). Written ``POSTINGS[:CENTROID_FRACTION[:SUMMARY_ENERGY
    [:MAX_FRACTION]]]`` on the command line, for example ``5000:0.2:0.5:6``."""

    n_postings: int = 3500
    centroid_fraction: float = 0.1
    summary_energy: float = 0.4
    max_fraction: float = 1.5

    @classmethod
    def parse(cls, spec: str) -> SeismicBuild:
        parts = spec.split(":")
        if not 1 <= len(parts) <= 4:
            raise ValueError(f"pyseismic build {spec!r}: expected N[:CENTROIDS[:ENERGY[:MAX]]]")
        try:
            return cls(int(parts[0]), *(float(p) for p in parts[1:]))
        except ValueError as err:
            raise ValueError(f"pyseismic build {spec!r}: {err}") from err

    @property
    def label(self) -> str:
        return (
            f"{self.n_postings:,} postings, centroids {self.centroid_fraction:g}, energy "
            f"{self.summary_energy:g}, max fraction {self.max_fraction:g}"
        )


@dataclass(frozen=True)
class SeismicSearch:
    """How pyseismic-lsr searches: ``query_cut`` (query terms kept), ``heap_factor`` (higher prunes more
    blocks: faster, lower recall) and ``sorted`` (summaries scanned best first; False is more accurate).
    Written ``CUT:HEAP[:unsorted]``."""

    query_cut: int
    heap_factor: float
    sorted: bool = True

    @classmethod
    def parse(cls, spec: str) -> SeismicSearch:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "unsorted"):
            raise ValueError(f"pyseismic search {spec!r}: expected CUT:HEAP[:unsorted]")
        try:
            return cls(int(parts[0]), float(parts[1]), len(parts) == 2)
        except ValueError as err:
            raise ValueError(f"pyseismic search {spec!r}: {err}") from err

    @property
    def label(self) -> str:
        return f"cut {self.query_cut}, heap {self.heap_factor:g}" + ("" if self.sorted else ", unsorted")


def parse_two_phase(spec: str) -> TwoPhase:
    """``RATIO:RATE`` (Lucene two-phase search's ``prune_ratio`` and ``expansion_rate``) as a setting."""
    ratio, sep, rate = spec.partition(":")
    try:
        return TwoPhase(float(ratio), *([float(rate)] if sep else []))
    except ValueError as err:
        raise ValueError(f"two-phase setting {spec!r}: expected RATIO[:RATE], {err}") from err


def two_phase_engine(setting: TwoPhase) -> str:
    """The bench's name of Lucene two-phase search at ``setting`` (in Lucene's ``IndexSearcher``)."""
    return f"lucene impact, two-phase {setting.prune_ratio:g} x {setting.expansion_rate:g} (IndexSearcher)"


def seismic_dataset(docs: sparse.csr_matrix) -> Any:
    """The documents as a ``seismic.SeismicDataset`` (filled in Python, one call per document); one
    dataset can build several indexes."""
    import seismic

    string = seismic.get_seismic_string()
    dataset = seismic.SeismicDataset()
    for i in range(docs.shape[0]):
        lo, hi = docs.indptr[i], docs.indptr[i + 1]
        dataset.add_document(str(i), docs.indices[lo:hi].astype(str).astype(string), docs.data[lo:hi])
    return dataset


class Seismic:
    """pyseismic-lsr (approximate): documents and queries as (token, weight) arrays.

    Args:
        docs: document vectors (CSR).
        threads: build threads.
        n_postings: postings kept per term (None: the bench's scaled choice, 0.0005 * 4 * N, at least 1000;
            pyseismic's own default is 3500).
        summary_energy: share of a block summary's weight mass kept (pyseismic's default 0.4).
        centroid_fraction: blocks per posting list as a share of ``n_postings`` (pyseismic's default 0.1).
        max_fraction: longest posting list kept, as a multiple of ``n_postings`` (pyseismic's default 1.5).
        dataset: ``seismic_dataset(docs)`` when one was made already (it can build several indexes).
    """

    def __init__(
        self,
        docs: sparse.csr_matrix,
        threads: int,
        n_postings: int | None = None,
        summary_energy: float = 0.4,
        centroid_fraction: float = 0.1,
        max_fraction: float = 1.5,
        dataset: Any = None,
    ) -> None:
        import seismic

        self.string = seismic.get_seismic_string()
        self.n_postings = n_postings or max(1000, int(0.0005 * docs.shape[0] * 4))
        self.index = seismic.SeismicIndex.build_from_dataset(
            seismic_dataset(docs) if dataset is None else dataset,
            n_postings=self.n_postings,
            centroid_fraction=centroid_fraction,
            summary_energy=summary_energy,
            max_fraction=max_fraction,
            num_threads=threads,
        )

    def search(
        self,
        q: sparse.csr_matrix,
        threads: int,
        heap_factor: float = 0.9,
        query_cut: int = 64,
        sorted: bool = True,
    ) -> list[list[str]]:
        comps = [
            q.indices[q.indptr[i] : q.indptr[i + 1]].astype(str).astype(self.string)
            for i in range(q.shape[0])
        ]
        vals = [q.data[q.indptr[i] : q.indptr[i + 1]].astype(np.float32) for i in range(q.shape[0])]
        ids = np.array([str(i) for i in range(q.shape[0])], dtype=self.string)
        results = self.index.batch_search(
            ids,
            comps,
            vals,
            k=K,
            query_cut=query_cut,
            heap_factor=heap_factor,
            sorted=sorted,
            num_threads=threads,
        )
        by_query = {
            row[0][0]: [doc for _, _, doc in row] for row in results if row
        }  # results are not in query order
        return [by_query.get(str(i), []) for i in range(q.shape[0])]

    def save(self, path: Path) -> Path:
        """Write the index (``PATH.index.seismic``); returns that file."""
        self.index.save(str(path))
        return path.with_name(path.name + ".index.seismic")


def recall_at_k(approx: list[list[str]], exact: list[list[str]]) -> float:
    hits = sum(len(set(a[:K]) & set(e[:K])) for a, e in zip(approx, exact, strict=True))
    return hits / max(sum(min(len(e), K) for e in exact), 1)


class PeakRSS:
    """Peak resident memory of this process and its children while the block runs, above what it was
    when the block started, in MiB (sampled every ``interval`` seconds by a thread)::

        with PeakRSS() as memory:
            build()
        memory.mib
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.mib = 0.0
        self._stop = threading.Event()

    def _sample(self) -> int:
        import psutil

        root = psutil.Process(os.getpid())
        total = 0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._base = self._peak = self._sample()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._sample())
        self.mib = (self._peak - self._base) / 2**20


def folder_mib(path: str | Path) -> float:
    """Size of the files under ``path`` (or of the file ``path``), in MiB."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


@dataclass
class ExactTop:
    """What the exact scores say about each query's top ``k``, from one pass over the collection (a
    sparse product over the index's own integer impacts, exact in float64).

    ``ids``: the top ``k`` with ties to the lower document number; ``kth``: the k-th best score;
    ``above`` / ``tied`` / ``positive``: how many documents score above it, exactly it, above zero.
    """

    k: int
    ids: list[list[str]]
    kth: np.ndarray
    above: np.ndarray
    tied: np.ndarray
    positive: np.ndarray
    docs: sparse.csr_matrix  # documents x terms, float64 impacts
    queries: sparse.csr_matrix  # queries x terms, float64 impacts

    @classmethod
    def of(cls, index: Any, q: sparse.csr_matrix, k: int = K, block: int = 32) -> ExactTop:
        docs = index.document_matrix().tocsr().astype(np.float64)
        queries = index.quantize_queries(q).astype(np.float64).tocsr()
        docs_t = docs.T.tocsr()
        n = queries.shape[0]
        ids: list[list[str]] = []
        kth = np.zeros(n)
        above, tied, positive = (np.zeros(n, np.int64) for _ in range(3))
        for start in range(0, n, block):
            for i, row in enumerate((queries[start : start + block] @ docs_t).toarray(), start=start):
                kth[i] = -np.partition(-row, k - 1)[k - 1] if len(row) >= k else row.min()
                top = np.flatnonzero(row >= kth[i])  # every document tied with the k-th best
                top = top[np.lexsort((top, -row[top]))][:k]
                ids.append([index.ids[j] for j in top if row[j] > 0])
                above[i], tied[i], positive[i] = (row > kth[i]).sum(), (row == kth[i]).sum(), (row > 0).sum()
        return cls(k, ids, kth, above, tied, positive, docs, queries)

    def scores(self, i: int, rows: Sequence[int]) -> np.ndarray:
        """Query ``i``'s exact scores for the documents at ``rows``."""
        return (self.docs[list(rows)] @ self.queries[i].T).toarray().ravel()


def brute_force_top(index: Any, q: sparse.csr_matrix, k: int) -> list[list[str]]:
    """Top ``k`` by a sparse product over the index's own integer impacts (exact in float64), ties to the
    lower document number."""
    return ExactTop.of(index, q, k).ids


def ties_at_kth(exact: ExactTop) -> tuple[int, int]:
    """How many queries have a document outside the exact top k that ties with the k-th best, and how
    many top-k places such ties hold: the places another tie order may fill differently."""
    crossing = (exact.kth > 0) & (exact.above + exact.tied > exact.k)
    return int(crossing.sum()), int((exact.k - exact.above[crossing]).sum())


def recall_with_ties(exact: ExactTop, found: list[list[str]]) -> float:
    """Recall@k where a document tied with the k-th best may take any of the places the documents
    scoring above it leave: an engine that breaks ties in another order (its own document numbers) is
    not charged for it. Ids must be the index's row numbers as strings."""
    if len(found) != len(exact.ids):
        raise ValueError(f"{len(found)} result lists for {len(exact.ids)} queries")
    hits = total = 0
    for i, ids in enumerate(found):
        kth = exact.kth[i]
        relevant = min(exact.k, int(exact.positive[i]))
        above = min(relevant, int(exact.above[i]) if kth > 0 else int(exact.positive[i]))
        scores = exact.scores(i, [int(d) for d in ids[: exact.k]])
        tied = sum(1 for x in scores if x == kth and x > 0)
        hits += sum(1 for x in scores if x > kth and x > 0) + min(tied, relevant - above)
        total += relevant
    return hits / max(total, 1)
