"""The ``Encoder`` protocol and ``load_encoder``: one API over every model Winnow can serve.

An encoder turns query and document texts into float32 vectors. Dense encoders wrap a
``SentenceTransformer`` and use its ``encode_query`` / ``encode_document`` (so model prompts apply);
their output is L2-normalised when the model's similarity is cosine, so that an inner-product index
scores cosine similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from retrieval.model_source import check_model_source
from retrieval.settings import show_progress

logger = logging.getLogger(__name__)

Similarity = Literal["cosine", "dot", "euclidean"]
SIMILARITIES: tuple[str, ...] = ("cosine", "dot", "euclidean")


@runtime_checkable
class Encoder(Protocol):
    """What the retriever, indexes and evaluators need from a model.

    Dense encoders return float32 ``(n, dim)`` arrays; sparse encoders (``kind == "sparse"``) return
    ``scipy.sparse.csr_matrix`` rows over their vocabulary and name their terms in ``vocabulary``.

    Attributes:
        name: the hub id or path the model was loaded from.
        kind: ``dense`` or ``sparse``.
        similarity: ``cosine``, ``dot`` or ``euclidean`` (which index metric scores it).
        dim: vector dimension (a sparse encoder's vocabulary size).
        vocabulary: the token string of every dimension for sparse encoders; None for dense ones.

    Example:
        >>> encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
        >>> encoder.encode_documents(texts, batch_size=32, progress=True).shape
        (len(texts), 384)
    """

    name: str
    kind: Literal["dense", "sparse"]
    similarity: Similarity

    @property
    def dim(self) -> int: ...

    @property
    def vocabulary(self) -> list[str] | None: ...

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray | sparse.csr_matrix: ...

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray | sparse.csr_matrix: ...


def index_metric(similarity: str) -> str:
    """The index metric that scores ``similarity``: inner product for cosine/dot, L2 for euclidean."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; expected one of {', '.join(SIMILARITIES)}")
    return "l2" if similarity == "euclidean" else "ip"


