"""Decoder-only language models as encoders: a tiny random Qwen2 built locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.encoders import load_encoder
from retrieval.pooling import build, load_sentence_transformer

TEXTS = ["the cat sat on the rock", "vitamin d lowers the risk of bone disease in older patients"]


def build_tiny_decoder(path: Path) -> Path:
    """A 2-layer Qwen2ForCausalLM over a byte-level tokenizer (256 bytes + EOS), saved with transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {symbol: i for i, symbol in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=vocab["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def decoder(tmp_path_factory) -> Path:
    return build_tiny_decoder(tmp_path_factory.mktemp("decoder") / "hf")


def first_token_change(model) -> float:
    """How much the first token's last-layer state moves when only the last word changes."""
    features = model.tokenize(["cat on a rock", "cat on a rocx"])
    assert (features["attention_mask"] == 1).all()  # same length: no padding hides the effect
    with torch.no_grad():
        states = model[0](dict(features))["token_embeddings"]
    return float((states[0, 0] - states[1, 0]).abs().max())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_causal_mask_is_kept_or_removed_and_survives_saving(decoder, tmp_path, bidirectional) -> None:
    model = build(str(decoder), {"type": "last_token"}, bidirectional=bidirectional)
    changed = first_token_change(model)
    assert (changed > 1e-3) if bidirectional else (changed == 0.0), changed
    model.save(str(tmp_path / "st"))
    reloaded = load_sentence_transformer(str(tmp_path / "st"))
    assert first_token_change(reloaded) == pytest.approx(changed, abs=1e-6)
    names = [type(m).__name__ for m in reloaded]
    assert ("BidirectionalAttention" in names) is bidirectional


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_eos_is_appended_and_padding_is_ignored(decoder, padding_side) -> None:
    model = build(str(decoder), {"type": "last_token"}, bidirectional=True, padding_side=padding_side)
    tokenizer = model[0].tokenizer
    assert tokenizer("cat")["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.padding_side == padding_side
    alone = model.encode(TEXTS[:1], convert_to_numpy=True)
    padded = model.encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_left_and_right_padding_give_the_same_embeddings(decoder) -> None:
    left = build(str(decoder), {"type": "last_token"}, bidirectional=True, padding_side="left")
    right = build(str(decoder), {"type": "last_token"}, bidirectional=True, padding_side="right")
    np.testing.assert_allclose(
        left.encode(TEXTS, convert_to_numpy=True), right.encode(TEXTS, convert_to_numpy=True), atol=1e-5
    )


def test_query_prompt_applies_to_queries_only_and_is_saved(decoder, tmp_path) -> None:
    model = build(str(decoder), {"type": "last_token"}, query_prompt="Instruct: find evidence\nQuery: ")
    model.save(str(tmp_path / "st"))
    encoder = load_encoder(tmp_path / "st")
    queries, documents = encoder.encode_queries(TEXTS), encoder.encode_documents(TEXTS)
    assert np.abs(queries - documents).max() > 1e-3
    prefixed = encoder.encode_documents(["Instruct: find evidence\nQuery: " + t for t in TEXTS])
    np.testing.assert_allclose(queries, prefixed, atol=1e-5)


def test_trainable_pooling_on_a_bidirectional_decoder(decoder, tmp_path) -> None:
    spec = {"type": "multi_layer", "heads": 4, "token": "last", "zero_init": False}
    model = build(str(decoder), spec, bidirectional=True)
    model.save(str(tmp_path / "st"))
    want = model.encode(TEXTS, convert_to_numpy=True)
    got = load_sentence_transformer(str(tmp_path / "st")).encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(got, want, atol=1e-6)


def build_tiny_gpt2(path: Path) -> Path:
    """A 2-layer GPT-2 (absolute position embeddings) over the same byte-level tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_decoder(path.parent / "qwen-for-gpt2"))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=256)
    config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_right_padding_keeps_absolute_positions(tmp_path) -> None:
    """GPT-2 numbers positions from the first token, pad or not: right padding (the default) leaves
    a text's embedding unchanged in a longer batch; left padding would shift it."""
    gpt2 = build_tiny_gpt2(tmp_path / "gpt2")
    model = build(str(gpt2))  # bare decoder: EOS appended, last-token pooling, right padding
    assert model[0].tokenizer.padding_side == "right"
    assert model[0].tokenizer("cat")["input_ids"][-1] == model[0].tokenizer.eos_token_id
    alone = model.encode(TEXTS[:1], convert_to_numpy=True)
    np.testing.assert_allclose(model.encode(TEXTS, convert_to_numpy=True)[0], alone[0], atol=1e-5)
    left = build(str(gpt2), padding_side="left")
    shifted = left.encode(TEXTS, convert_to_numpy=True)[0]
    assert np.abs(shifted - left.encode(TEXTS[:1], convert_to_numpy=True)[0]).max() > 1e-3


def test_bidirectional_none_keeps_a_saved_model_and_false_restores_the_mask(decoder, tmp_path) -> None:
    build(str(decoder), {"type": "last_token"}, bidirectional=True).save(str(tmp_path / "bi"))
    kept = build(str(tmp_path / "bi"), query_prompt="q: ")
    assert first_token_change(kept) > 1e-3
    causal = build(str(tmp_path / "bi"), bidirectional=False)
    assert first_token_change(causal) == 0.0
    assert not any(type(m).__name__ == "BidirectionalAttention" for m in causal)
