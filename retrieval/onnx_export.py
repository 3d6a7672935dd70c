"""Export a sentence-transformers encoder (dense, or a SPLADE-style sparse document encoder) to ONNX.

sentence-transformers' own ONNX helpers (``backend="onnx"``, ``export_dynamic_quantized_onnx_model``)
need optimum, whose releases pin transformers below 4.58; on a transformers 5 stack they cannot be
installed. So the whole module pipeline (transformer + pooling, or MLM + SPLADE pooling) is traced
with ``torch.onnx.export``; graph optimisation uses onnxruntime's transformer optimizer (levels
O1-O4 as optimum names them) and int8 uses ``onnxruntime.quantization.quantize_dynamic``.

The output directory holds ``model.onnx``, the tokenizer files and ``meta.json``; it loads with
``retrieval.load_encoder(DIR)``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexes.io import atomic_directory, write_meta
from retrieval.encoders import doc_min_contribution, is_sparse_model
from retrieval.onnx_common import KIND, MODEL_FILE, QUERY_WEIGHTS_FILE

logger = logging.getLogger(__name__)

OPTIMIZE_LEVELS = ("O1", "O2", "O3", "O4")
QUANTIZE_MODES = ("int8",)
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "mpnet", "distilbert", "xlm-roberta", "electra")
_SAMPLE = [
    "A short query.",
    "A longer document about vitamin D, bone density and the risk of fractures in adults.",
]


@dataclass
class _Loaded:
    """What export needs from a model: the module chain to trace and what to save beside it."""

    model: Any
    kind: str  # dense | sparse
    chain: Any  # the modules that map token features to the embedding
    transformer: Any  # the Transformer module (tokenizer, config, max length)
    query_weights: np.ndarray | None  # inference-free sparse models: the IDF query table


def _load(model_name: str) -> _Loaded:
    """Load a dense model, a SPLADE MLM, or an inference-free (Router) sparse model for export."""
    from sentence_transformers import SentenceTransformer, SparseEncoder
    from sentence_transformers.base.modules import Router
    from transformers import AutoConfig

    path = Path(model_name)
    if (path.exists() or model_name.startswith((".", "/"))) and not path.is_dir():
        raise FileNotFoundError(f"model directory {model_name} not found")
    sparse = is_sparse_model(model_name, strict=True)
    try:  # fail before loading weights when the top-level config names an unsupported architecture
        top_config = AutoConfig.from_pretrained(model_name)
    except (OSError, ValueError):
        top_config = None  # e.g. a Router model: its transformers sit in subfolders, checked below
    if top_config is not None:
        _check_architecture(model_name, top_config)
    from retrieval.pooling.loading import trust_kwargs

    kwargs = {"device": "cpu", "model_kwargs": {"attn_implementation": "eager"}, **trust_kwargs(model_name)}
    model = SparseEncoder(model_name, **kwargs) if sparse else SentenceTransformer(model_name, **kwargs)
    chain, query_weights = model, None
    if isinstance(model[0], Router):
        routes = model[0].sub_modules
        if "document" not in routes:
            raise ValueError(f"{model_name}: a Router model needs a 'document' route to export")
        chain = routes["document"]
        query = routes["query"] if "query" in routes else None  # noqa: SIM401 - a ModuleDict has no get()
        if query is not None and len(query) == 1 and type(query[0]).__name__ == "SparseStaticEmbedding":
            query_weights = query[0].weight.detach().cpu().numpy().astype(np.float32)
    transformer = chain[0]
    _check_architecture(model_name, transformer.auto_model.config)
    return _Loaded(model, "sparse" if sparse else "dense", chain, transformer, query_weights)


def is_cross_encoder(model_name: str | Path) -> bool:
    """True when the model's config names a sequence-classification head (a CrossEncoder reranker)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model_name))
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForSequenceClassification") for a in config.architectures or [])


def _check_architecture(model_name: str, config: Any) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{model_name}: architecture {model_type!r} is not supported for ONNX export; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


class _Traced:
    """Wraps a sentence-transformers model as ``(*token tensors) -> embedding`` for tracing."""

    def __new__(cls, model: Any, input_names: list[str]) -> Any:
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors):  # type: ignore[no-untyped-def]
                features = dict(zip(input_names, tensors, strict=True))
                for module in self.model:  # the pipeline's modules, as SentenceTransformer.forward runs them
                    features = module(features)
                return features["sentence_embedding"]

        return Wrapper().eval()


