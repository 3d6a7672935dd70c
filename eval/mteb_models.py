"""Models for mteb: dense encoders through mteb's own wrappers, sparse ones through its search protocol.

Every model carries a name and a revision, so results land in ``<model>/<revision>/`` and never under
``no_model_name/available``:

- a hub id that mteb knows (``sentence-transformers/all-MiniLM-L6-v2``) uses mteb's registered
  metadata and loader (the revision is the one mteb records, which the offline cache also holds);
- any other hub id gets its cached snapshot revision; a local directory gets ``winnow/<dir name>``
  and a revision hashed from its weights;
- sparse models (SPLADE, inference-free Router models, and sparse ONNX exports) are served through
  :class:`SparseSearchModel`, mteb's ``SearchProtocol``, backed by the exact inverted index
  (:class:`~indexes.inverted.InvertedIndex`), so mteb scores the retrieval a user deploys (IDF query
  table included).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import Index
from indexes.factory import index_factory

logger = logging.getLogger(__name__)


def _revision(name_or_path: str) -> str:
    path = Path(name_or_path)
    if path.is_dir():
        digest = hashlib.sha1()
        for weights in sorted(path.rglob("*")):
            if weights.suffix in (".safetensors", ".bin", ".onnx", ".npy") and weights.is_file():
                with weights.open("rb") as handle:  # stream: weight files can be gigabytes
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()[:12]
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name_or_path, "config.json")
    return Path(cached).parent.name if isinstance(cached, str) else "main"


def model_name(name_or_path: str) -> str:
    path = Path(name_or_path)
    return f"winnow/{path.resolve().name}" if path.is_dir() else name_or_path


def _meta(name_or_path: str, kind: str, **extra: Any):
    from mteb.models.model_meta import ModelMeta

    return ModelMeta.create_empty(
        overwrites=dict(
            name=model_name(name_or_path), revision=_revision(name_or_path), model_type=[kind], **extra
        )
    )


def is_sparse(name_or_path: str) -> bool:
    """True for SPLADE-style and inference-free models, and for their sparse ONNX exports."""
    path = Path(name_or_path)
    if (path / "model.onnx").is_file():
        from indexes.io import read_meta

        return read_meta(path).get("encoder_kind") == "sparse"
    from retrieval.encoders import is_sparse_model

    return is_sparse_model(name_or_path)


class SparseSearchModel:
    """mteb ``SearchProtocol``: sparse documents in the embedded inverted index, exact dot-product top-k.

    A query's results are the documents sharing a term with it (a positive score), at most ``top_k``.

    Args:
        name_or_path: a sentence-transformers ``SparseEncoder`` (hub id or directory) or a sparse
            ONNX export (``winnow export onnx``).
        batch_size: texts per encoding batch.
    """

    def __init__(self, name_or_path: str, batch_size: int = 16, device: str | None = None) -> None:
        self.name_or_path = str(name_or_path)
        self.batch_size = batch_size
        if (Path(self.name_or_path) / "model.onnx").is_file():
            from retrieval.onnx_encoder import OnnxEncoder

            self._encoder: Any = OnnxEncoder(self.name_or_path, device=device)
        else:
            from retrieval.encoders import doc_min_contribution
            from retrieval.pooling.loading import load_sparse_encoder
            from retrieval.sparse_encoder import SparseModelEncoder

            self._encoder = SparseModelEncoder(
                load_sparse_encoder(self.name_or_path, device=device),
                self.name_or_path,
                doc_min_contribution=doc_min_contribution(Path(self.name_or_path)),
            )
        from mteb.models.model_meta import ScoringFunction

        self.mteb_model_meta = _meta(
            self.name_or_path, "sparse", similarity_fn_name=ScoringFunction.DOT_PRODUCT
        )
        self._index: Index | None = None

    def _encode(self, texts: list[str], role: str):
        """CSR rows: both encoders return sparse vectors for sparse models."""
        from scipy import sparse

        encode = self._encoder.encode_queries if role == "query" else self._encoder.encode_documents
        return sparse.csr_matrix(encode(texts, batch_size=self.batch_size))

    def index(
        self,
        corpus,
        *,
        task_metadata=None,
        hf_split=None,
        hf_subset=None,
        encode_kwargs=None,
        num_proc=None,
        **kwargs: Any,
    ) -> None:
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
        texts = [f"{t} {x}".strip() if t else x for t, x in zip(titles, corpus["text"], strict=True)]
        docs = self._encode(texts, "document")
        self._index = index_factory("inverted", docs.shape[1])
        self._index.add(docs, list(corpus["id"]))
        logger.info("indexed %d documents, %.1f non-zeros each", len(texts), docs.nnz / max(len(texts), 1))

    def search(
        self,
        queries,
        *,
        task_metadata=None,
        hf_split=None,
        hf_subset=None,
        top_k: int = 1000,
        encode_kwargs=None,
        top_ranked=None,
        num_proc=None,
        **kwargs: Any,
    ) -> dict[str, dict[str, float]]:
        if self._index is None:
            raise RuntimeError("search() before index()")
        hits = self._index.search(self._encode(list(queries["text"]), "query"), top_k)
        return hits.as_run(list(queries["id"]))


class CachedEncoder:
    """An mteb encoder serving embeddings from (and storing them in) an ``EmbeddingCache``.

    Texts already embedded (by an earlier run, or on a GPU machine: docs/gpu.md) are
    read back; the rest are computed by the model and stored. Queries use the model's query encoding,
    everything else its document encoding (sentence-transformers' ``encode_query`` /
    ``encode_document``), which is what mteb's wrapper does for models without task-specific prompts;
    models with task-specific prompts are refused.

    Args:
        inner: a ``SentenceTransformerEncoderWrapper`` (its ``.model`` computes missing texts).
        cache_dir: the embedding cache root.
    """

    def __init__(self, inner: Any, cache_dir: str | Path) -> None:
        from retrieval.embedding_cache import EmbeddingCache
        from retrieval.encoders import DenseEncoder

        prompts = getattr(inner, "model_prompts", None) or {}
        if any(key not in ("query", "document") for key in prompts):
            raise ValueError(
                f"{inner.mteb_model_meta.name} has task-specific prompts; run it without the cache"
            )
        self.inner = inner
        self.mteb_model_meta = inner.mteb_model_meta
        self.cache = EmbeddingCache(DenseEncoder(inner.model, name=inner.mteb_model_meta.name), cache_dir)

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        role = "query" if getattr(prompt_type, "value", prompt_type) == "query" else "document"
        return self.cache.get(texts, role, progress=False)

    def __getattr__(self, name: str) -> Any:  # similarity functions and the rest come from the wrapper
        return getattr(self.inner, name)


def load_mteb_model(
    name_or_path: str, device: str | None = None, embedding_cache: str | Path | None = None
) -> Any:
    """The model to hand to ``mteb.evaluate``, with a proper name and revision.

    ``embedding_cache`` serves a dense model's embeddings through :class:`CachedEncoder`.
    """
    model = _load_mteb_model(str(name_or_path), device)
    if embedding_cache is not None and not isinstance(model, SparseSearchModel):
        return CachedEncoder(model, embedding_cache)
    return model


def _load_mteb_model(name_or_path: str, device: str | None) -> Any:
    import mteb

    name_or_path = str(name_or_path)
    if is_sparse(name_or_path):
        return SparseSearchModel(name_or_path, device=device)
    path = Path(name_or_path)
    if not path.exists():
        try:
            meta = mteb.get_model_meta(name_or_path)
        except (KeyError, ValueError):
            meta = None
        if meta is not None and meta.loader is not None:
            return mteb.get_model(name_or_path, device=device)
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    from retrieval.pooling.loading import trust_kwargs

    wrapper = SentenceTransformerEncoderWrapper(
        SentenceTransformer(name_or_path, device=device, **trust_kwargs(name_or_path))
    )
    wrapper.mteb_model_meta = wrapper.mteb_model_meta.model_copy(
        update={"name": model_name(name_or_path), "revision": _revision(name_or_path)}
    )
    return wrapper
