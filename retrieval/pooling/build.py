"""``build(name, pooling, ...)``: a sentence-transformers model with the pooling a recipe names."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sentence_transformers.sentence_transformer.modules import Pooling

from retrieval.pooling.bidirectional import BidirectionalAttention, set_bidirectional
from retrieval.pooling.decoder import is_decoder, prepare_decoder_tokenizer
from retrieval.pooling.latent_attention import LatentAttentionPooling
from retrieval.pooling.loading import load_sentence_transformer, model_folder
from retrieval.pooling.multi_layer import MultiLayerPooling

logger = logging.getLogger(__name__)

POOLING_CLASSES = (Pooling, LatentAttentionPooling, MultiLayerPooling)

POOLING_TYPES = ("mean", "cls", "last_token", "latent_attention", "multi_layer")
_ST_MODES = {"mean": "mean", "cls": "cls", "last_token": "lasttoken"}
_OPTIONS = {
    "latent_attention": ("latents", "heads", "mlp_ratio", "zero_init", "include_prompt"),
    "multi_layer": ("queries", "heads", "token", "mlp_ratio", "zero_init"),
}


def pooling_module(spec: Mapping[str, Any], dim: int, num_layers: int) -> Any:
    """The pooling module ``spec`` describes (``{"type": ..., option: value}``) for a transformer of
    hidden size ``dim`` returning ``num_layers`` hidden-state tensors.

    Raises:
        ValueError: an unknown type, or an option the type does not take (both named).
    """
    kind = spec.get("type")
    if kind not in POOLING_TYPES:
        raise ValueError(f"pooling type {kind!r} is not known; expected one of {', '.join(POOLING_TYPES)}")
    options = {k: v for k, v in spec.items() if k != "type" and v is not None}
    unknown = sorted(set(options) - set(_OPTIONS.get(kind, ())))
    if unknown:
        valid = ", ".join(_OPTIONS.get(kind, ())) or "none"
        raise ValueError(f"pooling {kind!r} takes no option {', '.join(unknown)}; its options: {valid}")
    if kind in _ST_MODES:
        return Pooling(dim, pooling_mode=_ST_MODES[kind])
    if kind == "latent_attention":
        return LatentAttentionPooling(dim, **options)
    return MultiLayerPooling(dim, num_layers=num_layers, **options)


def is_sentence_transformer(name: str) -> bool:
    """Whether ``name`` is a saved sentence-transformers pipeline (a ``modules.json``), locally, in the
    Hugging Face cache or on the hub; a bare transformers model answers False."""
    from huggingface_hub import hf_hub_download

    if model_folder(name) is not None:
        return True
    if Path(name).exists():
        return False
    try:
        hf_hub_download(name, "modules.json")
    except (OSError, ValueError):  # no such file, no such repo, or offline without it in the cache
        return False
    return True


def build(
    name: str,
    pooling: Mapping[str, Any] | None = None,
    *,
    bidirectional: bool | None = None,
    query_prompt: str | None = None,
    padding_side: Literal["left", "right"] = "right",
    device: str | None = None,
) -> Any:
    """A ``SentenceTransformer`` on ``name`` with the pooling ``pooling`` names.

    ``name`` may be a sentence-transformers model (its Transformer and the modules after its pooling,
    such as Normalize, are kept; its pooling is replaced when ``pooling`` is given; with nothing to
    change it is returned as it is) or any Hugging Face encoder or causal language model (mean pooling
    for encoders and last-token pooling for decoders unless ``pooling`` says otherwise). A bare
    decoder's tokenizer appends EOS and pads on ``padding_side`` (right by default: left padding
    shifts the positions of absolute-position models such as GPT-2). ``bidirectional`` True removes a
    decoder's causal mask (a :class:`BidirectionalAttention` module in the pipeline), False restores
    it, None keeps the model's. ``query_prompt`` becomes the model's ``query`` prompt (an instruction
    prefix, as NV-Embed uses), applied by ``encode_query``.

    Raises:
        ValueError: a bad pooling spec, or ``bidirectional`` for a model that is not a decoder.

    Example:
        >>> model = build("sentence-transformers/all-MiniLM-L6-v2",
        ...               {"type": "latent_attention", "latents": 512, "heads": 8})  # doctest: +SKIP
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer

    saved = is_sentence_transformer(name)
    if saved:
        base = load_sentence_transformer(name, device=device)
        if pooling is None and bidirectional is None and query_prompt is None:
            return base
        modules, prompts, similarity = list(base), dict(base.prompts), base.similarity_fn_name
    else:
        modules, prompts, similarity = [Transformer(name)], {}, None
    transformer = modules[0]
    if not isinstance(transformer, Transformer):
        raise ValueError(f"{name}: the first module is {type(transformer).__name__}, not a Transformer")
    hf_model = transformer.auto_model
    decoder = is_decoder(hf_model.config)
    if bidirectional and not decoder:
        raise ValueError(
            f"{name}: bidirectional applies to decoder models; {hf_model.config.model_type} is not one"
        )
    if decoder and not saved:
        prepare_decoder_tokenizer(transformer.tokenizer, padding_side)
    if decoder and bidirectional is not None:
        set_bidirectional(hf_model, bidirectional)
    markers = [m for m in modules[1:] if isinstance(m, BidirectionalAttention)]
    poolings = [m for m in modules[1:] if isinstance(m, POOLING_CLASSES)]
    rest = [m for m in modules[1:] if m not in markers and m not in poolings]
    if pooling is not None:
        num_layers = hf_model.config.num_hidden_layers + 1
        head = pooling_module(pooling, transformer.get_embedding_dimension(), num_layers)
        if pooling["type"] == "multi_layer":
            hf_model.config.output_hidden_states = True
    elif saved and poolings:
        head = poolings[0]
    else:
        default = {"type": "last_token" if decoder else "mean"}
        head = pooling_module(default, transformer.get_embedding_dimension(), 0)
    keep_marker = bidirectional or (bidirectional is None and bool(markers))
    pipeline = [transformer, *([BidirectionalAttention()] if keep_marker else []), head, *rest]
    if query_prompt is not None:
        prompts = {**prompts, "query": query_prompt}
    model = SentenceTransformer(
        modules=pipeline, prompts=prompts or None, similarity_fn_name=similarity, device=device
    )
    logger.info("built %s: %s", name, " -> ".join(type(m).__name__ for m in pipeline))
    return model
