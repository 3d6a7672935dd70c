"""``winnow index``: encode a corpus (or index its text with BM25) and save a searchable index directory."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path
from typing import Any

from indexes.io import check_output
from indexes.lock import output_lock
from retrieval.bm25 import BM25_MODEL, BM25Retriever
from retrieval.cli.hybrid_options import (
    add_hybrid_options,
    add_rerank_options,
    check_rerank_args,
    hybrid_config,
    hybrid_retriever,
    is_hybrid_request,
    with_reranker,
)
from retrieval.cli.options import (
    add_data_dir_option,
    add_encoder_options,
    add_index_options,
    check_milvus_uri,
    check_query_weights,
    model_retriever,
    parse_search_params,
    resolve_corpus,
)
from retrieval.corpus import iter_corpus
from retrieval.retriever import Retriever, parse_index_spec

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("index", help="encode a corpus and write an index directory")
    system = parser.add_mutually_exclusive_group(required=True)
    system.add_argument("--model", help="hub id or model directory, or bm25 (Lucene BM25 through pyserini)")
    add_hybrid_options(parser, system)
    parser.add_argument(
        "--corpus", required=True, help="BEIR folder, corpus.jsonl, or a data set name under DATA_ROOT/beir/"
    )
    add_data_dir_option(parser)
    parser.add_argument("--output", required=True, help="index directory to write")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="keep document embeddings here (memory-mapped) so an interrupted run resumes",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="encode on Ray (dense models): shards over Ray Data actors, resumable per shard; ADDRESS "
        "is a cluster (auto, ray://host:10001); --ray alone starts Ray on this machine",
    )
    parser.add_argument(
        "--ray-shard-size", type=int, default=50_000, help="documents per Ray shard (default 50000)"
    )
    add_encoder_options(parser)
    add_index_options(parser)
    add_rerank_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output(args.output, "index")  # never replace a model or other data with an index
    with output_lock(args.output):  # a second writer of the same folder fails now, before any work
        return build_index(args)


def ray_build(args: argparse.Namespace, retriever: Any, corpus: Path) -> Path:
    """``--ray``: encode on Ray into shards (``--cache-dir``, else ``OUTPUT.ray-shards``) and index them."""
    from retrieval.ray_encode import ray_embed_corpus

    if not isinstance(retriever, Retriever) or retriever.encoder.kind != "dense":
        raise ValueError("--ray encodes with a dense model (--model MODEL); drop --ray for this index")
    shards = Path(args.cache_dir) if args.cache_dir else Path(f"{args.output}.ray-shards")
    embeddings = ray_embed_corpus(
        args.model,
        corpus,
        shards,
        address=None if args.ray == "local" else args.ray,
        shard_size=args.ray_shard_size,
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    retriever.add_embeddings(embeddings)
    return shards


def build_index(args: argparse.Namespace) -> int:
    params = parse_search_params(args.search_param)  # check the cheap inputs before loading a model
    check_milvus_uri(args)
    check_query_weights(args)
    if args.index:
        parse_index_spec(args.index)
    corpus = resolve_corpus(args.corpus, args.data_dir)
    n_docs = sum(1 for _ in iter_corpus(corpus))  # a bad line fails now, before a model loads
    logger.info("%s: %d documents", corpus, n_docs)
    check_rerank_args(args)
    if args.ray is not None and (args.model in (None, BM25_MODEL)):
        raise ValueError("--ray encodes with a dense model (--model MODEL); drop --ray for this index")
    config = hybrid_config(args)  # member specs and fusion flags checked before a model loads
    if is_hybrid_request(args):
        retriever = hybrid_retriever(args, config, max_length=args.max_length, params=params)
    elif args.model == BM25_MODEL:
        if args.index or params:
            raise ValueError("--model bm25 builds its own Lucene index; drop --index and --search-param")
        retriever = BM25Retriever()
    else:
        retriever = model_retriever(args, params)
    if args.ray is not None:
        shards = ray_build(args, retriever, corpus)
    retriever = with_reranker(args, retriever, documents=corpus if args.ray is not None else None)
    if args.ray is None:
        retriever.build(corpus, batch_size=args.batch_size, cache_dir=args.cache_dir)
    path = retriever.save(args.output)
    if args.ray is not None and not args.cache_dir:
        shutil.rmtree(shards, ignore_errors=True)  # kept only for resuming this run
    print(
        f"indexed {len(retriever.index)} documents with {retriever.name} ({retriever.index_spec}) into {path}"
    )
    return 0
