"""A disk cache of text embeddings keyed by model, settings and text hash; append-only and resumable.

Frozen models (the GIST guide, dense teachers, the miner) embed each training text once. Vectors are
stored in shards (``shard-00001.npy`` + ``shard-00001.json`` with the text keys); a shard is written
to a temporary name and renamed, so an interrupted run loses at most the shard in progress, and the
next run computes only what is missing. A changed model or setting gets a different folder. Processes
may share a cache: shards are numbered and written under a lock, and a text another process stored
while this one was encoding it is kept once.

Example:
    >>> cache = EmbeddingCache(load_encoder("sentence-transformers/all-mpnet-base-v2"), "runs/cache")
    >>> vectors = cache.get(["what is winnowing?"], role="query")
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from indexes.lock import file_lock
from retrieval.encoders import Encoder
from retrieval.identity import model_identity
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

Role = Literal["query", "document"]


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


class EmbeddingCache:
    """Embeddings of texts by one frozen encoder, computed on demand and kept on disk.

    Args:
        encoder: the frozen model.
        root: cache root; the model gets its own sub-folder named from its id and settings.
        shard_size: texts per shard (the unit of resume).
    """

    def __init__(self, encoder: Encoder, root: str | Path, shard_size: int = 1024) -> None:
        self.encoder = encoder
        model = getattr(encoder, "model", None)
        settings = json.dumps(
            {
                "model": model_identity(encoder.name),
                "dim": encoder.dim,
                "sim": encoder.similarity,
                "max_length": getattr(model, "max_seq_length", None),
                "v": 1,
            },
            sort_keys=True,
        )
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(encoder.name).name)[:60]
        self.dir = Path(root) / f"{slug}-{hashlib.sha1(settings.encode()).hexdigest()[:10]}"
        self.shard_size = shard_size
        self._index: dict[Role, dict[str, tuple[int, int]]] = {}
        self._shards: dict[tuple[Role, int], np.ndarray] = {}

    def _role_dir(self, role: Role) -> Path:
        return self.dir / role

    def _load_index(self, role: Role) -> dict[str, tuple[int, int]]:
        if role not in self._index:
            index: dict[str, tuple[int, int]] = {}
            for keys_file in sorted(self._role_dir(role).glob("shard-*.json")):
                shard = int(keys_file.stem.split("-")[1])
                if not keys_file.with_suffix(".npy").is_file():
                    continue
                for row, key in enumerate(json.loads(keys_file.read_text())):
                    index[key] = (shard, row)
            self._index[role] = index
        return self._index[role]

    def _shard(self, role: Role, shard: int) -> np.ndarray:
        if (role, shard) not in self._shards:
            path = self._role_dir(role) / f"shard-{shard:05d}.npy"
            self._shards[(role, shard)] = np.load(path, mmap_mode="r")
        return self._shards[(role, shard)]

    def _write_shard(self, role: Role, keys: list[str], vectors: np.ndarray) -> None:
        folder = self._role_dir(role)
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / ".lock"):  # several processes may share a cache
            self._index.pop(role, None)  # another writer may have added shards
            index = self._load_index(role)
            first = {key: row for row, key in reversed(list(enumerate(keys)))}  # first row of each key
            fresh = sorted(row for key, row in first.items() if key not in index)
            if not fresh:  # another process stored them while we encoded: keep one copy
                return
            keys, vectors = [keys[row] for row in fresh], vectors[fresh]
            existing = [int(p.stem.split("-")[1]) for p in folder.glob("shard-*.npy")]
            shard = 1 + max(existing, default=0)
            base = folder / f"shard-{shard:05d}"
            tmp_npy, tmp_json = base.with_suffix(".npy.tmp"), base.with_suffix(".json.tmp")
            with tmp_npy.open("wb") as handle:
                np.save(handle, vectors.astype(np.float32))
            tmp_json.write_text(json.dumps(keys))
            os.replace(tmp_json, base.with_suffix(".json"))
            os.replace(tmp_npy, base.with_suffix(".npy"))  # the .npy makes the shard count
            index.update({key: (shard, row) for row, key in enumerate(keys)})

    def missing(self, texts: Sequence[str], role: Role) -> list[str]:
        index = self._load_index(role)
        unique = dict.fromkeys(texts)
        return [t for t in unique if text_key(t) not in index]

    def put(self, texts: Sequence[str], vectors: np.ndarray, role: Role) -> int:
        """Store vectors computed elsewhere (e.g. on a GPU machine); returns how many texts were new."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.encoder.dim):
            raise ValueError(
                f"got vectors of shape {vectors.shape} for {len(texts)} texts of dim {self.encoder.dim}"
            )
        index = self._load_index(role)
        rows = {text_key(t): i for i, t in enumerate(texts) if text_key(t) not in index}
        keys = list(rows)
        for start in range(0, len(keys), self.shard_size):
            chunk = keys[start : start + self.shard_size]
            self._write_shard(role, chunk, vectors[[rows[k] for k in chunk]])
        return len(keys)

    def get(
        self, texts: Sequence[str], role: Role, batch_size: int = 64, progress: bool = True
    ) -> np.ndarray:
        """Embeddings of ``texts`` (rows in order), computing and storing the missing ones first."""
        todo = self.missing(texts, role)
        if todo:
            logger.info("%s: embedding %d new %s texts", self.encoder.name, len(todo), role)
            encode = self.encoder.encode_queries if role == "query" else self.encoder.encode_documents
            bar = tqdm(
                total=len(todo),
                unit="text",
                desc=f"{Path(self.encoder.name).name} {role}s",
                disable=not (progress and show_progress()),
            )
            for start in range(0, len(todo), self.shard_size):
                chunk = todo[start : start + self.shard_size]
                self._write_shard(role, [text_key(t) for t in chunk], encode(chunk, batch_size=batch_size))
                bar.update(len(chunk))
            bar.close()
        index = self._load_index(role)
        out = np.empty((len(texts), self.encoder.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            shard, row = index[text_key(text)]
            out[i] = self._shard(role, shard)[row]
        return out
