"""What OpenSearch's ``rank_features`` precision costs a sparse model: nDCG@10 at full float weights,
at Lucene FeatureField's 9 significant bits, and through Lucene FeatureField scoring itself.

The corpus is encoded once; the documents go through ``winnow export opensearch``'s bulk format
(``indexes.opensearch``), then into (a) the embedded inverted index at the exported weights, (b) the
same index with each weight cut to FeatureField precision, and (c) a Lucene index of FeatureFields
searched with summed linear queries (what a ``neural_sparse`` or ``rank_feature`` query computes on a
cluster). The table gives nDCG@10 and R@100 of each, and how many queries' top-10 (ids in order) (c)
shares with (a) and with (b).

    python -m experiments.feature_field_precision --model runs/models/splade-tiny-idf --data scifact \
        [--index-dir runs/scifact-splade-inverted]

``--index-dir`` takes the document vectors from a saved inverted index of the model (float weights)
instead of encoding the corpus again.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from scipy import sparse

from bench.common import command_line, save_record
from eval.beir import evaluate
from indexes.feature_field import FeatureFieldIndex, feature_precision
from indexes.inverted import InvertedIndex
from indexes.opensearch import bulk_matrix, write_bulk
from retrieval.corpus import document_text, iter_corpus, open_beir
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever
from retrieval.settings import configure_logging, data_root, resolve_beir

logger = logging.getLogger("experiments.feature_field_precision")


def saved_documents(directory: str) -> tuple[list[str], sparse.csr_matrix]:
    """Ids and the (documents x vocabulary) float matrix of a saved inverted index."""
    index = InvertedIndex.load(directory)
    if index.impact_scale is not None:
        raise SystemExit(f"{directory}: an impact index holds rounded weights; index with --index inverted")
    return index.ids, index.document_matrix()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a sparse model (inference-free or siamese)")
    parser.add_argument("--data", default="scifact", help="BEIR folder or data set name")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--index-dir", default=None, help="a saved inverted index of the model's documents")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    configure_logging()
    data = open_beir(resolve_beir(args.data, data_root(None)))
    encoder = load_encoder(args.model)
    if encoder.kind != "sparse":
        raise SystemExit(f"{args.model} is a {encoder.kind} model; this measures sparse models")
    if args.index_dir:
        ids, vectors = saved_documents(args.index_dir)
    else:
        docs = list(iter_corpus(data.root / "corpus.jsonl"))
        ids = [d["_id"] for d in docs]
        logger.info("encoding %d documents", len(docs))
        vectors = encoder.encode_documents([document_text(d) for d in docs], batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        bulk = Path(tmp) / "bulk.ndjson"
        write_bulk(bulk, vectors, ids, encoder.vocabulary, data.name)
        _, exported = bulk_matrix(bulk, encoder.vocabulary)
    cut = exported.copy()
    cut.data = feature_precision(cut.data)
    indexes = {
        "float weights (inverted)": InvertedIndex(encoder.dim),
        "FeatureField precision (inverted)": InvertedIndex(encoder.dim),
    }
    indexes["float weights (inverted)"].add(exported, ids)
    indexes["FeatureField precision (inverted)"].add(cut, ids)
    lucene = FeatureFieldIndex(encoder.vocabulary)
    lucene.add(exported, ids)
    indexes["Lucene FeatureField"] = lucene
    queries, _ = data.judged(args.split)
    query_vectors = encoder.encode_queries(list(queries.values()))
    tops = {name: index.search(query_vectors, 10).ids for name, index in indexes.items()}
    rows = []
    for name, index in indexes.items():
        result = evaluate(Retriever(encoder, index=index), data, args.split, top_k=100, build=False)
        rows.append({"index": name, **{m: round(v, 4) for m, v in result["metrics"].items()}})
    n = len(queries)
    same_float = sum(
        a == b for a, b in zip(tops["Lucene FeatureField"], tops["float weights (inverted)"], strict=True)
    )
    same_cut = sum(
        a == b
        for a, b in zip(tops["Lucene FeatureField"], tops["FeatureField precision (inverted)"], strict=True)
    )
    print(f"# {command_line()}\n{n} {data.name}/{args.split} queries, {args.model}\n")
    print("| index | nDCG@10 | R@100 |\n|---|---|---|")
    for row in rows:
        print(f"| {row['index']} | {row['ndcg@10']:.4f} | {row['recall@100']:.4f} |")
    print(
        f"\nLucene top-10 equal (ids in order): to float weights {same_float}/{n}, "
        f"to FeatureField precision {same_cut}/{n}"
    )
    if args.json:
        save_record(
            args.json,
            dataset=data.name,
            split=args.split,
            model=args.model,
            rows=rows,
            same_top10_float=same_float,
            same_top10_featurefield=same_cut,
            queries=n,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
