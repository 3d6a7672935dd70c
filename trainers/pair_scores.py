"""``PairScoreStore``: one teacher's raw scores of (query, document) text pairs, kept on disk.

A teacher's score of a pair depends on the two texts only, so the store is keyed by pair, not by the
list of pairs a run asked for: a rerun with another seed, another subset of queries or a few other
negatives scores only the pairs it has not seen. Keys are the first 8 bytes of SHA-1 over the
teacher's name and both texts (a collision among 10 million pairs has probability ~3e-6). Each batch
of newly scored pairs is written as its own part (``pairs-<teacher digest>/part-<keys digest>.npz``,
atomically), so saving costs the new pairs only, however large the store has grown, and two
processes adding to the same store at once both keep what they scored. Opening a store reads every
part, and a single-file store ``pairs-<teacher digest>.npz`` when present, into one sorted key array.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from indexes.io import write_file_atomic

logger = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[str], Sequence[Sequence[str]]], list[np.ndarray]]


class PairScoreStore:
    """Pair scores of the teacher called ``teacher_name`` under ``directory``.

    Args:
        directory: folder of the stores (one file per teacher).
        teacher_name: the teacher's ``name`` (model id and kind); part of every key.
        chunk_pairs: new pairs are scored and saved in chunks of about this many, so an interrupted
            run resumes after the last saved chunk.

    Example:
        >>> store = PairScoreStore(cache / "teacher_scores", teacher.name)
        >>> scores = store.score(["q"], [["doc a", "doc b"]], teacher.score)  # scores only new pairs
    """

    def __init__(self, directory: str | Path, teacher_name: str, chunk_pairs: int = 50_000) -> None:
        if chunk_pairs < 1:
            raise ValueError(f"chunk_pairs must be at least 1; got {chunk_pairs}")
        self.teacher_name = teacher_name
        self.chunk_pairs = chunk_pairs
        digest = hashlib.sha1(teacher_name.encode()).hexdigest()[:16]
        self.path = Path(directory) / f"pairs-{digest}"
        single_file = Path(directory) / f"pairs-{digest}.npz"
        parts = [single_file] if single_file.is_file() else []
        parts += sorted(self.path.glob("part-*.npz"))
        stored_keys, stored_values = [np.zeros(0, dtype=np.uint64)], [np.zeros(0, dtype=np.float32)]
        for part in parts:
            with np.load(part) as stored:
                stored_keys.append(stored["keys"].astype(np.uint64))
                stored_values.append(stored["scores"].astype(np.float32))
        self.keys, first = np.unique(np.concatenate(stored_keys), return_index=True)
        self.values = np.concatenate(stored_values)[first]

    def key(self, query: str, document: str) -> int:
        digest = hashlib.sha1(f"{self.teacher_name}\1{query}\0{document}".encode()).digest()
        return int.from_bytes(digest[:8], "little")

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of ``keys`` (NaN where absent) and the mask of those found."""
        out = np.full(len(keys), np.nan, dtype=np.float32)
        if not len(self.keys) or not len(keys):
            return out, np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[at] == keys
        out[found] = self.values[at[found]]
        return out, found

    def add(self, keys: np.ndarray, scores: np.ndarray) -> None:
        """Merge new pairs (a key already present keeps its stored score); the pairs not stored
        before are saved as a new part, atomically."""
        keys, scores = keys.astype(np.uint64), scores.astype(np.float32)
        keys, first = np.unique(keys, return_index=True)
        scores = scores[first]
        _, found = self.lookup(keys)
        keys, scores = keys[~found], scores[~found]
        if not len(keys):
            return
        name = f"part-{hashlib.sha1(keys.tobytes()).hexdigest()[:16]}.npz"
        write_file_atomic(self.path / name, lambda tmp: np.savez(tmp, keys=keys, scores=scores))
        at = np.searchsorted(self.keys, keys)  # a linear merge of two sorted arrays, no re-sort
        self.keys, self.values = np.insert(self.keys, at, keys), np.insert(self.values, at, scores)

    def _chunks(self, lengths: Sequence[int]) -> list[tuple[int, int]]:
        """Query ranges of about ``chunk_pairs`` pairs each (a query is never split)."""
        out, lo, size = [], 0, 0
        for i, n in enumerate(lengths):
            size += n
            if size >= self.chunk_pairs:
                out.append((lo, i + 1))
                lo, size = i + 1, 0
        if lo < len(lengths):
            out.append((lo, len(lengths)))
        return out

    def score(
        self, queries: Sequence[str], candidates: Sequence[Sequence[str]], score_fn: ScoreFn
    ) -> list[np.ndarray]:
        """Every pair's score, one array per query: stored ones read, the others from ``score_fn``,
        called on chunks of about ``chunk_pairs`` pairs and saved after each."""
        lengths = [len(docs) for docs in candidates]
        keys = np.fromiter(
            (self.key(q, d) for q, docs in zip(queries, candidates, strict=True) for d in docs),
            dtype=np.uint64,
            count=sum(lengths),
        )
        ends = np.cumsum(lengths, dtype=int)
        flat, found = self.lookup(keys)
        if not found.all():
            starts = ends - np.asarray(lengths, dtype=int)
            todo_queries, todo_docs, todo_at = [], [], []
            for i, (query, docs) in enumerate(zip(queries, candidates, strict=True)):
                missing = [j for j in range(len(docs)) if not found[starts[i] + j]]
                if missing:
                    todo_queries.append(query)
                    todo_docs.append([docs[j] for j in missing])
                    todo_at.extend(int(starts[i]) + j for j in missing)
            logger.info(
                "scoring %d of %d pairs with teacher %s (%d stored)",
                len(todo_at),
                len(keys),
                self.teacher_name,
                int(found.sum()),
            )
            done = 0
            for lo, hi in self._chunks([len(d) for d in todo_docs]):
                new = score_fn(todo_queries[lo:hi], todo_docs[lo:hi])
                expected = sum(len(d) for d in todo_docs[lo:hi])
                parts = [np.asarray(x, dtype=np.float32).ravel() for x in new]
                new_flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
                if len(new_flat) != expected:
                    raise ValueError(
                        f"teacher {self.teacher_name} returned {len(new_flat)} scores for {expected} pairs"
                    )
                at = np.asarray(todo_at[done : done + expected], dtype=int)
                flat[at] = new_flat
                self.add(keys[at], new_flat)  # saved per chunk: an interrupted run keeps what it scored
                done += expected
                if done < len(todo_at):
                    logger.info("%s: %d of %d new pairs scored", self.teacher_name, done, len(todo_at))
        return np.split(flat, ends[:-1]) if lengths else []
