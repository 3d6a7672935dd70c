"""Sparse models on BEIR test splits through both inverted indexes, beside BM25 (Lucene).

For every model and data set the corpus is encoded once; the same document and query vectors then go
to the embedded index (float weights, and integer impacts) and to a Lucene impact index built from the
same impacts. The script reports nDCG@10 / R@100 of each, whether the embedded index and Lucene return
the same top-10 for every query, and the largest score difference between them. The impact index's top 10,
by its default kernels and by block-max MaxScore (blocks of 256 documents, so that pruning engages on a
small collection), is checked against brute force (``same top-10`` of those rows).

    python -m bench.sparse_quality --model runs/models/splade-tiny-idf --model runs/models/sparse-full \\
        --datasets scifact nfcorpus --json runs/bench/sparse_quality.json

Encoded vectors are kept under ``--work`` (keyed by model directory and data set) for
``bench.sparse_search`` and ``experiments.sparse_pruning``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.common import log_progress, save_record
from bench.sparse_engines import brute_force_top
from eval.beir import held_out_queries
from eval.metrics import drop_self_hits, evaluate_run
from indexes.base import Hits
from indexes.inverted import InvertedIndex
from retrieval.bm25 import BM25Retriever
from retrieval.corpus import document_text, open_beir
from retrieval.encoders import load_encoder
from retrieval.settings import resolve_beir

logger = logging.getLogger("bench.sparse_quality")
METRICS = ("ndcg@10", "recall@100")
TOP_K = 1000
MAXSCORE_BLOCK = 256  # small blocks, so that block-max MaxScore prunes on a collection of a few thousand
FINGERPRINT_FILE = "model_fingerprint.txt"  # beside cached vectors: which model version encoded them


def vectors_path(work: Path, model: str, dataset: str, max_length: int | None = None) -> Path:
    """The cache folder of ``model``'s document vectors of ``dataset`` (read at ``max_length`` tokens)."""
    key = hashlib.sha1(str(Path(model).resolve() if Path(model).exists() else model).encode()).hexdigest()[
        :10
    ]
    length = f"-len{max_length}" if max_length else ""
    return work / f"{Path(model).name}-{key}-{dataset}{length}"


def model_fingerprint(model: str) -> str:
    """Changes when a model directory is rewritten (its meta.json carries the creation time)."""
    meta = Path(model) / "meta.json"
    return hashlib.sha1(meta.read_bytes()).hexdigest() if meta.is_file() else f"hub:{model}"


def vectors_outdated(path: Path, model: str) -> bool:
    """Whether the vectors cached in ``path`` were encoded by an earlier version of ``model``."""
    stamp = path / FINGERPRINT_FILE
    return stamp.is_file() and stamp.read_text() != model_fingerprint(model)


def encode(
    model: str, dataset: str, work: Path, batch_size: int, max_length: int | None = None
) -> tuple[sparse.csr_matrix, list[str], dict]:
    """Document vectors (cached), ids, and the encoder (``max_length``: document tokens read, default the
    model's own limit)."""
    encoder = load_encoder(model, device="cpu", max_length=max_length)
    data = open_beir(resolve_beir(dataset))
    docs = data.corpus()
    ids = [d["_id"] for d in docs]
    path = vectors_path(work, model, dataset, max_length)
    if vectors_outdated(path, model):
        logger.info("%s/%s: the model changed since %s was encoded; encoding again", model, dataset, path)
        (path / "docs.npz").unlink(missing_ok=True)
    if (path / "docs.npz").is_file():
        matrix = sparse.load_npz(path / "docs.npz").tocsr()
        logger.info("%s/%s: cached document vectors %s", model, dataset, path)
    else:
        start = time.perf_counter()
        matrix = encoder.encode_documents(
            [document_text(d) for d in docs], batch_size=batch_size, progress=True
        )
        logger.info(
            "%s/%s: encoded %d documents in %.0f s", model, dataset, len(docs), time.perf_counter() - start
        )
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "docs.tmp.npz"
        sparse.save_npz(tmp, matrix)
        tmp.replace(path / "docs.npz")
        (path / "ids.json").write_text(json.dumps(ids))
        (path / "vocabulary.json").write_text(json.dumps(encoder.vocabulary))
        (path / FINGERPRINT_FILE).write_text(model_fingerprint(model))
    return matrix, ids, {"encoder": encoder, "data": data}


def scores_of(hits: Hits, query_ids: list[str], qrels) -> dict[str, float]:
    """Metrics averaged over ``query_ids`` (the qrels of other queries are left out)."""
    judged = {q: qrels[q] for q in query_ids}
    return evaluate_run(judged, drop_self_hits(hits.as_run(query_ids)), METRICS)


def same_as(hits: Hits, truth: list[list[str]]) -> str:
    """How many queries' top 10 equal the brute-force top 10, as ``n/total``."""
    same = sum(h[:10] == t for h, t in zip(hits.ids, truth, strict=True))
    return f"{same}/{len(truth)}"


