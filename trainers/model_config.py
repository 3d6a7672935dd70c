"""The ``model`` section of a recipe: a hub id or path, or a mapping that also sets the pooling,
decoder options and query prompt of a dense student::

    model: sentence-transformers/all-MiniLM-L6-v2        # the model as it is

    model:
      name: sentence-transformers/all-MiniLM-L6-v2
      pooling: {type: latent_attention, latents: 512, heads: 8}
      pooling_learning_rate: 1.0e-4                       # the new pooling parameters only

    model:
      name: Qwen/Qwen2-0.5B                               # any causal LM: last-token pooling on EOS
      bidirectional: true                                 # remove the causal mask (NV-Embed)
      query_prompt: "Instruct: Given a claim, retrieve documents that support or refute it\\nQuery: "
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class PoolingConfig:
    """``model.pooling``: which pooling module and its options (``retrieval.pooling``).

    ``type``: ``mean``, ``cls``, ``last_token`` (sentence-transformers' Pooling), ``latent_attention``
    (NV-Embed; options ``latents``, ``heads``, ``mlp_ratio``, ``zero_init``, ``include_prompt``) or
    ``multi_layer`` (cross-attention over every hidden layer; options ``queries``, ``heads``,
    ``token``, ``mlp_ratio``, ``zero_init``). Options left unset take the module's defaults.
    """

    type: Literal["mean", "cls", "last_token", "latent_attention", "multi_layer"] = "mean"
    latents: int | None = None
    heads: int | None = None
    queries: int | None = None
    token: Literal["mean", "last"] | None = None
    mlp_ratio: float | None = None
    zero_init: bool | None = None
    include_prompt: bool | None = None

    def options(self) -> dict[str, Any]:
        """The spec :func:`retrieval.pooling.build` takes: the type and the options that are set."""
        fields = ("latents", "heads", "queries", "token", "mlp_ratio", "zero_init", "include_prompt")
        return {"type": self.type, **{k: getattr(self, k) for k in fields if getattr(self, k) is not None}}


@dataclass
class ModelConfig:
    """``model`` as a mapping (dense students only, except ``name``).

    Attributes:
        name: hub id or local path of the base model.
        pooling: replace the model's pooling (``None``: keep it; a bare transformers model gets mean
            pooling, a decoder last-token pooling).
        pooling_learning_rate: learning rate of the pooling module's parameters (``None``: the
            recipe's ``training.learning_rate``); new modules usually want a larger one.
        bidirectional: ``true`` removes a decoder's causal mask, for training and inference; ``false``
            restores it; ``None`` keeps the model's.
        padding_side: where a bare decoder's tokenizer pads (the EOS appended to every text is what
            last-token pooling reads either way); left padding shifts the positions of models with
            absolute position embeddings (GPT-2), so right is the default.
        query_prompt: instruction prefix of queries (the model's ``query`` prompt; documents get none).
    """

    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    pooling: PoolingConfig | None = None
    pooling_learning_rate: float | None = None
    bidirectional: bool | None = None
    padding_side: Literal["left", "right"] = "right"
    query_prompt: str | None = None

    @property
    def customised(self) -> bool:
        """Whether the recipe changes the model beyond its name."""
        return (
            self.pooling is not None
            or self.bidirectional is not None
            or self.query_prompt is not None
            or self.pooling_learning_rate is not None
            or self.padding_side != "right"
        )