def _optimize(path: Path, level: str, config: Any) -> None:
    """onnxruntime's transformer optimizer, with optimum's level names: O1 basic graph optimisations,
    O2 extended ones + attention/LayerNorm/GELU fusions, O3 O2 + GELU approximation, O4 O3 + fp16."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = (
        "bert" if config.model_type in ("bert", "electra", "distilbert", "mpnet") else config.model_type
    )
    options = FusionOptions(model_type)
    options.enable_gelu_approximation = level in ("O3", "O4")
    optimized = optimize_model(
        str(path),
        model_type=model_type,
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1 if level == "O1" else 2,
        optimization_options=None if level == "O1" else options,
        use_gpu=level == "O4",
    )
    if level == "O4":
        optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(path))


def export_onnx(
    model_name: str | Path,
    out_dir: str | Path,
    optimize: str | None = None,
    quantize: str | None = None,
    opset: int = 17,
) -> Path:
    """Export ``model_name`` to ``out_dir`` (atomically) and check the graph against PyTorch.

    Args:
        model_name: hub id or directory of a sentence-transformers model, or a masked-language model
            (exported as a SPLADE document encoder).
        out_dir: the directory to write.
        optimize: ``O1`` (basic graph optimisations), ``O2`` (+ transformer fusions), ``O3`` (as O2),
            ``O4`` (O2 + fp16, GPU only); ``None`` exports the plain graph.
        quantize: ``int8`` for dynamic int8 quantisation of the weights (CPU).
        opset: ONNX opset.

    Returns:
        ``out_dir``.
    """
    import torch

    if optimize is not None and optimize not in OPTIMIZE_LEVELS:
        raise ValueError(
            f"unknown optimisation level {optimize!r}; expected one of {', '.join(OPTIMIZE_LEVELS)}"
        )
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantisation {quantize!r}; expected one of {', '.join(QUANTIZE_MODES)}")
    model_name = str(model_name)
    loaded = _load(model_name)
    config = loaded.transformer.auto_model.config
    tokenizer = loaded.transformer.tokenizer
    sample = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    inputs = tuple(sample[n] for n in input_names)
    wrapper = _Traced(loaded.chain, input_names)
    with tempfile.TemporaryDirectory(prefix="winnow-onnx-") as work_name:
        work = Path(work_name)
        graph = work / MODEL_FILE
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                inputs,
                str(graph),
                input_names=input_names,
                output_names=["embedding"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in input_names}
                | {"embedding": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        if optimize:
            _optimize(graph, optimize, config)
        if quantize == "int8":
            quantize_int8(graph)
        with atomic_directory(out_dir) as tmp:
            shutil.copy(graph, tmp / MODEL_FILE)
            tokenizer.save_pretrained(str(tmp))
            model = loaded.model
            similarity = getattr(model, "similarity_fn_name", None) or (
                "dot" if loaded.kind == "sparse" else "cosine"
            )
            if loaded.query_weights is not None:
                np.save(tmp / QUERY_WEIGHTS_FILE, loaded.query_weights)
            meta = dict(
                base_model=model_name,
                encoder_kind=loaded.kind,
                similarity="dot" if similarity == "dot_product" else similarity,
                max_length=int(loaded.transformer.max_seq_length),
                dim=int(config.vocab_size if loaded.kind == "sparse" else model.get_embedding_dimension()),
                query_encoder="idf" if loaded.query_weights is not None else "model",
                optimize=optimize,
                quantize=quantize,
                opset=opset,
                normalize=loaded.kind == "dense" and _normalizes(model),
                max_active_dims=getattr(model, "max_active_dims", None),
                doc_min_contribution=doc_min_contribution(Path(model_name)),
                lexical_prior=_prior_settings(model),
            )
            write_meta(tmp, KIND, **meta)
    agreement = _check(wrapper, Path(out_dir), tolerance=0.1 if quantize or optimize == "O4" else 1e-4)
    logger.info(
        "exported %s (%s) to %s; cosine to PyTorch >= %.5f", model_name, loaded.kind, out_dir, agreement
    )
    return Path(out_dir)


def _prior_settings(model: Any) -> dict[str, Any] | None:
    """The settings of an inference-free model's lexical prior (traced into the graph), else None."""
    from retrieval.lexical_prior import lexical_prior

    prior = lexical_prior(model)
    return None if prior is None else prior.settings()


def quantize_int8(graph: Path) -> None:
    """Replace ``graph`` by its dynamic int8 quantisation: per-channel int8 weights of the MatMuls and, in
    a graph fused by ``--optimize O2`` or higher, of the Attention nodes' projections (QAttention; left
    out, a fused graph kept a quarter of its weight products in fp32); embeddings and LayerNorms stay fp32
    (quantising the embedding Gather costs far more accuracy than time it saves)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = graph.with_name(f"{graph.stem}_int8.onnx")
    quantize_dynamic(
        str(graph),
        str(quantized),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Attention"],
        # Fused (com.microsoft) nodes from --optimize defeat shape inference without this.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    quantized.replace(graph)


def _normalizes(model: Any) -> bool:
    return any(type(m).__name__ == "Normalize" for m in model)


def _check(wrapper: Any, out_dir: Path, tolerance: float) -> float:
    """Cosine between the exported graph and PyTorch on texts of other lengths than the traced sample."""
    import torch

    from retrieval.onnx_encoder import OnnxEncoder

    texts = [
        "cats",
        "a considerably longer text, to exercise another sequence length than the traced one " * 3,
    ]
    encoder = OnnxEncoder(out_dir)
    onnx_out = encoder.embed(texts, normalize=False)
    with torch.no_grad():
        torch_out = wrapper(*encoder.tensors(texts, framework="pt")).numpy()
    cos = (onnx_out * torch_out).sum(1) / (
        np.linalg.norm(onnx_out, axis=1) * np.linalg.norm(torch_out, axis=1) + 1e-12
    )
    if cos.min() < 1 - tolerance:
        raise RuntimeError(f"exported graph disagrees with PyTorch: cosine {cos.min():.5f} < {1 - tolerance}")
    return float(cos.min())
