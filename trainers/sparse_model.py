"""Build inference-free sparse models: an IDF table for queries, a SPLADE MLM for documents.

The model is a sentence-transformers ``SparseEncoder`` whose single module is a ``Router``:

- ``query`` route: ``SparseStaticEmbedding`` holding the IDF table (no transformer at search time);
- ``document`` route: ``Transformer(fill-mask)`` + ``SpladePooling("max")`` (``log(1 + relu(logits))``
  max-pooled over tokens).

Any BERT-style MLM is a start point (SPLADE-tiny offline); a sentence-transformers BERT without an MLM
head (all-MiniLM-L6-v2) gets a fresh head whose output layer is tied to its word embeddings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from trainers.idf import compute_idf

logger = logging.getLogger(__name__)


def document_encoder(base: str, max_length: int | None = None) -> list[Any]:
    """``[Transformer(fill-mask), SpladePooling("max")]`` from an MLM or a BERT encoder."""
    from sentence_transformers.sentence_transformer.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    mlm = Transformer(base, transformer_task="fill-mask", max_seq_length=max_length)
    model = mlm.auto_model
    vocab = int(model.config.vocab_size)
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        logger.info("%s: MLM output layer is not tied to the word embeddings (a trained MLM head)", base)
    return [mlm, SpladePooling("max", embedding_dimension=vocab)]


def inference_free_model(
    base: str, idf: np.ndarray, *, trainable_idf: bool = False, max_length: int | None = None
) -> Any:
    """A ``SparseEncoder`` with an IDF query table and the MLM document encoder of ``base``.

    Args:
        base: hub id or path of a BERT-style MLM (or a BERT sentence-transformer).
        idf: (vocab,) IDF table (see :func:`trainers.idf.compute_idf`).
        trainable_idf: let training update the query weights.
        max_length: document token limit (``None``: the base model's).
    """
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding

    documents = document_encoder(base, max_length)
    tokenizer = documents[0].tokenizer
    if len(idf) != len(tokenizer):
        raise ValueError(
            f"IDF table has {len(idf)} entries; the tokenizer of {base} has {len(tokenizer)} tokens"
        )
    query = SparseStaticEmbedding(
        tokenizer=tokenizer,
        weight=torch.as_tensor(np.asarray(idf, dtype=np.float32)),
        frozen=not trainable_idf,
    )
    router = Router.for_query_document(query_modules=[query], document_modules=documents)
    return SparseEncoder(modules=[router], similarity_fn_name="dot")


def idf_for(base: str, texts: Iterable[str]) -> np.ndarray:
    """IDF of ``base``'s tokenizer over ``texts``."""
    from transformers import AutoTokenizer

    return compute_idf(texts, AutoTokenizer.from_pretrained(base))


def _zero_query_weights(model: Any, select: Callable[[Any], Any], *, required: str | None = None) -> int:
    """Zero the IDF query-table entries that ``select(weights)`` marks, in place; returns how many.

    Without a query table the model is left alone (0), or, with ``required`` set, a ``ValueError``
    saying what needed the table is raised.
    """
    import torch

    from retrieval.sparse_encoder import query_module

    module = query_module(model)
    if module is None:
        if required:
            raise ValueError(f"{required} needs an inference-free model (an IDF query table)")
        return 0
    with torch.no_grad():
        chosen = select(module.weight)
        count = int(chosen.sum())
        if count:
            module.weight[chosen] = 0.0
    return count


def clamp_query_weights(model: Any) -> int:
    """Zero the negative entries of a trainable IDF query table, in place; returns how many there were.

    A trained table can push frequent tokens below zero; impact indexes (Lucene's included) need
    non-negative query weights, and a token that can only lower a score is better left out of the
    query. Applied after every optimizer step, this makes training projected gradient descent onto
    non-negative weights, so the model searched is the model trained.
    """
    return _zero_query_weights(model, lambda w: w < 0)


def prune(
    model: Any,
    doc_max_terms: int | None = None,
    query_min_idf: float | None = None,
    doc_min_contribution: float | None = None,
) -> dict[str, Any]:
    """Make an inference-free model cheaper to search, in place (every value is checked before any
    change).

    Args:
        model: an inference-free ``SparseEncoder`` (see :func:`inference_free_model`).
        doc_max_terms: keep each document's ``doc_max_terms`` heaviest terms (sentence-transformers'
            ``max_active_dims``, stored in the model's config, so every loader applies it; queries, which
            are far shorter, are unaffected in practice).
        query_min_idf: zero the IDF of tokens below this value, so such tokens (stop words: an IDF of 1.0
            is a token in about 37% of the documents) never enter a query and their long posting lists
            are never read.
        doc_min_contribution: drop the document terms that add less than this to any query's score
            (``w * IDF``, :func:`retrieval.sparse_encoder.drop_small_contributions`; after
            ``doc_max_terms``). Not a sentence-transformers setting, so ``model.save`` does not keep it:
            ``winnow models prune`` records it in the model folder's ``meta.json``, which Winnow's
            encoders and ONNX export read.

    Returns:
        What changed: ``doc_max_terms``, ``doc_min_contribution``, ``query_min_idf`` and the number of
        query tokens removed.

    Example:
        >>> prune(model, doc_max_terms=128, query_min_idf=1.0)
        {'doc_max_terms': 128, 'doc_min_contribution': None, 'query_min_idf': 1.0,
         'query_tokens_removed': 103}
    """
    from retrieval.sparse_encoder import query_module

    if doc_max_terms is not None and doc_max_terms <= 0:
        raise ValueError(f"doc_max_terms must be a positive integer; got {doc_max_terms}")
    if doc_min_contribution is not None:
        if not doc_min_contribution > 0:
            raise ValueError(f"doc_min_contribution must be positive; got {doc_min_contribution}")
        if query_module(model) is None:
            raise ValueError("doc_min_contribution needs an inference-free model (an IDF query table)")
    removed = 0
    if query_min_idf is not None:
        removed = _zero_query_weights(
            model, lambda w: (w > 0) & (w < query_min_idf), required="query_min_idf"
        )
    if doc_max_terms is not None:
        model.max_active_dims = int(doc_max_terms)
    logger.info(
        "pruned: documents keep %s terms adding at least %s, %d query tokens below IDF %s removed",
        doc_max_terms,
        doc_min_contribution,
        removed,
        query_min_idf,
    )
    return {
        "doc_max_terms": doc_max_terms,
        "doc_min_contribution": doc_min_contribution,
        "query_min_idf": query_min_idf,
        "query_tokens_removed": removed,
    }
