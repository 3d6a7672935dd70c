"""Sparse search speed: the embedded inverted index vs Lucene impact search vs BM25 in Lucene vs pyseismic.

``--real-docs 100000 1000000`` measures the real-text collection of :mod:`bench.sparse_corpus` instead
(:mod:`bench.sparse_real`: QPS, p50/p99, recall, build time, size and memory, exactness against brute
force). Otherwise two collections, in one run:

1. SciFact: the trained model's document vectors (cached by ``bench.sparse_quality``) and the test
   queries encoded inference-free (IDF-weighted tokens); BM25 in Lucene searches the same queries' text.
2. Synthetic: ``--synthetic-docs`` documents (default 1M) drawn with the trained model's term
   statistics on SciFact (document length distribution, term document frequencies, weight
   distribution), searched with the real SciFact query vectors.

Lucene is timed three ways on SciFact: through pyserini's searchers (queries converted from Python),
"engine only" (pyserini's batch call on queries already converted: Anserini's search layer included)
and "IndexSearcher" (``indexes.lucene_engine``: Lucene's own top-k search, one call per query, for
impact and BM25 queries alike); the last is the engine-to-engine latency comparison.

Every engine answers the same queries (top 10) with 1 thread and with all threads; timings are the
median of ``--repeats`` interleaved passes, each timed call right after an untimed one. The embedded
index and Lucene use the same integer impacts (x100); pyseismic-lsr is approximate and reports its
recall@10 against the exact results.

    python -m bench.sparse_search --model runs/models/sparse-full --json runs/bench/sparse_search.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from bench.common import log_progress, save_record, timed
from bench.sparse_engines import (
    Seismic,
    SeismicBuild,
    SeismicSearch,
    parse_two_phase,
    recall_at_k,
    two_phase_engine,
)
from bench.sparse_quality import vectors_outdated, vectors_path
from bench.sparse_real import SEISMIC_SEARCH, real_collections
from bench.sparse_summary import same_run_ratios
from indexes.inverted import InvertedIndex
from indexes.lucene import LuceneImpactIndex
from indexes.lucene_bm25 import LuceneBM25Index
from indexes.lucene_engine import (
    bm25_queries,
    impact_queries,
    index_searcher,
    search_only,
)
from indexes.lucene_rescore import rescored
from indexes.two_phase import TwoPhase
from retrieval.corpus import document_text, open_beir
from retrieval.encoders import load_encoder
from retrieval.settings import resolve_beir

logger = logging.getLogger("bench.sparse_search")
K = 10


def synthetic(docs: sparse.csr_matrix, n: int, seed: int) -> sparse.csr_matrix:
    """``n`` documents with the term statistics of ``docs``: lengths, document frequencies, weights."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(np.diff(docs.indptr), size=n)
    df = np.bincount(docs.indices, minlength=docs.shape[1]).astype(np.float64)
    cdf = np.cumsum(df / df.sum())
    rows, cols = [], []
    for start in range(0, n, 100_000):  # bounded memory
        part = lengths[start : start + 100_000]
        terms = np.searchsorted(cdf, rng.random(int(part.sum())), side="right").clip(max=docs.shape[1] - 1)
        rows.append(np.repeat(np.arange(start, start + len(part)), part))
        cols.append(terms)
    r, c = np.concatenate(rows), np.concatenate(cols)
    values = rng.choice(docs.data, size=len(r)).astype(np.float32)
    matrix = sparse.csr_matrix((values, (r, c)), shape=(n, docs.shape[1]), dtype=np.float32)
    matrix.sum_duplicates()  # a term drawn twice for one document counts once (weights add up)
    matrix.data = np.minimum(matrix.data, docs.data.max())
    return matrix


def scipy_top_k(queries: sparse.csr_matrix, docs_t: sparse.csr_matrix, ids: list[str]) -> list[list[str]]:
    """The closest library path: a sparse product per query block, then a partial sort (1 thread)."""
    out: list[list[str]] = []
    for start in range(0, queries.shape[0], 64):
        scores = (queries[start : start + 64] @ docs_t).toarray()
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        for row, cand in zip(scores, top, strict=True):
            out.append([ids[j] for j in cand[np.argsort(-row[cand], kind="stable")]])
    return out


