"""The sparse search bench's goals, as ratios of figures measured side by side in one run (one thread).

:func:`summary` reads the real-text collection's table (:mod:`bench.sparse_real`); :func:`same_run_ratios`
the SciFact and synthetic one (:mod:`bench.sparse_search`).
"""

from __future__ import annotations

from typing import Any

EXACT = "embedded, exact (blocked kernel)"
MAXSCORE = "embedded, exact (block-max MaxScore)"


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The bench's goals as ratios of figures from this run (one thread)."""
    out = []
    for name in sorted({r["collection"] for r in rows}, key=lambda c: int(c.split("-")[1])):
        by = {r["engine"]: r for r in rows if r["collection"] == name}
        exact = by[EXACT]["qps"]
        seismic = [r for e, r in by.items() if e.startswith("pyseismic") and r["recall@10_with_ties"] >= 0.95]
        if seismic:
            best = max(seismic, key=lambda r: r["qps"])
            out.append(
                f"{name}: embedded exact / fastest pyseismic with recall@10 >= 0.95, ties counted "
                f"({best['engine']}, {best['recall@10_with_ties']:.3f}): {exact / best['qps']:.2f}x QPS"
            )
        elif any(e.startswith("pyseismic") for e in by):
            out.append(f"{name}: no pyseismic setting reached recall@10 0.95")
        maxscore = by[MAXSCORE]["qps"]
        out.append(f"{name}: block-max MaxScore / blocked kernel QPS, 1 thread: {maxscore / exact:.2f}x")
        if "lucene impact (pyserini)" not in by:
            continue
        lucene = by["lucene impact (pyserini)"]["qps"]
        out.append(f"{name}: embedded exact / Lucene impact (pyserini): {exact / lucene:.1f}x QPS")
        impact_engines = [
            ("pyserini", "lucene impact (pyserini)"),
            ("IndexSearcher", "lucene impact (IndexSearcher)"),
        ]
        impact_engines += [("IndexSearcher", e) for e in by if "two-phase" in e]
        for path, engine in impact_engines:
            impact, bm25 = by[engine], by[f"lucene bm25 ({path})"]
            p50 = impact["p50_ms"] / bm25["p50_ms"]
            out.append(
                f"{name}: Lucene inference-free / BM25 latency ({engine}): p50 {p50:.2f}x, "
                f"mean {bm25['qps'] / impact['qps']:.2f}x"
            )
    return out


def same_run_ratios(rows: list[dict]) -> list[str]:
    """The goals of the sparse search bench as ratios of figures measured in this run (1 thread)."""
    ms = {(r["collection"], r["engine"]): r["ms_per_query"] for r in rows if r["threads"] == 1}
    out = []
    for collection in sorted({c for c, _ in ms}):
        pairs = [
            ("", "lucene impact (exact)"),
            (" (engine only)", "lucene impact (engine only)"),
            (" (IndexSearcher)", "lucene impact (IndexSearcher)"),
        ]
        pairs += [(" (IndexSearcher)", e) for c, e in ms if c == collection and "two-phase" in e]
        for suffix, impact_engine in pairs:
            impact, bm25 = ms.get((collection, impact_engine)), ms.get((collection, f"lucene bm25{suffix}"))
            if impact is not None and bm25 is not None:
                out.append(
                    f"{collection}: inference-free {impact_engine} / BM25 latency in Lucene{suffix}, "
                    f"1 thread: "
                    f"{impact / bm25:.2f}x ({impact:.3f} vs {bm25:.3f} ms)"
                )
        embedded, impact = (
            ms.get((collection, "embedded inverted (exact)")),
            ms.get((collection, "lucene impact (exact)")),
        )
        if embedded is not None and impact is not None:
            out.append(f"{collection}: embedded / Lucene impact QPS, 1 thread: {impact / embedded:.1f}x")
        touched = ms.get((collection, "embedded inverted, touched-list strategy only (exact)"))
        if embedded is not None and touched is not None:
            out.append(
                f"{collection}: embedded index with / without the blocked strategy, 1 thread: "
                f"{touched / embedded:.2f}x QPS ({embedded:.3f} vs {touched:.3f} ms)"
            )
    exact_ms = {
        (r["collection"], r["threads"]): r["ms_per_query"]
        for r in rows
        if r["engine"] == "embedded inverted (exact)"
    }
    for r in rows:  # pyseismic (approximate) vs the exact embedded index, same collection and threads
        if r["engine"].startswith("pyseismic"):
            exact = exact_ms[(r["collection"], r["threads"])]
            out.append(
                f"{r['collection']}: embedded (exact) / {r['engine']} QPS, {r['threads']} thread(s): "
                f"{r['ms_per_query'] / exact:.2f}x ({exact:.3f} vs {r['ms_per_query']:.3f} ms; "
                f"pyseismic recall@10 {r['recall@10_vs_exact']:.3f})"
            )
    return out
