"""A weighted sum of losses that share one forward pass of the student."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn


class CombinedLoss(nn.Module):
    """``sum_i weight_i * loss_i``, embedding each batch once.

    Args:
        model: the student SentenceTransformer.
        terms: ``(loss, weight)`` pairs; each loss offers ``loss_from_embeddings(embeddings, labels)``.

    Example:
        >>> loss = CombinedLoss(model, [(CachedGuideGISTLoss(model, g), 1.0), (EnsembleKLLoss(model), 1.0)])
    """

    def __init__(self, model: nn.Module, terms: Sequence[tuple[nn.Module, float]]) -> None:
        super().__init__()
        for loss, _ in terms:
            if not hasattr(loss, "loss_from_embeddings"):
                raise TypeError(
                    f"{type(loss).__name__} has no loss_from_embeddings; it cannot share a forward pass"
                )
        self.model = model
        self.losses = nn.ModuleList([loss for loss, _ in terms])
        self.weights = [float(w) for _, w in terms]
        self.last_terms: dict[str, float] = {}

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        embeddings = embed_columns(self.model, list(sentence_features))
        return sum(self.compute_loss_from_embeddings(embeddings, labels).values())  # type: ignore[return-value]

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> dict[str, Tensor]:
        """The weighted terms by loss name (sentence-transformers' SpladeLoss logs each of them)."""
        terms: dict[str, Tensor] = {}
        for loss, weight in zip(self.losses, self.weights, strict=True):
            value = loss.loss_from_embeddings(embeddings, labels)
            self.last_terms[type(loss).__name__] = float(value.detach())
            terms[type(loss).__name__] = weight * value
        return terms
