"""What pruning an inference-free model costs and saves, on train / dev queries (for choosing it).

Documents keep their ``k`` heaviest terms (``winnow models prune --doc-max-terms k``); queries drop
tokens whose IDF is below a threshold (``--query-min-idf``). For each setting the script reports
nDCG@10 / R@100 (exact search) and the postings a query reads (the sum of its terms' posting-list
lengths: the work of a term-at-a-time engine), relative to the unpruned model. Document vectors come
from ``bench.sparse_quality``'s cache, so the model's corpus is encoded once.

    python -m experiments.sparse_pruning --model runs/models/sparse-full --data scifact:train nfcorpus:dev
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.common import save_record
from bench.sparse_quality import encode, scores_of
from eval.report import render_markdown
from indexes.inverted import InvertedIndex
from retrieval.sparse_encoder import keep_top_terms

logger = logging.getLogger("experiments.sparse_pruning")


def postings_read(docs: sparse.csr_matrix, queries: sparse.csr_matrix) -> float:
    """Mean over queries of the summed posting-list lengths of the query's terms."""
    df = np.diff(docs.tocsc().indptr)
    terms = sparse.csr_matrix((np.ones(queries.nnz), queries.indices, queries.indptr), shape=queries.shape)
    return float((terms @ df).mean())


def measure(docs, ids, queries, query_ids, qrels) -> dict[str, float]:
    index = InvertedIndex(docs.shape[1])
    index.add(docs, ids)
    scores = scores_of(index.search(queries, 1001), query_ids, qrels)
    return {**scores, "postings": postings_read(docs, queries)}


def selection_data(model: str, spec: str, work: Path, report_test: bool = False) -> tuple:
    """(document vectors, their ids, encoded queries, query ids, qrels, the model's query table) of
    ``NAME:SPLIT``; test splits only with ``report_test`` (settings are chosen on train or dev queries)."""
    name, _, split = spec.partition(":")
    if split == "test" and not report_test:
        raise SystemExit(f"--data {spec}: choose settings on train or dev queries, not test")
    docs, ids, ctx = encode(model, name, work, batch_size=16)
    data = ctx["data"]
    queries, qrels = data.queries(split or "train"), data.qrels(split or "train")
    query_ids = [q for q in qrels if q in queries]
    encoder = ctx["encoder"]
    q = encoder.encode_queries([queries[i] for i in query_ids])
    return docs, ids, q, query_ids, qrels, encoder.query_weights


def selection_parser(description: str) -> argparse.ArgumentParser:
    """The options every selection script takes: ``--model``, ``--data``, ``--report-test``, ``--work``,
    ``--json`` (and logging set up)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, help="an inference-free sparse model directory")
    parser.add_argument("--data", nargs="+", default=["scifact:train"], help="NAME:SPLIT (not test)")
    parser.add_argument(
        "--report-test", action="store_true", help="allow test splits (to report a setting already chosen)"
    )
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench.sparse_quality's --work")
    parser.add_argument("--json", default=None)
    return parser


def main() -> int:
    parser = selection_parser(__doc__.splitlines()[0])
    parser.add_argument("--doc-max-terms", type=int, nargs="+", default=[192, 128, 96, 64])
    parser.add_argument("--query-min-idf", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5])
    parser.add_argument(
        "--combined", action="store_true", help="also every document and query setting together"
    )
    args = parser.parse_args()
    rows = []
    for spec in args.data:
        docs, ids, q, query_ids, qrels, _ = selection_data(
            args.model, spec, Path(args.work), args.report_test
        )
        base = measure(docs, ids, q, query_ids, qrels)
        settings = [("none", docs, q)]
        settings += [(f"doc top {k}", keep_top_terms(docs, k), q) for k in args.doc_max_terms]
        for threshold in args.query_min_idf:
            pruned_q = q.copy()
            pruned_q.data[pruned_q.data < threshold] = 0
            pruned_q.eliminate_zeros()
            settings.append((f"query IDF >= {threshold}", docs, pruned_q))
            if args.combined:  # both, as `winnow models prune --doc-max-terms K --query-min-idf X` does
                settings += [
                    (f"doc top {k}, query IDF >= {threshold}", keep_top_terms(docs, k), pruned_q)
                    for k in args.doc_max_terms
                ]
        for label, d, qq in settings:
            m = base if label == "none" else measure(d, ids, qq, query_ids, qrels)
            rows.append(
                {
                    "data": spec,
                    "pruning": label,
                    **m,
                    "postings_vs_none": m["postings"] / base["postings"],
                    "query_terms": qq.nnz / qq.shape[0],
                    "doc_terms": d.nnz / d.shape[0],
                }
            )
    header = [
        "data",
        "pruning",
        "nDCG@10",
        "R@100",
        "postings read / query",
        "vs none",
        "query terms",
        "doc terms",
    ]
    table = [
        [
            r["data"],
            r["pruning"],
            f"{r['ndcg@10']:.4f}",
            f"{r['recall@100']:.4f}",
            f"{r['postings']:.0f}",
            f"{r['postings_vs_none']:.3f}",
            f"{r['query_terms']:.1f}",
            f"{r['doc_terms']:.0f}",
        ]
        for r in rows
    ]
    print(render_markdown(header, table), end="")
    if args.json:
        save_record(args.json, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