class DenseEncoder:
    """A sentence-transformers bi-encoder behind the :class:`Encoder` protocol.

    Args:
        model: a loaded ``SentenceTransformer``.
        name: the hub id or path it was loaded from (recorded in index and result metadata).
        max_length: optional override of the model's ``max_seq_length``.

    Example:
        >>> enc = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
        >>> enc.encode_queries(["what is winnowing?"]).shape
        (1, 384)
    """

    kind: Literal["dense"] = "dense"
    vocabulary: None = None  # dense dimensions name no tokens

    def __init__(self, model: object, name: str, max_length: int | None = None) -> None:
        self.model = model
        self.name = name
        if max_length is not None:
            model.max_seq_length = max_length
        similarity = getattr(model, "similarity_fn_name", None) or "cosine"
        if similarity == "dot_product":
            similarity = "dot"
        if similarity not in SIMILARITIES:
            raise ValueError(
                f"model {name!r} uses similarity {similarity!r}; supported: {', '.join(SIMILARITIES)}"
            )
        self.similarity: Similarity = similarity  # type: ignore[assignment]
        self._dim = int(model.get_embedding_dimension())

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def normalize(self) -> bool:
        return self.similarity == "cosine"

    def _encode(self, fn_name: str, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = getattr(self.model, fn_name)
        vectors = fn(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=progress and show_progress(),
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return self._encode("encode_query", texts, batch_size, progress)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return self._encode("encode_document", texts, batch_size, progress)

    def __repr__(self) -> str:
        return f"DenseEncoder(name={self.name!r}, dim={self.dim}, similarity={self.similarity!r})"


SPARSE_MODULES = ("Router", "SpladePooling", "SparseStaticEmbedding")


def _modules_json(name: str) -> str:
    """The text of a model's ``modules.json`` (local folder or Hugging Face cache); "" when it has none."""
    from huggingface_hub import try_to_load_from_cache

    path = Path(name)
    if path.is_dir():
        return (path / "modules.json").read_text() if (path / "modules.json").is_file() else ""
    try:
        cached = try_to_load_from_cache(name, "modules.json")
    except ValueError:  # not a valid hub id either (e.g. a missing local path)
        return ""
    return Path(cached).read_text() if isinstance(cached, str) else ""


def is_sparse_model(name_or_path: str | Path, strict: bool = False) -> bool:
    """Whether a model is SPLADE-style or inference-free (loaded as a ``SparseEncoder``); loads no weights.

    A sentence-transformers model is sparse when its ``modules.json`` names a sparse module
    (:data:`SPARSE_MODULES`); a bare transformers model when its architecture is a masked-LM head.

    Args:
        name_or_path: hub id or model directory.
        strict: raise FileNotFoundError when no model can be read there; otherwise answer False.

    Example:
        >>> is_sparse_model("naver/splade-v3"), is_sparse_model("sentence-transformers/all-MiniLM-L6-v2")
        (True, False)
    """
    from transformers import AutoConfig

    name = str(name_or_path)
    modules = _modules_json(name)
    if modules:
        return any(module in modules for module in SPARSE_MODULES)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        if strict:
            raise FileNotFoundError(f"cannot load a model from {name!r}: {exc}") from exc
        return False
    return any(a.endswith("ForMaskedLM") for a in (config.architectures or []))


def _resolve_device(device: str | None) -> str | None:
    if device in (None, "auto"):
        return None  # sentence-transformers picks CUDA when available
    return device


def doc_min_contribution(path: Path) -> float | None:
    """The document pruning by score contribution that ``winnow models prune`` recorded in a model
    folder's ``meta.json`` (None: none, or not a Winnow folder)."""
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return None
    from indexes.io import read_json_file

    value = read_json_file(meta_file, dict).get("doc_min_contribution")
    return None if value is None else float(value)


def load_encoder(
    name_or_path: str | Path, device: str | None = None, max_length: int | None = None
) -> Encoder:
    """Load an encoder from a hub id or a local directory.

    Args:
        name_or_path: a Hugging Face hub id (``sentence-transformers/all-MiniLM-L6-v2``) or a model
            directory written by sentence-transformers or ``winnow train``.
        device: ``cpu``, ``cuda``, ``cuda:1``... or ``None``/``auto`` to let sentence-transformers choose.
        max_length: optional maximum number of tokens per text.

    Returns:
        a :class:`DenseEncoder`, a :class:`~retrieval.sparse_encoder.SparseModelEncoder` (SPLADE and
        inference-free models: CSR outputs) or an :class:`~retrieval.onnx_encoder.OnnxEncoder`.

    Raises:
        FileNotFoundError / OSError: the path does not exist and the hub id cannot be resolved.
    """
    from sentence_transformers import SentenceTransformer

    name = str(name_or_path)
    path = Path(name)
    if (path / "model.onnx").is_file() and (path / "meta.json").is_file():
        from retrieval.onnx_encoder import OnnxEncoder

        return OnnxEncoder(path, device=device)
    looks_local = path.exists() or name.startswith((".", "/", "~"))
    if looks_local and not path.exists():
        raise FileNotFoundError(f"model directory {name} not found")
    if path.is_dir() and not any((path / f).exists() for f in ("modules.json", "config.json")):
        raise ValueError(
            f"{name} is not a model directory: it has neither modules.json (sentence-transformers) "
            "nor config.json (transformers)"
        )
    check_model_source(name)  # offline, a hub id must be cached: refused here naming it
    if path.is_dir():
        from retrieval.model_files import check_model_folder

        check_model_folder(path)  # a damaged file is named here, not deep in a framework's traceback
    sparse_model = is_sparse_model(name)
    try:
        from retrieval.pooling.loading import load_sparse_encoder, trust_kwargs

        if sparse_model:
            model = load_sparse_encoder(name, device=_resolve_device(device))
        else:
            model = SentenceTransformer(name, device=_resolve_device(device), **trust_kwargs(name))
    except OSError as exc:
        raise OSError(
            f"could not load model {name!r}: {exc}. Offline? Run `winnow models install-offline` to seed "
            "the Hugging Face cache, or pass a local model directory."
        ) from exc
    if sparse_model:
        from retrieval.sparse_encoder import SparseModelEncoder

        encoder: Encoder = SparseModelEncoder(
            model, name=name, max_length=max_length, doc_min_contribution=doc_min_contribution(path)
        )
    else:
        encoder = DenseEncoder(model, name=name, max_length=max_length)
    logger.info("loaded %r on %s", encoder, model.device)
    return encoder
