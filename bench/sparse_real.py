"""Sparse search on the real-text collection (:mod:`bench.sparse_corpus`) at 100k and 1M documents.

Every engine indexes the same documents and answers the same queries, one thread: the embedded index
(exact: the blocked kernel, and block-max MaxScore), pyseismic-lsr (approximate: built with each
``--seismic-build`` setting, searched with each ``--seismic-search`` setting, each with its recall@10
against the exact top 10), Lucene impact search over the same integer impacts (through pyserini, and
Lucene's own ``IndexSearcher``) and BM25 in Lucene over the documents' text (``--no-lucene`` leaves
Lucene out). For each: QPS over all queries (median of interleaved passes), p50/p99 latency of
single-query calls, build seconds, size on disk, and the peak resident memory that building and
searching added (this process and its children, sampled). The embedded index's top 10 is checked
against brute force (a sparse matrix product over the same integer impacts, ties to the lower document
number) for every query.

Run through ``python -m bench.sparse_search --model M --real-docs 100000 1000000``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import command_line, save_record, timed
from bench.sparse_corpus import collection, document_texts, query_texts
from bench.sparse_engines import (
    ExactTop,
    K,
    PeakRSS,
    Seismic,
    SeismicBuild,
    SeismicSearch,
    folder_mib,
    recall_at_k,
    recall_with_ties,
    seismic_dataset,
    ties_at_kth,
    two_phase_engine,
)
from bench.sparse_summary import EXACT, MAXSCORE, summary
from indexes.inverted import InvertedIndex
from indexes.lucene import LuceneImpactIndex
from indexes.lucene_bm25 import LuceneBM25Index
from indexes.lucene_engine import (
    bm25_queries,
    impact_queries,
    index_searcher,
    search_ids,
    two_phase_ids,
)
from indexes.two_phase import TwoPhase
from retrieval.encoders import load_encoder

logger = logging.getLogger("bench.sparse_real")
# pyseismic's search settings: the query cut and heap factor of its README's example, and of its
# guidelines' near-exact example (summaries not sorted); a lower heap factor prunes fewer blocks
SEISMIC_SEARCH = ["20:0.8", "10:0.8:unsorted"]


def measure(
    engines: dict[str, Callable[[Sequence[int]], Any]], n_queries: int, repeats: int, latency_queries: int
) -> dict[str, dict[str, Any]]:
    """QPS (median of interleaved passes over all queries), p50/p99 of single-query calls, the results
    of the last pass and the memory a full pass added, per engine (one thread)."""
    everything = list(range(n_queries))
    figures: dict[str, dict[str, Any]] = {name: {"passes": []} for name in engines}
    for name, fn in engines.items():  # the first pass: warm-up, results and memory
        with PeakRSS() as memory:
            figures[name]["results"] = fn(everything)
        figures[name]["search_peak_mib"] = memory.mib
    for _ in range(repeats):
        for name, fn in engines.items():
            seconds, _ = timed(lambda fn=fn: fn(everything))
            figures[name]["passes"].append(seconds)
    for name, fn in engines.items():
        single = []
        for i in range(min(latency_queries, n_queries)):
            start = time.perf_counter()
            fn([i])
            single.append(time.perf_counter() - start)
        figures[name]["qps"] = n_queries / statistics.median(figures[name]["passes"])
        figures[name]["p50_ms"] = 1000 * float(np.percentile(single, 50))
        figures[name]["p99_ms"] = 1000 * float(np.percentile(single, 99))
    return figures


def built(make: Callable[[], Any]) -> tuple[Any, float, float]:
    """``make()``'s result, its seconds and the peak memory it added (MiB)."""
    with PeakRSS() as memory:
        start = time.perf_counter()
        made = make()
        seconds = time.perf_counter() - start
    return made, seconds, memory.mib


