"""Sparsity regularisers for SPLADE document vectors: FLOPS, IDF-aware FLOPS and L1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

REGULARIZERS = ("idf_flops", "flops", "l1")
Regularizer = Literal["idf_flops", "flops", "l1"]


def flops(weights: Tensor) -> Tensor:
    """FLOPS (Paria et al., 2020): ``sum_t (mean_i w_it)^2`` over a batch of (n, vocab) weights."""
    return torch.sum(torch.mean(weights, dim=0) ** 2)


def idf_flops(weights: Tensor, idf: Tensor) -> Tensor:
    """IDF-aware FLOPS (Geng et al., 2024): FLOPS of ``w_it / idf_t``.

    Dividing by the IDF makes a frequent (low-IDF) token cost more than a rare one of the same weight,
    so the document encoder stops spending weight on tokens whose long postings lists make search slow
    and which an IDF-weighted query barely rewards.
    """
    return flops(weights / idf)


def l1(weights: Tensor) -> Tensor:
    """Mean L1 norm per vector."""
    return weights.abs().sum(dim=1).mean()


class FlopsRegularizer(nn.Module):
    """Document regulariser for :class:`sentence_transformers.sparse_encoder.losses.SpladeLoss`.

    Args:
        kind: ``idf_flops`` (needs ``idf``), ``flops`` or ``l1``.
        idf: (vocab,) IDF of every token; values are clamped to at least ``min_idf``.
        min_idf: floor of the IDF divisor (guards against division by ~0 for ubiquitous tokens).

    Inputs:
        Document embeddings (n, vocab), through ``compute_loss_from_embeddings`` (SpladeLoss calls it on
        every non-query column).

    Attributes:
        last_active: mean number of non-zero terms per document in the last batch.
        last_flops: plain FLOPS of the last batch (comparable across regularisers).

    Example:
        >>> reg = FlopsRegularizer("idf_flops", idf=idf_table)
        >>> loss = SpladeLoss(model, loss=base, document_regularizer=reg, document_regularizer_weight=1e-3)
    """

    def __init__(
        self, kind: Regularizer = "idf_flops", idf: np.ndarray | Tensor | None = None, min_idf: float = 0.1
    ) -> None:
        super().__init__()
        if kind not in REGULARIZERS:
            raise ValueError(f"unknown regulariser {kind!r}; expected one of {', '.join(REGULARIZERS)}")
        if kind == "idf_flops" and idf is None:
            raise ValueError("idf_flops needs the IDF table (idf=...)")
        self.kind = kind
        self.min_idf = min_idf
        table = torch.as_tensor(np.asarray(idf, dtype=np.float32)) if idf is not None else torch.ones(1)
        self.register_buffer("idf", table.clamp_min(min_idf), persistent=False)
        self.last_active = 0.0
        self.last_flops = 0.0

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        raise NotImplementedError(
            "FlopsRegularizer is a SpladeLoss document_regularizer, not a loss by itself"
        )

    def compute_loss_from_embeddings(self, embeddings: Tensor) -> Tensor:
        with torch.no_grad():
            self.last_active = float((embeddings > 0).sum(dim=1).float().mean())
            self.last_flops = float(flops(embeddings))
        if self.kind == "flops":
            return flops(embeddings)
        if self.kind == "l1":
            return l1(embeddings)
        if self.idf.shape[0] != embeddings.shape[1]:
            raise ValueError(
                f"IDF table has {self.idf.shape[0]} tokens; embeddings have {embeddings.shape[1]}"
            )
        return idf_flops(embeddings, self.idf.to(embeddings.device))

    def get_config_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "min_idf": self.min_idf}

    @property
    def citation(self) -> str:
        return (
            "Paria et al., Minimizing FLOPs to Learn Efficient Sparse Representations, ICLR 2020; "
            "Geng et al., Towards Competitive Search Relevance For Inference-Free Learned Sparse "
            "Retrievers, arXiv:2411.04403"
        )