def compare_top10(a: Hits, b: Hits) -> tuple[int, float]:
    """(queries whose top-10 ids are identical, the largest top-10 score difference)."""
    same = sum(x[:10] == y[:10] for x, y in zip(a.ids, b.ids, strict=True))
    diff = np.abs(np.nan_to_num(a.scores[:, :10], neginf=0) - np.nan_to_num(b.scores[:, :10], neginf=0))
    return same, float(diff.max()) if diff.size else 0.0


def evaluate_model(
    model: str,
    dataset: str,
    work: Path,
    batch_size: int,
    lucene: bool,
    split: str = "test",
    skip_queries: int = 0,
    max_length: int | None = None,
) -> list[dict]:
    """Table rows of one model on one data set: the float and impact inverted indexes, and Lucene."""
    matrix, ids, ctx = encode(model, dataset, work, batch_size, max_length)
    encoder, data = ctx["encoder"], ctx["data"]
    queries, qrels = data.queries(split), data.qrels(split)
    if skip_queries:
        query_ids = held_out_queries(qrels, queries, skip_queries)
    else:
        query_ids = [q for q in qrels if q in queries]
    q = encoder.encode_queries([queries[i] for i in query_ids])
    rows = []
    base = {
        "model": model,
        "max_length": getattr(
            getattr(encoder, "model", None), "max_seq_length", getattr(encoder, "max_length", None)
        ),
        "dataset": dataset,
        "n_queries": len(query_ids),
        "doc_terms": round(matrix.nnz / matrix.shape[0], 1),
        "query_terms": round(q.nnz / q.shape[0], 1),
    }
    float_index = InvertedIndex(matrix.shape[1])
    float_index.add(matrix, ids)
    rows.append(
        {**base, "index": "inverted (float)", **scores_of(float_index.search(q, TOP_K + 1), query_ids, qrels)}
    )
    impact = InvertedIndex(matrix.shape[1], impact_scale=100, query_scale=100)
    impact.add(matrix, ids)
    impact_hits = impact.search(q, TOP_K + 1)
    truth = brute_force_top(impact, q, 10)
    rows.append(
        {
            **base,
            "index": "inverted (impact x100)",
            **scores_of(impact_hits, query_ids, qrels),
            "same_top10": same_as(impact_hits, truth),
        }
    )
    pruned = impact.search(q, TOP_K + 1, strategy="maxscore", block=MAXSCORE_BLOCK)
    rows.append(
        {
            **base,
            "index": f"inverted (impact x100), block-max MaxScore, blocks of {MAXSCORE_BLOCK}",
            **scores_of(pruned, query_ids, qrels),
            "same_top10": same_as(pruned, truth),
            "max_score_diff": compare_top10(impact_hits, pruned)[1],
        }
    )
    if lucene:
        from indexes.lucene import LuceneImpactIndex

        index = LuceneImpactIndex(matrix.shape[1], encoder.vocabulary, impact_scale=100, query_scale=100)
        index.add(matrix, ids)
        lucene_hits = index.search(q, TOP_K + 1)
        same, diff = compare_top10(impact_hits, lucene_hits)
        rows.append(
            {
                **base,
                "index": "lucene impact (x100)",
                **scores_of(lucene_hits, query_ids, qrels),
                "same_top10": f"{same}/{len(query_ids)}",
                "max_score_diff": diff,
            }
        )
    return rows


def bm25_row(dataset: str, split: str = "test") -> dict:
    """The BM25 (Lucene) row of ``dataset``."""
    data = open_beir(resolve_beir(dataset))
    queries, qrels = data.queries(split), data.qrels(split)
    query_ids = [q for q in queries if q in qrels]
    retriever = BM25Retriever().build(data.root / "corpus.jsonl")
    hits = retriever.search([queries[i] for i in query_ids], k=TOP_K + 1)
    return {
        "model": "bm25",
        "dataset": dataset,
        "n_queries": len(query_ids),
        "index": retriever.index_spec,
        **scores_of(hits, query_ids, qrels),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="sparse model (repeatable)")
    parser.add_argument("--datasets", nargs="+", default=["scifact"])
    parser.add_argument("--split", default="test", help="qrels split (dev for model selection)")
    parser.add_argument(
        "--skip-queries",
        type=int,
        default=0,
        help="score only the queries after the first N of the qrels file (a held-out part of a train split "
        "whose first N queries trained the model: data.max_queries=N)",
    )
    parser.add_argument("--work", default="runs/bench/sparse-vectors")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--max-length", type=int, default=None, help="document tokens read (default: each model's own limit)"
    )
    parser.add_argument("--no-lucene", action="store_true")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    log_progress()
    rows = []
    for dataset in args.datasets:
        if not args.no_lucene:
            rows.append(bm25_row(dataset, args.split))
        for model in args.model:
            rows.extend(
                evaluate_model(
                    model,
                    dataset,
                    Path(args.work),
                    args.batch_size,
                    not args.no_lucene,
                    args.split,
                    args.skip_queries,
                    args.max_length,
                )
            )
    header = ("data set", "model", "index", "nDCG@10", "R@100", "doc terms", "same top-10", "max score diff")
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['model']} | {r['index']} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | "
            f"{r.get('doc_terms', '-')} | {r.get('same_top10', '-')} | {r.get('max_score_diff', '-')} |"
        )
    if args.json:
        save_record(args.json, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
