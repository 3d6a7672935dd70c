"""Pooling modules for sentence-transformers models, and decoder LLMs as encoders.

- :class:`LatentAttentionPooling` (NV-Embed) and :class:`MultiLayerPooling` (trainable pooling over all
  hidden layers): sentence-transformers modules, saved as their own ``config.json`` and
  ``model.safetensors``; ``mean``, ``cls`` and ``last_token`` are sentence-transformers' ``Pooling``.
- :class:`BidirectionalAttention`: removes a decoder's causal mask when the model is built or loaded.
- :func:`build`: a model with the pooling a recipe names; :func:`load_sentence_transformer`: loads a
  saved one (``SentenceTransformer(path, trust_remote_code=True)`` works too: the folder has no code).
"""

from __future__ import annotations

from retrieval.pooling.bidirectional import BidirectionalAttention, set_bidirectional
from retrieval.pooling.build import POOLING_TYPES, build, pooling_module
from retrieval.pooling.latent_attention import LatentAttentionPooling
from retrieval.pooling.loading import load_sentence_transformer, uses_winnow_modules
from retrieval.pooling.multi_layer import MultiLayerPooling

__all__ = [
    "POOLING_TYPES",
    "BidirectionalAttention",
    "LatentAttentionPooling",
    "MultiLayerPooling",
    "build",
    "load_sentence_transformer",
    "pooling_module",
    "set_bidirectional",
    "uses_winnow_modules",
]
