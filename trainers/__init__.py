"""Training recipes for dense and inference-free sparse retrievers, on sentence-transformers.

``winnow train CONFIG.yaml`` reads a recipe (:mod:`trainers.config`), builds the training set
(:mod:`trainers.data`, optional title queries), mines hard negatives (:mod:`trainers.mining`),
caches what frozen models compute (guide embeddings, teacher scores), and trains with
:func:`trainers.dense.train_dense` (GIST-guided contrastive loss, TAS-Balanced batches, teacher
distillation) or :func:`trainers.sparse.train_sparse` (an IDF query table with a SPLADE document
encoder and a FLOPS-style sparsity penalty). The result is a sentence-transformers model directory
that ``retrieval.load_encoder`` serves.

Example:
    >>> from retrieval.settings import data_root
    >>> from trainers.config import load_config
    >>> from trainers.dense import train_dense
    >>> config = load_config("configs/dense-mnrl.yaml", data_root=data_root(None))  # doctest: +SKIP
    >>> train_dense(config, "models/dense-mnrl")  # doctest: +SKIP
"""

from __future__ import annotations
