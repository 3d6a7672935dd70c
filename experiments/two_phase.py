"""What two-phase search (:class:`indexes.two_phase.TwoPhase`) and document pruning cost in quality and
save in postings.

For each data set (train or dev queries) and document pruning (``winnow models prune --doc-max-terms``
and ``--doc-min-contribution``), the exact top 10 of the full query is compared with two-phase search
at every ``prune_ratio`` and ``expansion_rate``: nDCG@10, how many queries keep the exact top 10, and
the postings a query reads (the sum of its tokens' posting-list lengths, the work a term-at-a-time
engine does; for two phases, the first one's) relative to the full query on the documents as encoded.
The first phase runs on the embedded exact index and the candidates are rescored with the full query,
as Lucene's ``QueryRescorer`` does. Document vectors come from ``bench.sparse_quality``'s cache.

    python -m experiments.two_phase --model runs/models/if-untrained --data scifact:train nfcorpus:dev \
        --doc-max-terms 0 128 --doc-min-contribution 0 1.5 --prune-ratio 0.3 0.4 --expansion-rate 5 10
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.common import save_record
from bench.sparse_quality import scores_of
from eval.report import render_markdown
from experiments.sparse_pruning import postings_read, selection_data, selection_parser
from indexes.base import Hits
from indexes.inverted import InvertedIndex
from indexes.two_phase import TwoPhase
from retrieval.sparse_encoder import drop_small_contributions, keep_top_terms

logger = logging.getLogger("experiments.two_phase")
K = 10


def embedded_two_phase_hits(
    index: InvertedIndex, docs: sparse.csr_matrix, queries: sparse.csr_matrix, setting: TwoPhase
) -> Hits:
    """Top ``K`` of every query by two-phase search: the heavy tokens' window rescored with the full query."""
    heavy, _ = setting.split(queries)
    first = index.search(heavy, setting.window(K))
    row_of = {doc_id: i for i, doc_id in enumerate(index.ids)}
    ids, scores = [], np.full((queries.shape[0], K), -np.inf, dtype=np.float32)
    for i, found in enumerate(first.ids):
        rows = np.asarray([row_of[d] for d in found], dtype=np.int64)
        full = np.asarray((docs[rows] @ queries[i].T).todense()).ravel() if len(rows) else np.zeros(0)
        order = np.lexsort((rows, -full))[:K]  # score, then the lower document number
        ids.append([found[j] for j in order])
        scores[i, : len(order)] = full[order]
    return Hits(ids=ids, scores=scores)


def main() -> int:
    parser = selection_parser(__doc__.splitlines()[0])
    parser.add_argument("--doc-max-terms", type=int, nargs="+", default=[0], help="0: documents as encoded")
    parser.add_argument(
        "--doc-min-contribution", type=float, nargs="+", default=[0.0], help="then this floor (0: none)"
    )
    parser.add_argument("--prune-ratio", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    parser.add_argument("--expansion-rate", type=float, nargs="+", default=[5.0])
    parser.set_defaults(data=["scifact:train", "nfcorpus:dev"])
    args = parser.parse_args()
    rows = []
    for spec in args.data:
        encoded, ids, q, query_ids, qrels, idf = selection_data(
            args.model, spec, Path(args.work), args.report_test
        )
        unpruned = postings_read(encoded, q)  # the full query on the documents as encoded
        for budget, floor in itertools.product(args.doc_max_terms, args.doc_min_contribution):
            docs = keep_top_terms(encoded, budget) if budget else encoded
            docs = drop_small_contributions(docs, idf, floor) if floor else docs
            index = InvertedIndex(docs.shape[1])
            index.add(docs, ids)
            exact = index.search(q, K)
            judged = {
                "data": spec,
                "budget": budget,
                "floor": floor,
                "docs": docs,
                "exact": exact,
                "qids": query_ids,
                "qrels": qrels,
            }
            rows.append(_row(judged, "one phase (exact)", exact, postings_read(docs, q) / unpruned))
            for ratio in args.prune_ratio:
                for rate in args.expansion_rate:
                    setting = TwoPhase(prune_ratio=ratio, expansion_rate=rate)
                    hits = embedded_two_phase_hits(index, docs, q, setting)
                    share = postings_read(docs, setting.split(q)[0]) / unpruned
                    label = f"prune_ratio {ratio:g}, expansion_rate {rate:g}"
                    rows.append(_row(judged, label, hits, share))
    header = [
        "data",
        "documents",
        "doc terms",
        "search",
        "nDCG@10",
        "exact top 10 kept",
        "postings read (first phase) vs unpruned",
    ]
    table = [
        [
            r["data"],
            _documents(r["doc_max_terms"], r["doc_min_contribution"]),
            f"{r['doc_terms']:.0f}",
            r["search"],
            f"{r['ndcg@10']:.4f}",
            r["same_top10"],
            f"{r['postings_share']:.3f}",
        ]
        for r in rows
    ]
    print(render_markdown(header, table), end="")
    if args.json:
        save_record(args.json, rows=rows)
    return 0


def _documents(budget: int, floor: float) -> str:
    parts = ([f"top {budget}"] if budget else []) + ([f"contribution >= {floor:g}"] if floor else [])
    return ", ".join(parts) or "as encoded"


def _row(judged: dict, label: str, hits: Hits, share: float) -> dict:
    """One table row: ``hits`` scored on ``judged``'s queries and compared with its exact top 10."""
    exact, docs = judged["exact"], judged["docs"]
    same = sum(a[:K] == b[:K] for a, b in zip(hits.ids, exact.ids, strict=True))
    return {
        "data": judged["data"],
        "doc_max_terms": judged["budget"],
        "doc_min_contribution": judged["floor"],
        "doc_terms": docs.nnz / docs.shape[0],
        "search": label,
        "ndcg@10": scores_of(hits, judged["qids"], judged["qrels"])["ndcg@10"],
        "same_top10": f"{same}/{len(exact.ids)}",
        "postings_share": share,
    }


if __name__ == "__main__":
    raise SystemExit(main())
