"""Anserini's input collections and indexer: the JSON files Winnow writes for Lucene, and
``IndexCollection`` run in process (one input file per indexing thread).

``JsonVectorCollection`` lines carry a learned sparse vector as ``{token: integer impact}``;
:mod:`indexes.lucene` builds its impact and BM25 indexes through :func:`index_collection`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes import _jvm
from indexes.inverted import to_impacts

logger = logging.getLogger(__name__)


def impact_rows(matrix: Any, vocabulary: Sequence[str], scale: float) -> Iterable[dict[str, int]]:
    """``{token: round(w * scale)}`` per row of a CSR matrix (zero impacts dropped)."""
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        impacts = to_impacts(matrix.data[lo:hi], scale).astype(np.int64)
        yield {vocabulary[t]: int(v) for t, v in zip(matrix.indices[lo:hi], impacts, strict=True) if v > 0}


def write_json_vectors(
    path: Path, matrix: Any, ids: Sequence[str], vocabulary: Sequence[str], scale: float
) -> None:
    """Append documents to a ``JsonVectorCollection`` file: ``{"id", "contents", "vector"}`` per line."""
    with path.open("a", encoding="utf-8") as out:
        for doc_id, vector in zip(ids, impact_rows(matrix, vocabulary, scale), strict=True):
            out.write(json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n")


def index_collection(collection: str, input_dir: Path, index_dir: Path, threads: int, *extra: str) -> None:
    """Run Anserini's ``IndexCollection`` in process."""
    args = [
        "-collection", collection,
        "-input", str(input_dir),
        "-index", str(index_dir),
        "-threads", str(threads),
        *extra,
        *([] if logger.isEnabledFor(logging.INFO) else ["-quiet"]),  # Anserini's INFO log follows ours
    ]  # fmt: skip
    logger.info("Lucene: IndexCollection %s", " ".join(args))
    _jvm.autoclass("io.anserini.index.IndexCollection").main(args)
    if not (index_dir.is_dir() and any(index_dir.iterdir())):
        raise RuntimeError(f"Anserini IndexCollection wrote no index to {index_dir} (input {input_dir})")
