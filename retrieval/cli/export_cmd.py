"""``winnow export onnx|opensearch``: an encoder to ONNX, or sparse document vectors for OpenSearch."""

from __future__ import annotations

import argparse

from indexes.two_phase import TwoPhase
from retrieval.cli.options import add_data_dir_option, add_option, resolve_corpus
from retrieval.onnx_export import OPTIMIZE_LEVELS, QUANTIZE_MODES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a model")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="export to ONNX for onnxruntime")
    onnx.add_argument(
        "--model",
        required=True,
        help="hub id or model directory (dense, a SPLADE MLM, or a CrossEncoder reranker)",
    )
    add_option(
        onnx,
        "--output",
        old=["--out"],
        required=True,
        help="directory to write (loads with retrieval.load_encoder)",
    )
    onnx.add_argument(
        "--optimize", choices=OPTIMIZE_LEVELS, default=None, help="onnxruntime graph optimisation"
    )
    onnx.add_argument("--quantize", choices=QUANTIZE_MODES, default=None, help="dynamic weight quantisation")
    onnx.add_argument("--opset", type=int, default=17)
    onnx.set_defaults(func=run_onnx)
    search = formats.add_parser(
        "opensearch", help="sparse document vectors as OpenSearch _bulk NDJSON (rank_features field)"
    )
    search.add_argument("--model", required=True, help="sparse model (SPLADE or inference-free)")
    search.add_argument(
        "--corpus", required=True, help="BEIR folder, corpus.jsonl, or a data set name under DATA_ROOT/beir/"
    )
    add_data_dir_option(search)
    add_option(
        search,
        "--output",
        old=["--out"],
        required=True,
        help="directory for bulk.ndjson, index.json, query.json",
    )
    search.add_argument("--index-name", default="winnow", help="OpenSearch index name (default winnow)")
    search.add_argument("--batch-size", type=int, default=16, help="texts per forward pass (default 16)")
    search.add_argument("--chunk-size", type=int, default=1024, help="documents encoded per step")
    search.add_argument(
        "--prune-ratio",
        type=float,
        default=TwoPhase.prune_ratio,
        help="search_pipeline.json: two-phase search's prune_ratio (default 0.4, OpenSearch's)",
    )
    search.add_argument(
        "--expansion-rate",
        type=float,
        default=TwoPhase.expansion_rate,
        help="search_pipeline.json: two-phase search's expansion_rate (default 5, OpenSearch's)",
    )
    search.set_defaults(func=run_opensearch)


def run_onnx(args: argparse.Namespace) -> int:
    from indexes.io import check_output
    from retrieval.onnx_export import export_onnx, is_cross_encoder

    check_output(args.output, "model")  # before loading and tracing the model

    if is_cross_encoder(args.model):
        from retrieval.onnx_cross import export_cross_encoder

        if args.optimize:
            raise ValueError(
                "--optimize applies to encoders; a cross-encoder exports plain or --quantize int8"
            )
        path = export_cross_encoder(args.model, args.output, quantize=args.quantize, opset=args.opset)
    else:
        path = export_onnx(
            args.model, args.output, optimize=args.optimize, quantize=args.quantize, opset=args.opset
        )
    print(f"exported {args.model} to {path}")
    return 0


def run_opensearch(args: argparse.Namespace) -> int:
    import itertools
    import json

    from indexes.io import atomic_directory, write_meta
    from indexes.opensearch import (
        index_body,
        neural_sparse_query,
        rank_feature_query,
        two_phase_pipeline,
        write_bulk,
    )
    from retrieval.corpus import document_text, iter_corpus
    from retrieval.encoders import load_encoder

    two_phase = TwoPhase(prune_ratio=args.prune_ratio, expansion_rate=args.expansion_rate)
    corpus = resolve_corpus(args.corpus, args.data_dir)
    encoder = load_encoder(args.model)
    if encoder.kind != "sparse":
        raise ValueError(
            f"{args.model} is a {encoder.kind} model; OpenSearch rank_features need a sparse one"
        )
    docs = iter_corpus(corpus)
    written = 0
    with atomic_directory(args.output) as tmp:
        while chunk := list(itertools.islice(docs, args.chunk_size)):
            texts = [document_text(d) for d in chunk]
            vectors = encoder.encode_documents(texts, batch_size=args.batch_size)
            ids = [d["_id"] for d in chunk]
            written += write_bulk(
                tmp / "bulk.ndjson",
                vectors,
                ids,
                encoder.vocabulary,
                args.index_name,
                texts=texts,
                append=True,
            )
        (tmp / "index.json").write_text(json.dumps(index_body(), indent=2), encoding="utf-8")
        query = encoder.encode_queries([texts[0][:200] if written else "example"])
        sample = neural_sparse_query(query, encoder.vocabulary)
        (tmp / "query.json").write_text(json.dumps(sample, indent=2), encoding="utf-8")
        plain = rank_feature_query(query, encoder.vocabulary)  # the same scores without the plugin
        (tmp / "query_rank_feature.json").write_text(json.dumps(plain, indent=2), encoding="utf-8")
        pipeline = json.dumps(two_phase_pipeline(two_phase), indent=2)
        (tmp / "search_pipeline.json").write_text(pipeline, encoding="utf-8")
        write_meta(tmp, "opensearch-bulk", encoder=args.model, index=args.index_name, n_documents=written)
    print(
        f"wrote {written} documents to {args.output}/bulk.ndjson; create the index with index.json "
        f"(PUT /{args.index_name}), load with POST /_bulk, query like query.json (two-phase: PUT "
        "/_search/pipeline/two-phase with search_pipeline.json, then search with ?search_pipeline=two-phase)"
    )
    return 0
