"""Cross-encoders in ONNX: export a sentence-transformers ``CrossEncoder`` and score pairs with onnxruntime.

sentence-transformers' own ONNX backend for cross-encoders needs optimum, which cannot be installed on
a transformers 5 stack (see :mod:`retrieval.onnx_export`); so the sequence-classification model is
traced with ``torch.onnx.export`` (optionally int8-quantised the same way as encoders), and
:class:`OnnxCrossEncoder` offers the ``predict`` that :class:`~retrieval.rerank.Reranker` calls, with
the cross-encoder's activation (sigmoid for one-label rerankers) applied as PyTorch applies it.

Example:
    >>> export_cross_encoder("runs/models/rerank", "runs/rerank-onnx", quantize="int8")
    >>> OnnxCrossEncoder("runs/rerank-onnx").predict([("a query", "a document")])
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from indexes.io import atomic_directory, read_meta, write_meta
from retrieval.onnx_common import MODEL_FILE
from retrieval.onnx_encoder import onnx_providers

logger = logging.getLogger(__name__)

CROSS_KIND = "onnx-cross-encoder"
ACTIVATIONS = ("sigmoid", "identity")
_SAMPLE = [("a short query", "a longer document about vitamin D and the risk of fractures in adults")]


def export_cross_encoder(
    model_name: str | Path, out_dir: str | Path, quantize: str | None = None, opset: int = 17
) -> Path:
    """Export a ``CrossEncoder`` (hub id or folder) to ``out_dir`` atomically, checked against PyTorch.

    Args:
        model_name: the cross-encoder.
        out_dir: the folder to write (``model.onnx``, tokenizer files, ``meta.json``).
        quantize: ``int8`` for dynamic int8 weights (MatMuls only), or None.
        opset: ONNX opset.

    Raises:
        ValueError: an unknown quantisation, an activation other than sigmoid or identity.
        RuntimeError: the exported graph's scores differ from PyTorch's.
    """
    import torch
    from sentence_transformers import CrossEncoder

    from retrieval.onnx_export import QUANTIZE_MODES, quantize_int8

    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantisation {quantize!r}; expected one of {', '.join(QUANTIZE_MODES)}")
    cross = CrossEncoder(str(model_name), device="cpu")
    activation = _activation_name(cross.activation_fn)
    sample = cross.tokenizer(
        [q for q, _ in _SAMPLE], [d for _, d in _SAMPLE], padding=True, return_tensors="pt"
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = cross.model

        def forward(self, *tensors):  # type: ignore[no-untyped-def]
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    wrapper = Logits().eval()
    with tempfile.TemporaryDirectory(prefix="winnow-onnx-cross-") as work_name:
        graph = Path(work_name) / MODEL_FILE
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                tuple(sample[n] for n in names),
                str(graph),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        if quantize == "int8":
            quantize_int8(graph)
        with atomic_directory(out_dir, family="model") as tmp:
            shutil.copy(graph, tmp / MODEL_FILE)
            cross.tokenizer.save_pretrained(str(tmp))
            write_meta(
                tmp,
                CROSS_KIND,
                base_model=str(model_name),
                activation=activation,
                max_length=int(cross.max_length or 512),
                num_labels=int(cross.model.config.num_labels),
                quantize=quantize,
                opset=opset,
            )
    pairs = [("cats", "the cat sat on the rock"), ("vitamin d and bones " * 3, "fractures in adults " * 8)]
    onnx_scores = OnnxCrossEncoder(out_dir).predict(pairs)
    torch_scores = np.asarray(cross.predict(pairs, show_progress_bar=False), dtype=np.float32)
    gap = float(np.abs(onnx_scores - torch_scores).max())
    if gap > (0.05 if quantize else 1e-4):
        raise RuntimeError(f"exported cross-encoder disagrees with PyTorch: max score difference {gap:.5f}")
    logger.info(
        "exported cross-encoder %s to %s; max score difference to PyTorch %.2e", model_name, out_dir, gap
    )
    return Path(out_dir)


def _activation_name(fn: Any) -> str:
    name = type(fn).__name__.lower()
    if name in ACTIVATIONS:
        return name
    raise ValueError(f"cross-encoder activation {type(fn).__name__}: only Sigmoid or Identity export")


class OnnxCrossEncoder:
    """Scores (query, document) pairs with an exported cross-encoder; ``predict`` as ``CrossEncoder``'s.

    Args:
        directory: written by :func:`export_cross_encoder`.
        device: ``cpu``, ``cuda`` or ``None``/``auto``.
        max_length: tokens per pair (default: the exported model's).
    """

    def __init__(
        self, directory: str | Path, device: str | None = None, max_length: int | None = None
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.directory = Path(directory)
        self.meta = read_meta(self.directory, kinds=(CROSS_KIND,))
        self.name_or_path = str(self.directory)
        self.max_length = max_length or int(self.meta["max_length"])
        self.activation = self.meta.get("activation", "identity")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
        self.session = ort.InferenceSession(
            str(self.directory / MODEL_FILE), providers=onnx_providers(device)
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        **_: Any,
    ) -> np.ndarray:
        """One score per pair (the first label's, after the activation), as float32."""
        pairs = list(pairs)
        out = np.zeros(len(pairs), dtype=np.float32)
        order = np.argsort([len(q) + len(d) for q, d in pairs], kind="stable")  # similar lengths together
        starts = range(0, len(pairs), batch_size)
        for start in tqdm(starts, desc="reranking", unit="batch", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            features = self.tokenizer(
                [pairs[i][0] for i in rows],
                [pairs[i][1] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {n: features[n].astype(np.int64) for n in self.input_names}
            logits = self.session.run(None, feed)[0][:, 0]
            out[rows] = logits
        if self.activation == "sigmoid":
            out = 1.0 / (1.0 + np.exp(-out))
        return out.astype(np.float32)
