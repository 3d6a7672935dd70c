"""File names and the metadata kind of an ONNX export, shared by the exporter and the encoder that runs it.

An export directory holds :data:`MODEL_FILE`, the tokenizer files, ``meta.json`` of kind :data:`KIND`
and, for an inference-free sparse model, its IDF query table in :data:`QUERY_WEIGHTS_FILE`.
"""

from __future__ import annotations

KIND = "onnx-encoder"
MODEL_FILE = "model.onnx"
QUERY_WEIGHTS_FILE = "query_weights.npy"
