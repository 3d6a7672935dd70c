"""Pooling modules (latent attention, multi-layer) and decoder encoders, on tiny local models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.encoders import load_encoder
from retrieval.pooling import (
    LatentAttentionPooling,
    MultiLayerPooling,
    build,
    load_sentence_transformer,
    uses_winnow_modules,
)
from tests.conftest import build_tiny_model

SHORT = "the cat sat on the rock"
LONG = "vitamin d lower risk of bone disease in patients " * 5
SPECS = {
    "latent_attention": {"type": "latent_attention", "latents": 8, "heads": 2, "zero_init": False},
    "multi_layer": {"type": "multi_layer", "queries": 2, "heads": 2, "zero_init": False},
    "multi_layer_last": {"type": "multi_layer", "heads": 4, "token": "last", "zero_init": False},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("pooling"), seed=3)


BEFORE_SAVING: dict[str, np.ndarray] = {}


@pytest.fixture(scope="module", params=sorted(SPECS))
def saved(request, base, tmp_path_factory) -> tuple[str, Path]:
    torch.manual_seed(0)
    model = build(str(base), SPECS[request.param])
    BEFORE_SAVING[request.param] = model.encode([SHORT, LONG], convert_to_numpy=True)
    out = tmp_path_factory.mktemp(request.param) / "model"
    model.save(str(out))
    return request.param, out


def test_shapes_and_module_in_the_pipeline(saved) -> None:
    name, path = saved
    model = load_sentence_transformer(str(path))
    kinds = {type(m) for m in model}
    assert (LatentAttentionPooling if name.startswith("latent") else MultiLayerPooling) in kinds
    embeddings = model.encode([SHORT, LONG, "sea"], convert_to_numpy=True)
    assert embeddings.shape == (3, 32) and np.isfinite(embeddings).all()
    assert model.get_embedding_dimension() == 32


def test_padding_never_changes_an_embedding(saved) -> None:
    _, path = saved
    model = load_sentence_transformer(str(path))
    alone = model.encode([SHORT], convert_to_numpy=True)
    padded = model.encode([SHORT, LONG], convert_to_numpy=True)  # SHORT padded to LONG's length
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_untrained_modules_differ_from_mean_pooling_unless_zero_init(base) -> None:
    mean = load_sentence_transformer(str(base)).encode([SHORT, LONG], convert_to_numpy=True)
    for spec in SPECS.values():
        torch.manual_seed(0)
        random_init = build(str(base), spec).encode([SHORT, LONG], convert_to_numpy=True)
        assert np.abs(random_init - mean).max() > 1e-3
    for kind in ("latent_attention", "multi_layer"):
        zero = build(str(base), {"type": kind, "heads": 2}).encode([SHORT, LONG], convert_to_numpy=True)
        np.testing.assert_allclose(zero, mean, atol=1e-6)


def test_save_load_round_trip_is_identical_and_pickle_free(saved) -> None:
    from sentence_transformers import SentenceTransformer

    name, path = saved
    modules = json.loads((path / "modules.json").read_text())
    folder = path / modules[1]["path"]
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert not list(path.rglob("*.bin")) and not list(path.rglob("*.py"))
    reloaded = load_sentence_transformer(str(path)).encode([SHORT, LONG], convert_to_numpy=True)
    np.testing.assert_array_equal(reloaded, BEFORE_SAVING[name])  # the same weights, bit for bit
    first = load_encoder(path).encode_documents([SHORT, LONG])
    plain = SentenceTransformer(str(path), trust_remote_code=True)  # the installed package's modules
    again = plain.encode([SHORT, LONG], convert_to_numpy=True)
    again /= np.linalg.norm(again, axis=1, keepdims=True)
    np.testing.assert_allclose(again, first / np.linalg.norm(first, axis=1, keepdims=True), atol=1e-6)


def test_only_winnow_modules_in_a_folder_without_code_are_trusted(saved, tmp_path) -> None:
    import shutil

    _, path = saved
    assert uses_winnow_modules(str(path))
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    (copy / "modeling_evil.py").write_text("raise SystemExit\n")
    assert not uses_winnow_modules(str(copy))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_sentence_transformer(str(copy))
    (copy / "modeling_evil.py").unlink()
    assert uses_winnow_modules(str(copy))
    tokenizer_config = json.loads((copy / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["someone/repo--tokenization.X", None]}
    (copy / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    assert not uses_winnow_modules(str(copy))  # transformers would fetch that code
    (copy / "tokenizer_config.json").write_text(
        json.dumps({k: v for k, v in tokenizer_config.items() if k != "auto_map"})
    )
    modules = json.loads((copy / "modules.json").read_text())
    modules[1]["type"] = "somewhere.else.Pooling"
    (copy / "modules.json").write_text(json.dumps(modules))
    assert not uses_winnow_modules(str(copy))


def test_missing_weights_are_named(saved, tmp_path) -> None:
    import shutil

    _, path = saved
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    modules = json.loads((copy / "modules.json").read_text())
    (copy / modules[1]["path"] / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_sentence_transformer(str(copy))


def test_onnx_export_agrees_with_torch(saved, tmp_path) -> None:
    from retrieval.onnx_export import export_onnx

    _, path = saved
    want = load_encoder(path).encode_documents([SHORT, LONG, "sea"])
    got = load_encoder(export_onnx(path, tmp_path / "onnx")).encode_documents([SHORT, LONG, "sea"])
    np.testing.assert_allclose(got, want, atol=1e-5)
    quantized = load_encoder(export_onnx(path, tmp_path / "int8", quantize="int8"))
    cosine = (quantized.encode_documents([SHORT, LONG, "sea"]) * want).sum(1)
    assert cosine.min() > 0.95, cosine


def test_bad_pooling_specs_are_named(base) -> None:
    with pytest.raises(ValueError, match="pooling type 'max_pool'"):
        build(str(base), {"type": "max_pool"})
    with pytest.raises(ValueError, match="takes no option latents"):
        build(str(base), {"type": "multi_layer", "latents": 4})
    with pytest.raises(ValueError, match="heads=3 must divide"):
        build(str(base), {"type": "latent_attention", "heads": 3})
    with pytest.raises(ValueError, match="bidirectional applies to decoder"):
        build(str(base), {"type": "mean"}, bidirectional=True)


def test_multi_layer_pooling_without_hidden_states_says_so(base) -> None:
    model = build(str(base), {"type": "multi_layer", "heads": 2})
    model[0].auto_model.config.output_hidden_states = False
    with pytest.raises(ValueError, match="needs every hidden layer"):
        model.encode([SHORT])


def test_pooling_learning_rate_pattern_names_the_pooling_parameters_only(base) -> None:
    import re

    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from trainers.dense import pooling_parameters

    model = build(str(base), SPECS["latent_attention"])
    loss = MultipleNegativesRankingLoss(model)
    pattern = pooling_parameters(1)
    matched = {n for n, _ in loss.named_parameters() if re.search(pattern, n)}
    pooling = {f"model.1.{n}" for n, _ in model[1].named_parameters()}
    assert matched == pooling and matched


def test_the_prompt_can_be_left_out_of_the_mean() -> None:
    from retrieval.pooling.common import pooling_mask

    right = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    features = {"attention_mask": right, "prompt_length": torch.tensor([2])}
    assert pooling_mask(features, include_prompt=True) is right
    assert pooling_mask(features, include_prompt=False).tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 1]]
    features = {"attention_mask": left, "prompt_length": 2}
    assert pooling_mask(features, include_prompt=False).tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]


def test_the_pooling_learning_rate_reaches_the_optimizer(base, tmp_path) -> None:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from trainers.dense import pooling_parameters

    model = build(str(base), SPECS["latent_attention"])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), learning_rate=2e-5, learning_rate_mapping={pooling_parameters(1): 1e-3},
        report_to="none",
    )  # fmt: skip
    data = Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"]})
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model))  # fmt: skip
    optimizer = trainer.create_optimizer()
    pooling = {id(p) for p in model[1].parameters()}
    rates = {g["lr"] for g in optimizer.param_groups if any(id(p) in pooling for p in g["params"])}
    others = {g["lr"] for g in optimizer.param_groups if not any(id(p) in pooling for p in g["params"])}
    assert rates == {1e-3} and others == {2e-5}
