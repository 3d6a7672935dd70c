"""Decoder-only language models as encoders: EOS appended, a pad token, a padding side."""

from __future__ import annotations

import logging
from typing import Any, Literal

logger = logging.getLogger(__name__)


def is_decoder(hf_config: Any) -> bool:
    """True for decoder-only language models (Llama, Qwen2, Mistral, GPT-2...): a causal-LM
    architecture that is not also a masked-LM one (BERT-like encoders have both)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(hf_config, "model_type", None)
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def prepare_decoder_tokenizer(tokenizer: Any, padding_side: Literal["left", "right"] = "left") -> None:
    """Set a decoder's tokenizer up for embedding: every text ends with EOS (the token last-token
    pooling reads), padding uses the EOS token when there is no pad token, on ``padding_side``.

    The EOS goes into the fast tokenizer's post-processor, so it is saved in ``tokenizer.json`` and a
    reloaded model appends it too. A tokenizer that already ends texts with EOS is left as it is.

    Raises:
        ValueError: the tokenizer has no EOS token, or is not a fast tokenizer.
    """
    from tokenizers import processors

    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None or eos_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no EOS token: last-token pooling needs one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = eos
    tokenizer.padding_side = padding_side
    ids = tokenizer("a")["input_ids"]
    if ids and ids[-1] == eos_id:
        return
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: cannot append EOS")
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    starts_with_bos = bos_id is not None and ids and ids[0] == bos_id
    single = (f"{bos}:0 " if starts_with_bos else "") + f"$A:0 {eos}:0"
    pair = single + f" $B:1 {eos}:1"
    special = [(eos, eos_id)] + ([(bos, bos_id)] if starts_with_bos and bos != eos else [])
    backend.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)
    if tokenizer("a")["input_ids"][-1] != eos_id:
        raise ValueError(f"{type(tokenizer).__name__}: could not make the tokenizer append EOS")
    logger.info("decoder tokenizer: EOS %r appended, padding %s", eos, padding_side)