def run_size(
    model: str,
    n_docs: int,
    n_queries: int,
    work: Path,
    repeats: int,
    latency_queries: int,
    seismic_builds: Sequence[SeismicBuild],
    seismic_searches: Sequence[SeismicSearch] = (),
    lucene: bool = True,
    query_model: str | None = None,
    two_phase: Sequence[TwoPhase] = (),
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the table for the first ``n_docs`` documents, and the exactness lines; pyseismic is built
    once per ``seismic_builds`` setting (one dataset filled for all) and searched with each of
    ``seismic_searches``; ``lucene=False`` leaves Lucene out (it indexes about 40k postings/s
    here: 50 minutes at 1M documents). ``query_model``: another inference-free model (same vocabulary)
    whose query table weights the queries, for example the same model pruned at another IDF.
    ``two_phase``: Lucene impact search in two phases at each setting too (``IndexSearcher``)."""
    docs = collection(model, n_docs, work)
    texts = document_texts(n_docs)
    questions = query_texts(n_queries)
    encoder = load_encoder(model, device="cpu")
    query_encoder = load_encoder(query_model, device="cpu") if query_model else encoder
    q = query_encoder.encode_queries(questions).tocsr()
    ids = [str(i) for i in range(n_docs)]
    name = f"real-{n_docs}"
    logger.info("%s: %.1f terms per document, %d queries", name, docs.nnz / n_docs, n_queries)
    build: dict[str, tuple[float, float, float]] = {}  # engine -> build seconds, peak MiB, size MiB

    def make_embedded() -> InvertedIndex:
        index = InvertedIndex(docs.shape[1], impact_scale=100, query_scale=100)
        index.add(docs, ids)
        index.search(q[:2], K, threads=1)  # postings and block layout built, kernels compiled
        return index

    embedded, seconds, peak = built(make_embedded)
    with tempfile.TemporaryDirectory(prefix="winnow-bench-") as tmp:
        size = folder_mib(embedded.save(Path(tmp) / "index"))
    engines: dict[str, Callable[[Sequence[int]], Any]] = {
        EXACT: lambda rows: embedded.search(q[rows], K, threads=1, strategy="blocked").ids,
        MAXSCORE: lambda rows: embedded.search(q[rows], K, threads=1, strategy="maxscore").ids,
    }
    build[EXACT] = build[MAXSCORE] = (seconds, peak, size)
    if seismic_builds:
        dataset, fill_seconds, fill_peak = built(lambda: seismic_dataset(docs))
        logger.info("%s: pyseismic dataset filled in %.0f s", name, fill_seconds)
    for setting in seismic_builds:
        threads = os.cpu_count() or 1
        index, seconds, peak = built(
            lambda b=setting, t=threads: Seismic(
                docs,
                t,
                n_postings=b.n_postings,
                summary_energy=b.summary_energy,
                centroid_fraction=b.centroid_fraction,
                max_fraction=b.max_fraction,
                dataset=dataset,
            )
        )
        seconds, peak = seconds + fill_seconds, max(peak, fill_peak)  # each build pays the filling
        with tempfile.TemporaryDirectory(prefix="winnow-bench-") as tmp:
            size = folder_mib(index.save(Path(tmp) / "seismic"))
        for search in seismic_searches:
            engine = f"pyseismic ({setting.label}; {search.label})"
            build[engine] = (seconds, peak, size)
            engines[engine] = lambda rows, s=index, o=search: s.search(
                q[rows], 1, heap_factor=o.heap_factor, query_cut=o.query_cut, sorted=o.sorted
            )
        logger.info("%s: pyseismic (%s) built in %.0f s", name, setting.label, seconds)

    def make_lucene() -> LuceneImpactIndex:
        index = LuceneImpactIndex(docs.shape[1], encoder.vocabulary, impact_scale=100, query_scale=100)
        index.add(docs, ids)
        index.search(q[:2], K, threads=1)
        return index

    def make_bm25() -> LuceneBM25Index:
        index = LuceneBM25Index()
        index.add_texts(texts, ids)
        index.search_texts(questions[:2], K, threads=1)
        return index

    if lucene:
        lucene_indexes = []
        for label, make in (("lucene impact", make_lucene), ("lucene bm25", make_bm25)):
            index, seconds, peak = built(make)
            logger.info("%s: %s index built in %.0f s", name, label, seconds)
            build[f"{label} (pyserini)"] = build[f"{label} (IndexSearcher)"] = (
                seconds,
                peak,
                folder_mib(index.build()),
            )
            lucene_indexes.append(index)
        impact_index, bm25 = lucene_indexes
        impact_searcher, impact_lucene = index_searcher(impact_index), impact_queries(impact_index, q)
        bm25_searcher, bm25_lucene = index_searcher(bm25), bm25_queries(questions)
        engines["lucene impact (pyserini)"] = lambda rows: impact_index.search(q[rows], K, threads=1).ids
        engines["lucene impact (IndexSearcher)"] = lambda rows: search_ids(
            impact_searcher, [impact_lucene[i] for i in rows], K
        )
        for setting in two_phase:
            engine, split = two_phase_engine(setting), impact_index.two_phase_queries(q, setting)
            build[engine], window = build["lucene impact (IndexSearcher)"], setting.window(K)
            engines[engine] = lambda rows, s=split, w=window: two_phase_ids(
                impact_searcher, [s[i] for i in rows], K, w
            )
        engines["lucene bm25 (pyserini)"] = lambda rows: (
            bm25.search_texts([questions[i] for i in rows], K, threads=1).ids
        )
        engines["lucene bm25 (IndexSearcher)"] = lambda rows: search_ids(
            bm25_searcher, [bm25_lucene[i] for i in rows], K
        )
    figures = measure(engines, n_queries, repeats, latency_queries)
    exact = figures[EXACT]["results"]
    exact_top = ExactTop.of(embedded, q, K)  # one pass over the collection serves every check below
    truth = exact_top.ids
    checks = [
        f"{name}: {engine} top 10 equal to brute force for "
        f"{sum(a == b for a, b in zip(figures[engine]['results'], truth, strict=True))}/{n_queries} queries"
        for engine in (EXACT, MAXSCORE)
    ]
    tied_queries, tied_places = ties_at_kth(exact_top)
    checks.append(
        f"{name}: {tied_queries}/{n_queries} queries tie across the 10th place, holding {tied_places} of "
        f"{K * n_queries} top-10 places (another tie order fills them differently)"
    )
    rows = []
    for engine, f in figures.items():
        seconds, peak, size = build[engine]
        rows.append(
            {
                "collection": name,
                "engine": engine,
                "qps": f["qps"],
                "p50_ms": f["p50_ms"],
                "p99_ms": f["p99_ms"],
                "recall@10_vs_exact": None if "bm25" in engine else recall_at_k(f["results"], exact),
                "recall@10_with_ties": None
                if "bm25" in engine
                else recall_with_ties(exact_top, f["results"]),
                "build_seconds": seconds,
                "build_peak_mib": peak,
                "size_mib": size,
                "search_peak_mib": f["search_peak_mib"],
            }
        )
    return rows, checks


def real_collections(args: argparse.Namespace) -> int:
    """The real-text collection at each ``--real-docs`` size (bench.sparse_real), one table."""
    rows, checks = [], []
    for n in args.real_docs:
        more, lines = run_size(
            args.model,
            n,
            args.queries,
            Path(args.corpus_work),
            args.repeats,
            args.latency_queries,
            [] if args.no_seismic else args.seismic_build,
            args.seismic_search,
            lucene=not args.no_lucene,
            query_model=args.query_model,
            two_phase=args.two_phase,
        )
        rows += more
        checks += lines
    print(f"# {command_line()}")
    print(
        "| collection | engine (1 thread) | QPS | p50 ms | p99 ms | recall@10 vs exact | same, ties counted "
        "| build s | build peak MiB | size MiB | search peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        recall = "-" if r["recall@10_vs_exact"] is None else f"{r['recall@10_vs_exact']:.4f}"
        ties = "-" if r["recall@10_with_ties"] is None else f"{r['recall@10_with_ties']:.4f}"
        print(
            f"| {r['collection']} | {r['engine']} | {r['qps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {recall} | {ties} | {r['build_seconds']:.0f} | {r['build_peak_mib']:.0f} "
            f"| {r['size_mib']:.0f} | {r['search_peak_mib']:.0f} |"
        )
    lines = summary(rows) + checks
    for line in lines:
        print(line)
    if args.json:
        save_record(args.json, rows=rows, ratios=lines)
    return 0
