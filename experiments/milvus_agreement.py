"""Do Milvus Lite and Winnow's embedded indexes score a data set the same? Dense, sparse and hybrid.

Reads the document vectors of two saved folders (a dense ``faiss:Flat`` index and a sparse
``inverted`` index of the same corpus), loads them into Milvus Lite (a dense collection, a sparse
collection, and one hybrid collection with both fields), and scores the split's queries through each:
nDCG@10 and R@100 beside the embedded index's, plus Winnow's RRF of the two folders against Milvus's
RRFRanker at the same depth, and how many queries' top-10 ids agree. Nothing is encoded but the queries.

    python -m experiments.milvus_agreement --dense runs/scifact-minilm \\
        --sparse runs/scifact-splade-inverted --data scifact
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from bench.common import command_line, save_record
from eval.beir import evaluate
from indexes.faiss_index import FaissIndex
from indexes.inverted import InvertedIndex
from indexes.milvus import MilvusIndex
from indexes.milvus_hybrid import MilvusHybridIndex
from retrieval import Hybrid, MilvusHybrid, Retriever, load_retriever
from retrieval.corpus import open_beir
from retrieval.settings import configure_logging, data_root, resolve_beir

logger = logging.getLogger("experiments.milvus_agreement")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", required=True, help="a saved faiss:Flat index folder (dense model)")
    parser.add_argument("--sparse", required=True, help="a saved inverted index folder (sparse model)")
    parser.add_argument("--data", default="scifact", help="BEIR folder or data set name")
    parser.add_argument("--split", default="test")
    parser.add_argument("--depth", type=int, default=1000, help="candidates per member before RRF")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    configure_logging()
    data = open_beir(resolve_beir(args.data, data_root(None)))
    dense, sparse_ = load_retriever(args.dense), load_retriever(args.sparse)
    if not isinstance(dense.index, FaissIndex) or not isinstance(sparse_.index, InvertedIndex):
        raise SystemExit("--dense must be a faiss index folder and --sparse an inverted index folder")
    doc_vectors = dense.index.vectors()
    doc_terms = sparse_.index.document_matrix()
    if dense.index.ids != sparse_.index.ids:
        raise SystemExit("the two folders index different documents (or in another order)")
    ids = dense.index.ids
    milvus_dense = MilvusIndex(dense.encoder.dim, dense.index.metric)
    milvus_dense.add(doc_vectors, ids)
    milvus_sparse = MilvusIndex(sparse_.encoder.dim, sparse=True)
    milvus_sparse.add(doc_terms, ids)
    milvus_hybrid = MilvusHybridIndex(dense.encoder.dim, sparse_.encoder.dim, depth=args.depth)
    milvus_hybrid.add(doc_vectors, doc_terms, ids)
    systems = {
        "dense, faiss:Flat": dense,
        "dense, Milvus Lite FLAT": Retriever(dense.encoder, index=milvus_dense),
        "sparse, inverted": sparse_,
        "sparse, Milvus Lite SPARSE_INVERTED_INDEX": Retriever(sparse_.encoder, index=milvus_sparse),
        "hybrid RRF, Winnow": Hybrid([dense, sparse_], fusion="rrf", depth=args.depth),
        "hybrid RRF, Milvus RRFRanker": MilvusHybrid(dense.encoder, sparse_.encoder, milvus_hybrid),
    }
    queries, _ = data.judged(args.split)
    rows, tops = [], {}
    for name, system in systems.items():
        result = evaluate(system, data, args.split, top_k=100, build=False)
        tops[name] = system.search(list(queries.values()), k=10).ids
        rows.append({"system": name, **{m: round(v, 4) for m, v in result["metrics"].items()}})
    pairs = [(0, 1), (2, 3), (4, 5)]
    names = list(systems)
    agree = {
        f"{names[a]} / {names[b]}": int(
            sum(x == y for x, y in zip(tops[names[a]], tops[names[b]], strict=True))
        )
        for a, b in pairs
    }
    print(f"# {command_line()}\n{len(queries)} {data.name}/{args.split} queries\n")
    print("| system | nDCG@10 | R@100 |\n|---|---|---|")
    for row in rows:
        print(f"| {row['system']} | {row['ndcg@10']:.4f} | {row['recall@100']:.4f} |")
    print()
    for pair, same in agree.items():
        print(f"same top-10 ids in order, {pair}: {same}/{len(queries)}")
    if args.json:
        save_record(
            args.json, dataset=data.name, split=args.split, rows=rows, same_top10=agree, depth=args.depth
        )
    for index in (milvus_dense, milvus_sparse, milvus_hybrid):
        index.close()
    return 0 if np.isfinite([r["ndcg@10"] for r in rows]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
