"""The ``sparse`` section of a recipe: how an inference-free sparse student is built, regularised and
saved (``kind: sparse``)::

    sparse:
      regularizer: idf_flops
      document_weight: 1.0e-3
      idf_corpora: [scifact, nfcorpus]
      lexical_prior: 1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class SparseConfig:
    """Inference-free sparse students (``kind: sparse``).

    Attributes:
        regularizer: document sparsity penalty: ``idf_flops`` (FLOPS of weights divided by IDF, so
            common tokens cost more), ``flops`` or ``l1``.
        document_weight: weight of the regulariser after warm-up.
        warmup_steps: steps over which that weight grows quadratically from 0 (``None``: a third of
            training, sentence-transformers' default).
        idf_corpora: BEIR data sets or corpus ``.jsonl`` files whose documents give the IDF table
            (``[]``: those of the training data).
        trainable_idf: let the query-side IDF weights train.
        idf_learning_rate: their learning rate (``None``: the model's).
        max_length: document tokens at inference (the saved model's limit); training uses
            ``training.max_length``.
        doc_max_terms: the saved model keeps each document's heaviest terms only (``None``: all);
            see :func:`trainers.sparse_model.prune`.
        query_min_idf: the saved model's IDF table drops tokens below this value (``None``: none).
        doc_min_contribution: the saved model's documents drop the terms that add less than this to any
            query's score (``w * IDF``; ``None``: none); recorded in ``meta.json``, which Winnow's
            encoders and ONNX export read (``winnow models prune --doc-min-contribution``).
        lexical_prior: weight of BM25's term weights added to every document vector (``None``: none).
    """

    regularizer: Literal["idf_flops", "flops", "l1"] = "idf_flops"
    document_weight: float = 1e-3
    warmup_steps: int | None = None
    idf_corpora: list[str] = field(default_factory=list)
    trainable_idf: bool = False
    idf_learning_rate: float | None = None
    max_length: int = 256
    doc_max_terms: int | None = None
    query_min_idf: float | None = None
    doc_min_contribution: float | None = None
    lexical_prior: float | None = None
