"""A real-text collection of up to millions of documents for the sparse search benchmarks, encoded once.

The documents are ``bench.scale``'s corpus: 3-8 sentences of the SciFact and NFCorpus corpora under the
data root, drawn with a fixed seed, so the first N documents of the 1M collection are the N-document
collection. Encoding a million documents with a transformer takes days on a CPU, so each sentence of
the pool is encoded once by the model's document encoder, and a document's vector is the element-wise
maximum of its sentences' vectors: SPLADE's own pooling (a maximum over token positions) with attention
confined to each sentence. A model with a lexical prior (``winnow models lexical-prior``) counts a
whole document's tokens, so each sentence's own prior is taken out before pooling and the prior of the
document's text is added after: the learned part is pooled, the prior is the model's own (over the
first ``max_length`` tokens of the joined sentences, as the model reads a document). The model's document
pruning (``max_active_dims`` and ``doc_min_contribution``, see ``winnow models prune``) is applied to
the pooled vector, as the model applies it to a whole document.

Queries are the test queries of SciFact and NFCorpus and, to reach ``n_queries``, their dev and train
queries (in that order), encoded by the model's query side (inference-free: IDF-weighted tokens).

Everything is cached under ``work`` (per model; sentence vectors, then per-size document chunks) and
reused while the model folder is unchanged. ``--model`` may be the model's ONNX export (``winnow export
onnx --quantize int8``: its document encoder is 2-3x faster on a CPU, and it carries the IDF query table
and the document pruning)::

    python -m bench.sparse_corpus --model runs/onnx/sparse-pruned-int8 --docs 100000 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.common import log_progress
from bench.scale import SOURCES, document_sentences, sentences
from indexes.io import write_json_atomic
from retrieval.corpus import open_beir
from retrieval.lexical_prior import encoder_prior, prior_vectors
from retrieval.settings import data_root

logger = logging.getLogger("bench.sparse_corpus")
CHUNK = 50_000  # documents pooled at a time
SPLITS = ("test", "dev", "train")


def model_key(model: str) -> str:
    """A cache key that changes when the model folder's files change (name, size, mtime)."""
    path = Path(model)
    stamp = [
        (str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(path.rglob("*"))
    ]
    digest = hashlib.sha1(json.dumps([model, stamp]).encode()).hexdigest()[:12]
    return f"{path.name}-{digest}"


def sentence_vectors(model: str, pool: list[str], folder: Path, batch_size: int = 64) -> sparse.csr_matrix:
    """Every sentence of the pool encoded by the model's document encoder with no pruning (cached)."""
    from retrieval.encoders import load_encoder

    path = folder / "sentences.npz"
    written = path.is_file() and (folder / "meta.json").is_file()
    cached = json.loads((folder / "meta.json").read_text()) if written else None
    if cached is not None and "lexical_prior" in cached:  # written knowing the model's prior
        return sparse.load_npz(path).tocsr()
    encoder = load_encoder(model, device="cpu")
    prior = encoder_prior(encoder)
    if cached is not None:  # written before priors were pooled: still right for a model without one
        if prior is None:
            return sparse.load_npz(path).tocsr()
        for stale in folder.glob("docs-*.npz"):  # pooled from the sentences about to be replaced
            stale.unlink()
    prune, floor = encoder.max_active_dims, encoder.doc_min_contribution
    encoder.max_active_dims = encoder.doc_min_contribution = None  # pruning applies to pooled documents
    parts = []
    for start in range(0, len(pool), 20_000):
        texts = pool[start : start + 20_000]
        part = sparse.csr_matrix(encoder.encode_documents(texts, batch_size))
        if prior is not None:
            part = learned_part(part, prior_vectors(prior[0], prior[1], texts, prior[2]))
        parts.append(part)
        logger.info("sentences: %d/%d encoded", min(start + 20_000, len(pool)), len(pool))
    vectors = sparse.vstack(parts, format="csr").astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("sentences.tmp.npz")
    sparse.save_npz(tmp, vectors)
    tmp.replace(path)
    write_json_atomic(
        folder / "meta.json",
        {
            "model": model,
            "max_active_dims": prune,
            "doc_min_contribution": floor,
            "lexical_prior": prior[0].settings() if prior else None,
            "sentences": len(pool),
        },
    )
    return vectors


def learned_part(vectors: sparse.csr_matrix, prior: sparse.csr_matrix) -> sparse.csr_matrix:
    """``vectors`` without what a lexical prior added to them (``prior``): the model's own weights,
    which are never negative, so what is left of a term within rounding of its prior (1e-3 of it, an
    fp16 export's precision) is dropped."""
    out = (vectors - prior).tocsr()
    margin = (out - prior.multiply(np.float32(1e-3))).tocsr()
    return out.multiply(margin > 1e-6).tocsr().astype(np.float32)


def max_pool(vectors: sparse.csr_matrix, picks: list[np.ndarray]) -> sparse.csr_matrix:
    """One row per document: the element-wise maximum of its sentences' rows."""
    rows = np.concatenate([np.full(len(p), i) for i, p in enumerate(picks)])
    chosen = vectors[np.concatenate(picks)].tocoo()
    doc = rows[chosen.row]
    key = doc.astype(np.int64) * vectors.shape[1] + chosen.col
    order = np.lexsort((-chosen.data, key))  # per (document, term), the largest weight first
    key, data = key[order], chosen.data[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, data = key[first], data[first]
    return sparse.csr_matrix(
        (data, (key // vectors.shape[1], key % vectors.shape[1])),
        shape=(len(picks), vectors.shape[1]),
        dtype=np.float32,
    )


def collection(model: str, n_docs: int, work: Path, root: Path | None = None) -> sparse.csr_matrix:
    """The first ``n_docs`` documents' vectors (CSR), built from cached chunks of ``CHUNK`` documents."""
    from retrieval.encoders import load_encoder
    from retrieval.sparse_encoder import drop_small_contributions, keep_top_terms

    folder = work / model_key(model)
    pool = sentences(root or data_root())
    vectors = sentence_vectors(model, pool, folder)
    meta = json.loads((folder / "meta.json").read_text())
    prune, floor = meta["max_active_dims"], meta.get("doc_min_contribution")
    encoder = prior = None  # loaded the first time a chunk is pooled with a floor or a prior
    draws = document_sentences(len(pool), n_docs)
    parts = []
    for start in range(0, n_docs, CHUNK):
        picks = [next(draws) for _ in range(min(CHUNK, n_docs - start))]
        path = folder / f"docs-{start}-{CHUNK}.npz"
        if path.is_file() and sparse.load_npz(path).shape[0] >= len(picks):
            parts.append(sparse.load_npz(path).tocsr()[: len(picks)])
            continue
        pooled = max_pool(vectors, picks)
        if (meta.get("lexical_prior") or floor) and encoder is None:
            encoder = load_encoder(model, device="cpu")
            prior = encoder_prior(encoder) if meta.get("lexical_prior") else None
            if meta.get("lexical_prior") and prior is None:
                raise ValueError(f"{folder}: cached with a lexical prior, but {model} has none; delete it")
        if prior is not None:  # the prior of each document's whole text (module docstring)
            texts = [" ".join(pool[j] for j in p) for p in picks]
            pooled = (pooled + prior_vectors(prior[0], prior[1], texts, prior[2])).tocsr()
        part = keep_top_terms(pooled, prune) if prune else pooled
        if floor:
            part = drop_small_contributions(part, encoder.query_weights, floor)
        if len(picks) == CHUNK:
            tmp = path.with_name(path.stem + ".tmp.npz")
            sparse.save_npz(tmp, part)
            tmp.replace(path)
        parts.append(part)
        logger.info("documents: %d/%d pooled", start + len(picks), n_docs)
    return sparse.vstack(parts, format="csr")


def document_texts(n_docs: int, root: Path | None = None) -> list[str]:
    """The first ``n_docs`` documents' texts (for BM25 on the same collection)."""
    pool = sentences(root or data_root())
    return [" ".join(pool[j] for j in picks) for picks in document_sentences(len(pool), n_docs)]


def query_texts(n_queries: int, root: Path | None = None) -> list[str]:
    """``n_queries`` distinct query texts of the source data sets: test, then dev, then train splits."""
    root = root or data_root()
    found: dict[str, None] = {}
    for split in SPLITS:
        for name in SOURCES:
            data = open_beir(root / "beir" / name)
            if split not in data.splits():
                continue
            queries = data.queries(split)
            for qid in sorted(data.qrels(split)):
                found.setdefault(queries[qid], None)
    texts = list(found)
    if len(texts) < n_queries:
        raise ValueError(f"{n_queries} queries asked for; the source data sets hold {len(texts)}")
    return texts[:n_queries]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="sparse model (its document encoder is used)")
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", default="runs/bench/sparse-corpus")
    args = parser.parse_args()
    log_progress()
    for n in args.docs:
        docs = collection(args.model, n, Path(args.work))
        logger.info("%d documents, %.1f terms each, %d postings", docs.shape[0], docs.nnz / n, docs.nnz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
