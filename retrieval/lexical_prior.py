"""``LexicalPrior``: BM25's term weights of a document's own tokens, added to its sparse vector.

An inference-free query is its distinct tokens weighted by an IDF table (BM25's IDF), so a document
vector ``w + weight * bm25_tf`` scores ``sum_t idf_t * w_dt + weight * sum_t idf_t * bm25_tf_dt``: the
learned score plus ``weight`` times BM25 over the model's word pieces, in one sparse index and one
pass. The learned part adds what BM25 misses (expansion terms, learned term importance); the prior
keeps the exact-match evidence BM25 has on collections the model never saw. It needs no parameters
and no corpus at search time: ``avgdl`` (BM25's average document length, in counted tokens) is fixed
when the prior is added (``winnow models lexical-prior``), like the IDF table.

The prior is a sentence-transformers module in the model's document route, after ``SpladePooling``,
so every path that runs the document encoder applies it the same way: ``SparseEncoder.encode_document``,
training (the student learns the residual over the prior), and the ONNX graph that ``winnow export
onnx`` traces. Term frequencies count the tokens the encoder reads (up to its ``max_seq_length``), not
special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
from sentence_transformers.base.modules import Module

BM25_K1 = 1.2  # Lucene's BM25Similarity defaults
BM25_B = 0.75


class LexicalPrior(Module):
    """Adds ``weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` for every token of the
    document to its sparse vector (``sentence_embedding``, shape (batch, vocab)).

    Args:
        vocab_size: the tokenizer's vocabulary size (the vector's dimension).
        avgdl: the average number of counted tokens per document of the reference corpora.
        weight: the prior's scale against the learned weights (1.0: a BM25 score as large as the
            learned one for an exact match).
        k1: BM25's term-frequency saturation.
        b: BM25's length normalisation.
        skip_ids: token ids never counted (the tokenizer's special tokens).

    Inputs:
        ``input_ids``, ``attention_mask`` (batch, tokens) and ``sentence_embedding`` (batch, vocab), as
        ``SpladePooling`` leaves them.

    Example:
        >>> prior = LexicalPrior(vocab_size=30522, avgdl=250.0, skip_ids=[0, 101, 102])
        >>> router.sub_modules["document"].append(prior)  # doctest: +SKIP
    """

    config_keys: ClassVar[list[str]] = ["vocab_size", "avgdl", "weight", "k1", "b", "skip_ids"]

    def __init__(
        self,
        vocab_size: int,
        avgdl: float,
        *,
        weight: float = 1.0,
        k1: float = BM25_K1,
        b: float = BM25_B,
        skip_ids: Sequence[int] = (),
    ) -> None:
        super().__init__()
        check_parameters(weight=weight, k1=k1, b=b, avgdl=avgdl)
        self.vocab_size = int(vocab_size)
        self.avgdl = float(avgdl)
        self.weight = float(weight)
        self.k1 = float(k1)
        self.b = float(b)
        self.skip_ids = sorted({int(i) for i in skip_ids})
        counted = torch.ones(self.vocab_size)
        if self.skip_ids:
            counted[torch.tensor(self.skip_ids)] = 0.0
        self.register_buffer("counted", counted, persistent=False)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "cu_seq_lens_q" in features:
            raise ValueError("LexicalPrior needs padded inputs; load the model without flash attention")
        ids, embedding = features["input_ids"], features["sentence_embedding"]
        # counts and lengths in float32 whatever the model's precision (half types round counts > 256)
        mask = self.counted_mask(features)
        tf = torch.zeros(embedding.shape, device=embedding.device).scatter_add(1, ids, mask)
        length = mask.sum(dim=1, keepdim=True)
        norm = self.k1 * (1.0 - self.b + self.b * length / self.avgdl)
        prior = tf * (self.k1 + 1.0) / (tf + norm).clamp(min=1e-9)
        features["sentence_embedding"] = embedding + (self.weight * prior).to(embedding.dtype)
        return features

    def counted_mask(self, features: dict[str, Any]) -> torch.Tensor:
        """1.0 for every token the prior counts (real, not special), else 0.0; (batch, tokens) float32."""
        return features["attention_mask"].float() * self.counted.float()[features["input_ids"]]

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> LexicalPrior:
        from retrieval.pooling.common import hub_kwargs

        return cls(**cls.load_config(model_name_or_path, subfolder=subfolder, **hub_kwargs(kwargs)))

    def settings(self) -> dict[str, float]:
        """``weight``, ``k1``, ``b`` and ``avgdl``: what a model's or an export's ``meta.json`` records."""
        return {"weight": self.weight, "k1": self.k1, "b": self.b, "avgdl": self.avgdl}

    def __repr__(self) -> str:
        return (
            f"LexicalPrior(weight={self.weight}, k1={self.k1}, b={self.b}, avgdl={self.avgdl:.1f}, "
            f"vocab_size={self.vocab_size})"
        )


def check_parameters(*, weight: float, k1: float, b: float, avgdl: float) -> None:
    """Refuse values BM25 has no meaning for, naming the parameter."""
    if not weight > 0:
        raise ValueError(f"lexical prior weight must be positive; got {weight}")
    if not k1 > 0:
        raise ValueError(f"lexical prior k1 must be positive; got {k1}")
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"lexical prior b must lie in [0, 1]; got {b}")
    if not avgdl > 0:
        raise ValueError(f"lexical prior avgdl must be positive; got {avgdl}")


def average_length(texts: Iterable[str], tokenizer: Any, max_length: int, batch_size: int = 512) -> float:
    """The average number of tokens the prior counts per document of ``texts``: the word pieces an
    encoder reading ``max_length`` tokens (special tokens included) sees, less special tokens ([UNK])."""
    room = max(1, int(max_length) - tokenizer.num_special_tokens_to_add())
    special = set(tokenizer.all_special_ids)
    total, count, batch = 0, 0, []

    def counted(batch: list[str]) -> int:
        pieces = tokenizer(batch, add_special_tokens=False, truncation=True, max_length=room)["input_ids"]
        return sum(sum(1 for i in ids if i not in special) for ids in pieces)

    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            total, count = total + counted(batch), count + len(batch)
            batch.clear()
    if batch:
        total, count = total + counted(batch), count + len(batch)
    if not count:
        raise ValueError("average document length: no documents")
    return total / count


def document_route(model: Any) -> Any:
    """The document route (an ``nn.Sequential``) of an inference-free model's ``Router``.

    Raises:
        ValueError: the model has no Router with a query and a document route (a prior on queries
            would break the inference-free contract).
    """
    from sentence_transformers.base.modules import Router

    first = model[0]
    routes = first.sub_modules if isinstance(first, Router) else {}
    if "document" not in routes or "query" not in routes:
        found = f"routes {sorted(routes)}" if routes else f"first module {type(first).__name__}"
        raise ValueError(
            f"a lexical prior needs an inference-free sparse model (a Router with query and document "
            f"routes); this model has {found}"
        )
    return first.sub_modules["document"]


def lexical_prior(model: Any) -> LexicalPrior | None:
    """The model's ``LexicalPrior`` module, or None."""
    try:
        route = document_route(model)
    except ValueError:
        return None
    found = [m for m in route if isinstance(m, LexicalPrior)]
    return found[0] if found else None


def encoder_prior(encoder: Any) -> tuple[LexicalPrior, Any, int] | None:
    """The prior a Winnow sparse encoder adds to its documents (a PyTorch model's module, or one rebuilt
    from an ONNX export's ``meta.json``), with the tokenizer and token limit its documents are read
    with; None for an encoder without one. :func:`prior_vectors` with these gives what it adds."""
    model = getattr(encoder, "model", None)
    if model is not None:
        prior = lexical_prior(model)
        if prior is None:
            return None
        documents = document_route(model)[0]
        return prior, documents.tokenizer, documents.max_seq_length
    settings = getattr(encoder, "meta", {}).get("lexical_prior")
    if not settings:
        return None
    tokenizer = encoder.tokenizer
    shape = {key: settings[key] for key in ("weight", "k1", "b")}
    prior = LexicalPrior(encoder.dim, settings["avgdl"], skip_ids=tokenizer.all_special_ids, **shape)
    return prior, tokenizer, encoder.max_length


def add_lexical_prior(
    model: Any, avgdl: float, *, weight: float = 1.0, k1: float = BM25_K1, b: float = BM25_B
) -> LexicalPrior:
    """Append a :class:`LexicalPrior` to ``model``'s document route, in place, and return it.

    Raises:
        ValueError: not an inference-free model, a prior is already there, or a parameter is out of range.
    """
    check_parameters(weight=weight, k1=k1, b=b, avgdl=avgdl)
    route = document_route(model)
    if lexical_prior(model) is not None:
        raise ValueError(f"the model already has a lexical prior: {lexical_prior(model)!r}")
    if type(route[-1]).__name__ != "SpladePooling":
        raise ValueError(
            "a lexical prior goes right after SpladePooling; the document route ends in "
            f"{type(route[-1]).__name__}"
        )
    tokenizer = route[0].tokenizer
    prior = LexicalPrior(len(tokenizer), avgdl, weight=weight, k1=k1, b=b, skip_ids=tokenizer.all_special_ids)
    route.append(prior)
    return prior


def prior_vectors(
    prior: LexicalPrior, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 64
) -> Any:
    """What ``prior`` adds to the vectors of ``texts`` (a float32 CSR matrix), read at ``max_length``
    tokens as the document encoder reads them: the weights a model without the prior would gain."""
    from scipy import sparse

    parts = []
    for start in range(0, len(texts), batch_size):
        features = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        zero = torch.zeros(features["input_ids"].shape[0], prior.vocab_size)
        with torch.no_grad():
            added = prior(dict(features) | {"sentence_embedding": zero})["sentence_embedding"]
        parts.append(sparse.csr_matrix(added.numpy()))
    return sparse.vstack(parts, format="csr", dtype="float32")
