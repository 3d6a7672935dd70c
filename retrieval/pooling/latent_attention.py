"""NV-Embed latent-attention pooling as a sentence-transformers module."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from retrieval.pooling.common import SavedPooling, attention_block, masked_mean, pooling_mask


class LatentAttentionPooling(SavedPooling):
    """Latent-attention pooling (NV-Embed, Lee et al. 2024): every token state attends to a trainable
    latent array, goes through an MLP, and the results are mean-pooled over the real tokens.

    As in NV-Embed's implementation, the token states are the queries and the latent array is both the
    keys and the values (``r`` latents, ``heads`` heads); the attention and the MLP (two linear layers
    with GELU) are pre-norm residual blocks. With ``zero_init`` the last linear layer of both blocks
    starts at zero, so the untrained module equals mean pooling exactly and fine-tuning a mean-pooled
    model starts from where it is; the gradients reach those layers from the first step.

    Padding never changes an embedding: tokens attend only to the latents, never to each other, and
    the final mean uses the attention mask.

    Args:
        embedding_dimension: width of the token states (the transformer's hidden size).
        latents: number of latent vectors ``r`` (NV-Embed: 512).
        heads: attention heads (NV-Embed: 8); must divide ``embedding_dimension``.
        mlp_ratio: width of the MLP's hidden layer, as a multiple of ``embedding_dimension``.
        zero_init: start the residual branches at zero (the module then begins as mean pooling).
        include_prompt: ``False`` leaves the query prompt's tokens out of the final mean, as NV-Embed
            does with its instructions.

    Inputs:
        ``token_embeddings`` (batch, tokens, dim) and ``attention_mask`` (batch, tokens).

    Outputs:
        ``sentence_embedding`` (batch, dim).

    Example:
        >>> from sentence_transformers import SentenceTransformer
        >>> from sentence_transformers.models import Transformer
        >>> transformer = Transformer("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> pooling = LatentAttentionPooling(transformer.get_embedding_dimension(), latents=512, heads=8)
        >>> model = SentenceTransformer(modules=[transformer, pooling])  # doctest: +SKIP
    """

    config_keys: ClassVar[list[str]] = [
        "embedding_dimension",
        "latents",
        "heads",
        "mlp_ratio",
        "zero_init",
        "include_prompt",
    ]

    def __init__(
        self,
        embedding_dimension: int,
        *,
        latents: int = 512,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        zero_init: bool = True,
        include_prompt: bool = True,
    ) -> None:
        super().__init__()
        if latents < 1:
            raise ValueError(f"latent attention: latents must be >= 1, got {latents}")
        self.embedding_dimension = embedding_dimension
        self.latents = latents
        self.heads = heads
        self.mlp_ratio = mlp_ratio
        self.zero_init = zero_init
        self.include_prompt = include_prompt
        scale = embedding_dimension**-0.5
        self.latent_array = nn.Parameter(torch.randn(latents, embedding_dimension) * scale)
        self.norm_tokens = nn.LayerNorm(embedding_dimension)
        self.norm_latents = nn.LayerNorm(embedding_dimension)
        self.attention, self.norm_mlp, self.mlp = attention_block(
            embedding_dimension, heads, mlp_ratio, "latent attention"
        )
        if zero_init:
            for layer in (self.attention.out_proj, self.mlp[2]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        tokens: Tensor = features["token_embeddings"]
        latents = self.norm_latents(self.latent_array).to(tokens.dtype)
        latents = latents.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        attended, _ = self.attention(self.norm_tokens(tokens), latents, latents, need_weights=False)
        states = tokens + attended
        states = states + self.mlp(self.norm_mlp(states))
        features["sentence_embedding"] = masked_mean(states, pooling_mask(features, self.include_prompt))
        return features
