"""Inference-free sparse models against BM25 on several data sets, with per-query paired tests.

For each model and ``NAME:SPLIT`` the documents are encoded once (``bench.sparse_quality``'s cache)
and searched exactly with each of ``--query-weights``:

- ``model``: the model's own table (IDF over its training corpora, trained further by some recipes);
- ``corpus``: IDF over the collection searched (``winnow index --query-weights corpus``);
- ``rescaled``: the model's table times corpus IDF over the IDF of ``--reference`` corpora (those the
  model's table was computed on): keeps what training learned on top of the IDF;
- ``idf=NAME+NAME``: IDF over the named corpora (for example the table a model trained on other data
  would carry).

``--lexical-prior W ...`` scores the same documents again with a lexical prior of each weight added
(:mod:`retrieval.lexical_prior`; its average document length over ``--reference``), without encoding
them again: what ``winnow models lexical-prior --weight W`` would give. For a model that already has a
prior (PyTorch or ONNX), W replaces the weight of its own prior (same average length), to see how much
the trained weight matters. Models that prune their documents are refused (pruned terms are gone from
the cached vectors).

Every row is compared with BM25 (Lucene, ``winnow eval beir --model bm25``) query by query
(:func:`eval.significance.paired_comparison`). ``--pool`` averages the per-query scores of all models
(seeds of one recipe) into one row before the test.

    python -m experiments.sparse_transfer --model runs/models/if-untrained \\
        --data nfcorpus:dev scifact:train --query-weights model corpus rescaled
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import save_record
from bench.sparse_quality import TOP_K, encode
from eval.beir import held_out_queries
from eval.metrics import drop_self_hits, per_query_scores
from eval.report import render_markdown
from eval.significance import average_runs, paired_comparison
from indexes.inverted import InvertedIndex
from retrieval.bm25 import BM25Retriever
from retrieval.corpus import corpus_texts, document_text, open_beir
from retrieval.lexical_prior import LexicalPrior, average_length, document_route, encoder_prior, prior_vectors
from retrieval.query_weights import query_tokenizer, reweight
from retrieval.settings import resolve_beir
from retrieval.sparse_encoder import keep_top_terms
from trainers.idf import compute_idf

logger = logging.getLogger("experiments.sparse_transfer")
METRIC = "ndcg@10"


def corpus_idf(tokenizer, datasets: list[str]) -> np.ndarray:
    """IDF over the documents of ``datasets`` together (the table a model built on them carries)."""
    return compute_idf(corpus_texts(datasets), tokenizer)


def per_query(hits, query_ids: list[str], qrels) -> dict[str, float]:
    judged = {q: qrels[q] for q in query_ids}
    return per_query_scores(judged, drop_self_hits(hits.as_run(query_ids)), [METRIC])[METRIC]


def scored_queries(data, split: str, skip: int) -> list[str]:
    """The queries of ``split`` scored: all judged ones, or those after the first ``skip`` (the queries
    a model trained with ``data.max_queries=skip`` never saw)."""
    queries, qrels = data.queries(split), data.qrels(split)
    return held_out_queries(qrels, queries, skip) if skip else [q for q in qrels if q in queries]


def model_runs(
    model: str,
    name: str,
    split: str,
    skip: int,
    weights: list[str],
    *,
    work: Path,
    reference: list[str],
    doc_max_terms: int | None = None,
    priors: Sequence[float] = (),
    query_min_idf: Sequence[float] = (),
) -> dict:
    """``{query weights: {query_id: nDCG@10}}`` of one model on one data set and split (documents cut
    to their ``doc_max_terms`` heaviest terms when given: a fixed postings budget); with ``priors``,
    also ``{query weights}+prior{W}`` for the same documents with a lexical prior of weight W added
    (average length over ``reference``, as ``winnow models lexical-prior`` computes it), or with the
    model's own prior at weight W instead of its trained one; with ``query_min_idf``, also
    ``{query weights}|idf>=X`` for queries without the tokens whose weight in the model's table is
    below X (what ``winnow models prune --query-min-idf X`` removes)."""
    docs, ids, ctx = encode(model, name, work, batch_size=16)
    encoder, data = ctx["encoder"], ctx["data"]
    added, own = lexical_prior_vectors(encoder, data, reference, docs.shape[1]) if priors else (None, 0.0)
    variants = {"": docs} | prior_variants(docs, added, own, priors)
    if doc_max_terms is not None:
        variants = {key: keep_top_terms(matrix.tocsr(), doc_max_terms) for key, matrix in variants.items()}
    queries, qrels = data.queries(split), data.qrels(split)
    query_ids = scored_queries(data, split, skip)
    base = encoder.encode_queries([queries[i] for i in query_ids])
    table = np.asarray(encoder.query_weights, dtype=np.float32)
    tokenizer = query_tokenizer(encoder)
    searched = corpus_idf(tokenizer, [name]) if {"corpus", "rescaled"} & set(weights) else None
    query_sets = {}
    for label in weights:
        if label == "model":
            query_sets[label] = base
        elif label == "corpus":
            query_sets[label] = reweight(base, searched)
        elif label.startswith("idf="):
            query_sets[label] = reweight(base, corpus_idf(tokenizer, label.removeprefix("idf=").split("+")))
        else:  # rescaled
            rescale = table * searched / np.maximum(corpus_idf(tokenizer, reference), 1e-6)
            query_sets[label] = reweight(base, rescale)
    unpruned = list(query_sets.items())
    for floor in query_min_idf:
        query_sets |= {f"{label}|idf>={floor:g}": drop_tokens(q, table >= floor) for label, q in unpruned}
    out = {}
    for suffix, matrix in variants.items():
        index = InvertedIndex(matrix.shape[1])
        index.add(matrix.tocsr().astype(np.float32), ids)
        for label, q in query_sets.items():
            out[label + suffix] = per_query(index.search(q, TOP_K + 1), query_ids, qrels)
        logger.info("%s%s on %s: %.1f terms per document", model, suffix, name, matrix.nnz / matrix.shape[0])
    return out


def drop_tokens(queries: Any, kept: np.ndarray) -> Any:
    """``queries`` (CSR) without the columns where ``kept`` is False."""
    out = queries.tocsr(copy=True)
    out.data[~kept[out.indices]] = 0.0
    out.eliminate_zeros()
    return out


def prior_variants(docs: Any, added: Any, own: float, weights: Sequence[float]) -> dict[str, Any]:
    """``{"+prior{W}": documents}``: ``docs`` (which hold a prior of weight ``own``, 0 for none) with the
    weight-1 prior ``added`` at weight W instead."""
    return {f"+prior{w:g}": (docs + (w - own) * added).tocsr() for w in weights}


def lexical_prior_vectors(encoder, data, reference: list[str], dim: int) -> tuple[Any, float]:
    """The weight-1 lexical prior of every document of ``data`` for ``encoder`` (vectors of ``dim``
    dimensions), and the weight of the encoder's own prior (0.0 without one).

    A model with a prior (a PyTorch ``LexicalPrior`` or an ONNX export's ``meta.json``) gets its own
    prior's settings; a model without one gets a new prior over ``reference``, which needs the PyTorch
    model's document tokenizer and length."""
    if encoder.max_active_dims or encoder.doc_min_contribution:
        raise ValueError(
            f"--lexical-prior: {encoder.name} prunes its documents, so the cached vectors lack the terms "
            "pruning removed; score the model before pruning"
        )
    texts = [document_text(d) for d in data.corpus()]
    own = encoder_prior(encoder)
    if own is not None:
        prior, tokenizer, length = own
        return prior_vectors(prior, tokenizer, texts, length) * (1.0 / prior.weight), prior.weight
    model = getattr(encoder, "model", None)
    if model is None:
        raise ValueError(f"--lexical-prior: {encoder.name} is an ONNX model without a prior")
    documents = document_route(model)[0]
    length, tokenizer = documents.max_seq_length, documents.tokenizer
    avgdl = average_length(corpus_texts(reference), tokenizer, length)
    prior = LexicalPrior(dim, avgdl, skip_ids=tokenizer.all_special_ids)
    return prior_vectors(prior, tokenizer, texts, length), 0.0


def bm25_run(name: str, split: str, skip: int) -> dict[str, float]:
    data = resolve_beir(name)
    beir = open_beir(data)
    queries, qrels = beir.queries(split), beir.qrels(split)
    query_ids = scored_queries(beir, split, skip)
    hits = BM25Retriever().build(data / "corpus.jsonl").search([queries[i] for i in query_ids], k=TOP_K + 1)
    return per_query(hits, query_ids, qrels)


def parse_data(spec: str) -> tuple[str, str, int]:
    """``NAME[:SPLIT[:SKIP]]`` as (name, split, skip); the split defaults to test, skip to 0."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0] or (len(parts) == 3 and not parts[2].isdigit()):
        raise ValueError(f"--data {spec!r}: expected NAME:SPLIT[:SKIP] with SKIP a number of queries")
    return (
        parts[0],
        parts[1] if len(parts) > 1 and parts[1] else "test",
        int(parts[2]) if len(parts) == 3 else 0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="inference-free model (repeatable)")
    parser.add_argument(
        "--data",
        nargs="+",
        default=["nfcorpus:dev", "scifact:train"],
        help="NAME:SPLIT[:SKIP] (SKIP: score the queries after the first SKIP, which data.max_queries=SKIP "
        "left out of training)",
    )
    parser.add_argument(
        "--query-weights", nargs="+", default=["model", "corpus"], help="model, corpus, rescaled, idf=A+B"
    )
    parser.add_argument(
        "--reference", nargs="+", default=["scifact", "nfcorpus"], help="corpora the model's IDF came from"
    )
    parser.add_argument(
        "--doc-max-terms",
        type=int,
        default=None,
        help="keep each document's K heaviest terms (a postings budget)",
    )
    parser.add_argument(
        "--lexical-prior",
        nargs="+",
        type=float,
        default=[],
        help="also score the documents with a lexical prior of these weights added (its average length "
        "over --reference); for a model with a prior, these weights replace its own",
    )
    parser.add_argument(
        "--query-min-idf",
        nargs="+",
        type=float,
        default=[],
        help="also score queries without the tokens whose weight in the model's IDF table is below each "
        "value",
    )
    parser.add_argument("--pool", action="store_true", help="average the models' per-query scores (seeds)")
    parser.add_argument("--work", default="runs/bench/sparse-vectors", help="bench.sparse_quality's --work")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    for spec in args.data:
        try:
            parse_data(spec)
        except ValueError as exc:
            parser.error(str(exc))
    for label in args.query_weights:
        if label not in ("model", "corpus", "rescaled") and not (label.startswith("idf=") and label[4:]):
            parser.error(f"--query-weights {label!r}: expected model, corpus, rescaled or idf=NAME[+NAME...]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    rows = []
    for spec in args.data:
        name, split, skip = parse_data(spec)
        bm25 = bm25_run(name, split, skip)
        rows.append(
            {"model": "bm25", "data": spec, "query weights": "-", METRIC: np.mean(list(bm25.values()))}
        )
        runs = {
            m: model_runs(
                m,
                name,
                split,
                skip,
                args.query_weights,
                work=Path(args.work),
                reference=args.reference,
                doc_max_terms=args.doc_max_terms,
                priors=args.lexical_prior,
                query_min_idf=args.query_min_idf,
            )
            for m in args.model
        }
        floors = ["", *(f"|idf>={x:g}" for x in args.query_min_idf)]
        priors = ["", *(f"+prior{w:g}" for w in args.lexical_prior)]
        labels = [f"{q}{f}{s}" for s in priors for f in floors for q in args.query_weights]
        for label in labels:
            groups = (
                {f"{len(args.model)} pooled": average_runs([r[label] for r in runs.values()], list(runs))}
                if args.pool
                else {Path(m).name: r[label] for m, r in runs.items()}
            )
            for model, scores in groups.items():
                test = paired_comparison(bm25, scores, METRIC)
                rows.append(
                    {
                        "model": model,
                        "data": spec,
                        "query weights": label,
                        METRIC: test.other_mean,
                        "vs BM25": test.difference,
                        "p (randomisation)": test.p_randomization,
                        "wins/ties/losses": f"{test.wins}/{test.ties}/{test.losses}",
                    }
                )
                logger.info("%s", rows[-1])
    header = ["model", "data", "query weights", METRIC, "vs BM25", "p (randomisation)", "wins/ties/losses"]
    cells = [[r.get(h, "") if isinstance(r.get(h, ""), str) else f"{r[h]:.4f}" for h in header] for r in rows]
    print(render_markdown(header, cells))
    if args.json:
        save_record(args.json, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
