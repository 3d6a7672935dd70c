"""``OnnxEncoder``: an encoder exported by ``winnow export onnx``, run with onnxruntime.

Same API and outputs as the PyTorch encoder it came from: dense vectors (L2-normalised for cosine
models) or, for a sparse document encoder, vocabulary-sized SPLADE weights. The CUDA execution
provider is used when onnxruntime-gpu sees a GPU, otherwise the CPU one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import sparse

from indexes.io import read_meta
from retrieval.onnx_common import KIND, MODEL_FILE, QUERY_WEIGHTS_FILE
from retrieval.sparse_encoder import drop_small_contributions, keep_top_terms

logger = logging.getLogger(__name__)

SPARSE_BATCH = 8


def onnx_providers(device: str | None) -> list[str]:
    """onnxruntime execution providers for ``device`` (CUDA first when asked for or auto and present)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in (None, "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device is not None and device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ValueError(
                f"device {device!r}: onnxruntime has no CUDA provider here (available: {available})"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxEncoder:
    """Runs ``DIR/model.onnx`` with the tokenizer saved beside it.

    Args:
        directory: written by :func:`retrieval.onnx_export.export_onnx`.
        device: ``cpu``, ``cuda`` or ``None``/``auto``.
        threads: intra-op threads (``None``: onnxruntime's default, all cores).
    """

    def __init__(self, directory: str | Path, device: str | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.directory = Path(directory)
        self.meta = read_meta(self.directory, kinds=(KIND,))
        self.name = str(self.directory)
        self.kind: Literal["dense", "sparse"] = self.meta["encoder_kind"]
        self.similarity = self.meta["similarity"]
        self.max_length = int(self.meta["max_length"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.directory / MODEL_FILE), sess_options=options, providers=onnx_providers(device)
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        weights = self.directory / QUERY_WEIGHTS_FILE
        self.query_weights = np.load(weights) if weights.is_file() else None
        self.max_active_dims: int | None = self.meta.get("max_active_dims")
        self.doc_min_contribution: float | None = self.meta.get("doc_min_contribution")
        if self.doc_min_contribution is not None and self.query_weights is None:
            raise ValueError(
                f"{self.directory}: meta.json sets doc_min_contribution, which needs {QUERY_WEIGHTS_FILE} "
                "(an inference-free model's IDF query table)"
            )
        logger.info("onnx encoder %s on %s", self.directory, self.session.get_providers()[0])

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    def tensors(self, texts: Sequence[str], framework: str = "np") -> list[Any]:
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors=framework
        )
        if "token_type_ids" in self.input_names and "token_type_ids" not in encoded:
            encoded["token_type_ids"] = encoded["input_ids"] * 0
        return [encoded[name] for name in self.input_names]

    def _batches(self, texts: list[str], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row positions, outputs) per batch; batches hold texts of similar length (less padding)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            feeds = dict(zip(self.input_names, self.tensors([texts[i] for i in rows]), strict=True))
            yield rows, self.session.run(None, {k: v.astype(np.int64) for k, v in feeds.items()})[0]

    def embed_sparse(self, texts: Sequence[str], batch_size: int = SPARSE_BATCH) -> sparse.csr_matrix:
        """Sparse document vectors (CSR, input order) from an MLM graph.

        The graph materialises (batch, tokens, vocabulary) logits, about 1 GB for 8 texts of 512 tokens
        with a 30k vocabulary, so batches are capped at ``SPARSE_BATCH``.
        """
        texts = list(texts)
        parts, positions = [], []
        for rows, vectors in self._batches(texts, min(batch_size, SPARSE_BATCH)):
            parts.append(sparse.csr_matrix(vectors, dtype=np.float32))
            positions.append(rows)
        if not parts:
            return sparse.csr_matrix((0, self.dim), dtype=np.float32)
        stacked = sparse.vstack(parts, format="csr")
        inverse = np.empty(len(texts), dtype=np.int64)
        inverse[np.concatenate(positions)] = np.arange(len(texts))
        out = stacked[inverse]
        out = keep_top_terms(out, self.max_active_dims) if self.max_active_dims else out
        if self.doc_min_contribution is not None:
            out = drop_small_contributions(out, self.query_weights, self.doc_min_contribution)
        return out

    def embed(self, texts: Sequence[str], batch_size: int = 32, normalize: bool | None = None) -> np.ndarray:
        """Dense embeddings in input order (sparse graphs: a dense (n, vocabulary) array; prefer
        :meth:`embed_sparse`)."""
        texts = list(texts)
        if self.kind == "sparse":
            batch_size = min(batch_size, SPARSE_BATCH)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        normalize = self.similarity == "cosine" if normalize is None else normalize
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows, vectors in self._batches(texts, batch_size):
            out[rows] = vectors
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    @property
    def vocabulary(self) -> list[str] | None:
        """Token strings of a sparse export's dimensions; None for a dense one."""
        if self.kind != "sparse":
            return None
        from retrieval.sparse_encoder import vocabulary

        return vocabulary(self.tokenizer, self.dim)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray | sparse.csr_matrix:
        """Dense models run the graph; inference-free sparse models weight the query's tokens by their
        IDF table (each distinct token once, as ``SparseStaticEmbedding`` does) and return CSR rows.
        ``progress`` is accepted for the :class:`~retrieval.encoders.Encoder` signature (no bar)."""
        if self.query_weights is not None:
            encoded = self.tokenizer(
                list(texts), add_special_tokens=False, truncation=True, max_length=self.max_length
            )
            indptr, indices = [0], []
            for ids in encoded["input_ids"]:
                unique = np.unique(np.asarray(ids, dtype=np.int64))
                indices.append(unique)
                indptr.append(indptr[-1] + len(unique))
            cols = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
            queries = sparse.csr_matrix(
                (self.query_weights[cols], cols, np.asarray(indptr)),
                shape=(len(texts), len(self.query_weights)),
                dtype=np.float32,
            )
            queries.eliminate_zeros()  # tokens pruned from the IDF table (see trainers.sparse_model.prune)
            return queries
        if self.kind == "sparse":
            raise ValueError(
                f"{self.directory} is a sparse document encoder; queries of an inference-free model "
                "are encoded with its IDF table, not this graph"
            )
        return self.embed(texts, batch_size)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray | sparse.csr_matrix:
        return (
            self.embed_sparse(texts, batch_size) if self.kind == "sparse" else self.embed(texts, batch_size)
        )

    def __repr__(self) -> str:
        return f"OnnxEncoder({str(self.directory)!r}, kind={self.kind!r}, dim={self.dim})"
