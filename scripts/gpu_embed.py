"""Encode texts on a GPU machine with a sentence-transformers model (used to fill Winnow's embedding
cache for large frozen models, e.g. the all-mpnet-base-v2 guide, when the local CPU is too slow).

    python scripts/gpu_embed.py MODEL_DIR texts.json.gz OUT_DIR [--max-length 256]

texts.json.gz maps "NAME-query" / "NAME-document" to lists of texts; OUT_DIR gets NAME-ROLE.npy
(float32, L2-normalised). Weights shipped in fp16 are run in fp32.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("texts")
    parser.add_argument("out")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    model = SentenceTransformer(args.model_dir, device="cuda").float()
    model.max_seq_length = args.max_length
    with gzip.open(args.texts, "rt", encoding="utf-8") as handle:
        todo = json.load(handle)
    for key, texts in todo.items():
        if not texts:
            continue
        encode = model.encode_query if key.endswith("-query") else model.encode_document
        start = time.perf_counter()
        vectors = encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        np.save(Path(args.out) / f"{key}.npy", vectors.astype(np.float32))
        print(f"{key}: {vectors.shape} in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
