"""Remove a decoder's causal mask: a marker module that makes every attention layer bidirectional."""

from __future__ import annotations

from typing import Any, ClassVar

from sentence_transformers.base.modules import Module


def set_bidirectional(hf_model: Any, bidirectional: bool = True) -> int:
    """Make a transformers decoder attend in both directions (or restore causal attention).

    transformers builds a bidirectional mask when ``config.is_causal`` is False, but when a batch has
    no padding it passes no mask at all and the SDPA kernel falls back to each attention layer's own
    ``is_causal`` attribute, which decoders hard-code to True; both are set here.

    Returns:
        the number of attention layers changed.
    """
    hf_model.config.is_causal = not bidirectional
    changed = 0
    for module in hf_model.modules():
        if module is not hf_model and hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = not bidirectional
            changed += 1
    return changed


class BidirectionalAttention(Module):
    """Placed after a decoder's Transformer module, this module removes the causal mask when the model
    is built or loaded (NV-Embed trains its decoder this way); its forward pass changes nothing.

    A module rather than a flag so the saved folder says what it is: ``modules.json`` lists it, and
    loading the folder in sentence-transformers makes the decoder bidirectional again.

    Inputs / Outputs:
        the features, unchanged.

    Example:
        >>> from retrieval.pooling import build
        >>> model = build("Qwen/Qwen2-0.5B", {"type": "last_token"}, bidirectional=True)  # doctest: +SKIP
    """

    config_keys: ClassVar[list[str]] = []

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return features

    def on_model_ready(self, model: Any) -> None:
        for module in model:
            hf_model = getattr(module, "auto_model", None)
            if hf_model is not None:
                changed = set_bidirectional(hf_model)
                if not changed:
                    raise ValueError(
                        f"{type(hf_model).__name__} has no attention layer with an is_causal switch: "
                        "cannot remove its causal mask"
                    )

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)