def run_collection(
    name: str,
    docs: sparse.csr_matrix,
    queries: sparse.csr_matrix,
    vocabulary: list[str],
    repeats: int,
    texts: tuple[list[str], list[str]] | None,
    seismic: bool,
    lucene_impact: bool = True,
    two_phase: Sequence[TwoPhase] = (),
) -> list[dict[str, Any]]:
    threads_all = os.cpu_count() or 1
    ids = [str(i) for i in range(docs.shape[0])]
    logger.info(
        "%s: %d docs, %.1f terms/doc, %d queries",
        name,
        docs.shape[0],
        docs.nnz / docs.shape[0],
        queries.shape[0],
    )
    start = time.perf_counter()
    embedded = InvertedIndex(docs.shape[1], impact_scale=100, query_scale=100)
    embedded.add(docs, ids)
    embedded.search(queries[:2], K)  # compile + finalise
    build = {"embedded": time.perf_counter() - start}
    engines: dict[str, Callable[[int], Any]] = {
        "embedded inverted (exact)": lambda t: embedded.search(queries, K, threads=t).ids,
        "embedded inverted, touched-list strategy only (exact)": lambda t: (
            embedded.search(queries, K, threads=t, strategy="touched").ids
        ),
        "scipy CSC product (exact)": lambda t: scipy_top_k(queries, postings, ids),
    }
    postings = docs.T.tocsr()  # (vocabulary, documents): one row of postings per term
    if lucene_impact:
        start = time.perf_counter()
        lucene = LuceneImpactIndex(docs.shape[1], vocabulary, impact_scale=100, query_scale=100)
        lucene.add(docs, ids)
        lucene.search(queries[:2], K)
        build["lucene impact"] = time.perf_counter() - start
        engines["lucene impact (exact)"] = lambda t: lucene.search(queries, K, threads=t).ids
        # The Java call alone, queries already converted: what the engine costs without the Python bridge
        # (each query's term -> weight map is built with one JPype call per term).
        impact_batch, impact_qids = lucene.java_queries(queries)
        engines["lucene impact (engine only)"] = lambda t: lucene.searcher().object.batch_search(
            impact_batch, impact_qids, K, t
        )
        if texts is not None:  # beside BM25 below: Lucene's IndexSearcher without Anserini's search layer
            impact_searcher = index_searcher(lucene)
            impact_lucene = impact_queries(lucene, queries)
            engines["lucene impact (IndexSearcher)"] = lambda t: search_only(
                impact_searcher, impact_lucene, K
            )
            for setting in two_phase:  # timed alike: the engine's top k, nothing read back
                split, window = lucene.two_phase_queries(queries, setting), setting.window(K)
                engines[two_phase_engine(setting)] = lambda t, s=split, w=window: [
                    rescored(impact_searcher, heavy, light, K, w) for heavy, light in s
                ]
    if texts is not None:
        doc_texts, query_texts = texts
        start = time.perf_counter()
        bm25 = LuceneBM25Index()
        bm25.add_texts(doc_texts, ids)
        bm25.search_texts(query_texts[:2], K)
        build["lucene bm25"] = time.perf_counter() - start
        engines["lucene bm25"] = lambda t: bm25.search_texts(query_texts, K, threads=t).ids
        from pyserini.pyclass import JArrayList

        bm25_batch, bm25_qids = JArrayList(), JArrayList()
        for i, text in enumerate(query_texts):
            bm25_batch.add(text)
            bm25_qids.add(str(i))
        engines["lucene bm25 (engine only)"] = lambda t: bm25.searcher().object.batch_search(
            bm25_batch, bm25_qids, K, t
        )
        bm25_searcher, bm25_lucene = index_searcher(bm25), bm25_queries(query_texts)
        engines["lucene bm25 (IndexSearcher)"] = lambda t: search_only(bm25_searcher, bm25_lucene, K)
    if seismic:
        start = time.perf_counter()
        sei = Seismic(docs, threads_all)
        build["pyseismic"] = time.perf_counter() - start
        for heap_factor in (0.9, 1.0):  # seismic's speed/recall knob; both are reported
            engines[f"pyseismic (approximate, heap {heap_factor})"] = lambda t, h=heap_factor: sei.search(
                queries, t, heap_factor=h
            )
    rows = []
    timings: dict[tuple[str, int], list[float]] = {}
    results: dict[str, Any] = {}
    for _ in range(repeats):  # interleave engines so load changes hit all of them alike
        for engine, fn in engines.items():
            for threads in [1] if "(IndexSearcher)" in engine else sorted({1, threads_all}):
                # One untimed call first: after the Java engines the JVM's JIT and GC threads hold a
                # core for a while, which a two-thread search on a small collection would be timed with.
                fn(threads)
                seconds, out = timed(lambda fn=fn, threads=threads: fn(threads))
                timings.setdefault((engine, threads), []).append(seconds)
                results[engine] = out
    exact = results["embedded inverted (exact)"]
    for (engine, threads), times in timings.items():
        seconds = statistics.median(times)
        row = {
            "collection": name,
            "engine": engine,
            "threads": threads,
            "qps": queries.shape[0] / seconds,
            "ms_per_query": 1000 * seconds / queries.shape[0],
            "build_seconds": build.get(engine.split(" (")[0]),
        }
        timing_only = "engine only" in engine or "IndexSearcher" in engine  # no hits to compare
        if not engine.startswith("lucene bm25") and not timing_only:
            row["recall@10_vs_exact"] = recall_at_k(results[engine], exact)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the trained sparse model (inference-free)")
    parser.add_argument("--data", default="scifact")
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench.sparse_quality's --work")
    parser.add_argument("--synthetic-docs", type=int, default=1_000_000)
    parser.add_argument(
        "--lucene-synthetic-docs",
        type=int,
        default=None,
        help="Lucene impact indexing runs at ~0.1M postings/s here: compare it with the embedded index on "
        "the first N synthetic documents (default: all of them)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-seismic", action="store_true")
    parser.add_argument(
        "--real-docs",
        type=int,
        nargs="+",
        default=None,
        help="instead: the real-text collection of bench.sparse_corpus at these sizes (bench.sparse_real)",
    )
    parser.add_argument("--queries", type=int, default=1000, help="queries of the real-text collection")
    parser.add_argument("--no-lucene", action="store_true", help="real-text collection: leave Lucene out")
    parser.add_argument(
        "--seismic-build",
        nargs="*",
        default=["3500"],
        help="real-text collection: build pyseismic with each of these settings, "
        "POSTINGS[:CENTROID_FRACTION[:SUMMARY_ENERGY[:MAX_FRACTION]]] (default: pyseismic's; none: skip it)",
    )
    parser.add_argument(
        "--seismic-search",
        nargs="+",
        default=SEISMIC_SEARCH,
        help="real-text collection: search each pyseismic index with each of these, CUT:HEAP[:unsorted]",
    )
    parser.add_argument("--latency-queries", type=int, default=300, help="single-query calls timed")
    parser.add_argument(
        "--query-model", default=None, help="real-text collection: weight queries by this model's table"
    )
    parser.add_argument(
        "--corpus-work", default="runs/bench/sparse-corpus", help="bench.sparse_corpus's cache"
    )
    parser.add_argument(
        "--two-phase",
        nargs="*",
        default=[],
        metavar="RATIO[:RATE]",
        help="also time Lucene impact search in two phases (prune_ratio and expansion_rate, default rate 5)",
    )
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    try:
        args.two_phase = [parse_two_phase(spec) for spec in args.two_phase]
        args.seismic_build = [SeismicBuild.parse(spec) for spec in args.seismic_build]
        args.seismic_search = [SeismicSearch.parse(spec) for spec in args.seismic_search]
    except ValueError as err:
        parser.error(str(err))
    if not args.no_seismic and importlib.util.find_spec("seismic") is None:
        raise SystemExit(
            "pyseismic-lsr (module 'seismic') is not installed: pip install -e '.[bench]' "
            "(make bench does), or pass --no-seismic"
        )
    log_progress()
    if args.real_docs:
        return real_collections(args)
    cached = vectors_path(Path(args.work), args.model, args.data)
    if not (cached / "docs.npz").is_file() or vectors_outdated(cached, args.model):
        raise SystemExit(
            f"{cached}/docs.npz is missing or older than {args.model}: "
            f"run python -m bench.sparse_quality --model {args.model} first"
        )
    docs = sparse.load_npz(cached / "docs.npz").tocsr()
    vocabulary = json.loads((cached / "vocabulary.json").read_text())
    data = open_beir(resolve_beir(args.data))
    corpus = data.corpus()
    encoder = load_encoder(args.model, device="cpu")
    queries = data.queries("test")
    query_texts = [queries[q] for q in sorted(data.qrels("test"))]
    q = encoder.encode_queries(query_texts)
    rows = run_collection(
        args.data,
        docs,
        q,
        vocabulary,
        args.repeats,
        ([document_text(d) for d in corpus], query_texts),
        not args.no_seismic,
        two_phase=args.two_phase,
    )
    if args.synthetic_docs:
        big = synthetic(docs, args.synthetic_docs, seed=0)
        n_lucene = min(args.lucene_synthetic_docs or args.synthetic_docs, args.synthetic_docs)
        full = n_lucene == args.synthetic_docs
        name = f"synthetic-{args.synthetic_docs}"
        rows += run_collection(name, big, q, vocabulary, args.repeats, None, not args.no_seismic, full)
        if not full:  # Lucene beside the embedded index on the first n_lucene documents
            rows += run_collection(
                f"synthetic-{n_lucene}", big[:n_lucene], q, vocabulary, args.repeats, None, False
            )
    print("| collection | engine | threads | QPS | ms/query | recall@10 vs exact | build s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        recall = f"{r['recall@10_vs_exact']:.4f}" if "recall@10_vs_exact" in r else "-"
        build = f"{r['build_seconds']:.0f}" if r.get("build_seconds") else "-"
        cells = [r["collection"], r["engine"], r["threads"], f"{r['qps']:.0f}", f"{r['ms_per_query']:.3f}"]
        print("| " + " | ".join(map(str, [*cells, recall, build])) + " |")
    ratios = same_run_ratios(rows)
    for line in ratios:
        print(line)
    if args.json:
        save_record(args.json, rows=rows, ratios=ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
