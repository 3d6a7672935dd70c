"""Multi-layer trainable pooling as a sentence-transformers module."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from retrieval.pooling.common import SavedPooling, attention_block, last_token, masked_mean


class MultiLayerPooling(SavedPooling):
    """Multi-layer trainable pooling (Tang and Yang 2024, "Pooling and Attention: what are effective
    designs for LLM-based embedding models?"): a cross-attention network over the outputs of *all*
    hidden layers, not only the last.

    Each layer's output is first summarised per text (``token``: the mean over real tokens, or the last
    real token's state, the EOS of a decoder); a learned per-layer embedding is added, and ``queries``
    trainable query vectors attend to the stacked layer summaries (``heads`` heads), followed by an MLP
    (two linear layers, GELU); the query outputs are averaged. The result is added to the last layer's
    summary. With ``zero_init`` the branch's last linear layers start at zero, so the untrained module
    equals plain (mean or last-token) pooling of the last layer and learns from there.

    The transformer must return every layer (``output_hidden_states``; :func:`retrieval.pooling.build`
    sets it), which it passes on as ``all_layer_embeddings``.

    Args:
        embedding_dimension: the transformer's hidden size.
        num_layers: hidden-state tensors the transformer returns (its layers + 1 for the embeddings).
        queries: trainable query vectors.
        heads: attention heads; must divide ``embedding_dimension``.
        token: how one layer's token states become one vector: ``mean`` or ``last``.
        mlp_ratio: width of the MLP's hidden layer, as a multiple of ``embedding_dimension``.
        zero_init: start the trainable branch at zero.

    Inputs:
        ``all_layer_embeddings`` (a tuple of ``num_layers`` tensors (batch, tokens, dim)) and
        ``attention_mask`` (batch, tokens).

    Outputs:
        ``sentence_embedding`` (batch, dim).

    Example:
        >>> from retrieval.pooling import build
        >>> model = build("sentence-transformers/all-MiniLM-L6-v2", {"type": "multi_layer"})  # doctest: +SKIP
    """

    config_keys: ClassVar[list[str]] = [
        "embedding_dimension",
        "num_layers",
        "queries",
        "heads",
        "token",
        "mlp_ratio",
        "zero_init",
    ]

    def __init__(
        self,
        embedding_dimension: int,
        num_layers: int,
        *,
        queries: int = 1,
        heads: int = 8,
        token: Literal["mean", "last"] = "mean",
        mlp_ratio: float = 2.0,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if token not in ("mean", "last"):
            raise ValueError(f"multi-layer pooling: token must be 'mean' or 'last', got {token!r}")
        if num_layers < 1 or queries < 1:
            raise ValueError(
                f"multi-layer pooling: num_layers and queries must be >= 1, got {num_layers}, {queries}"
            )
        self.embedding_dimension = embedding_dimension
        self.num_layers = num_layers
        self.queries = queries
        self.heads = heads
        self.token = token
        self.mlp_ratio = mlp_ratio
        self.zero_init = zero_init
        scale = embedding_dimension**-0.5
        self.query_array = nn.Parameter(torch.randn(queries, embedding_dimension) * scale)
        self.layer_embeddings = nn.Parameter(torch.randn(num_layers, embedding_dimension) * scale)
        self.norm_layers = nn.LayerNorm(embedding_dimension)
        self.attention, self.norm_mlp, self.mlp = attention_block(
            embedding_dimension, heads, mlp_ratio, "multi-layer pooling"
        )
        if zero_init:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        layers = features.get("all_layer_embeddings")
        if layers is None:
            raise ValueError(
                "MultiLayerPooling needs every hidden layer: load the transformer with "
                "config_kwargs={'output_hidden_states': True} (retrieval.pooling.build does)"
            )
        if len(layers) != self.num_layers:
            raise ValueError(
                f"MultiLayerPooling expects {self.num_layers} hidden-state tensors, got {len(layers)}"
            )
        mask = features["attention_mask"]
        summarise = masked_mean if self.token == "mean" else last_token
        summaries = torch.stack([summarise(layer, mask) for layer in layers], dim=1)  # (batch, layers, dim)
        context = self.norm_layers(summaries + self.layer_embeddings.to(summaries.dtype))
        queries = self.query_array.to(summaries.dtype).unsqueeze(0).expand(summaries.shape[0], -1, -1)
        attended, _ = self.attention(queries, context, context, need_weights=False)
        branch = self.mlp(self.norm_mlp(attended)).mean(dim=1)
        last: Tensor = summaries[:, -1]
        features["sentence_embedding"] = last + branch
        return features
