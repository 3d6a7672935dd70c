"""Margin-MSE distillation (Hofstätter et al., 2020) from normalised ensemble teacher scores."""

from __future__ import annotations

from collections.abc import Iterable

from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from trainers.losses.labels import candidate_scores, check_similarity, teacher_scores


class EnsembleMarginMSELoss(nn.Module):
    """Mean squared error between student and teacher margins ``s(q, p) - s(q, n)``.

    Student scores are cosine similarities times ``margin_scale`` (ensemble teacher scores lie in
    [0, 1], so their margins lie in [-1, 1]); with several negatives, every (positive, negative_i)
    margin counts.

    Args:
        model: the student SentenceTransformer.
        margin_scale: multiplier of the student's margins.
        similarity: ``cosine`` (dense students) or ``dot`` (sparse students: raw dot products).
        teacher_margin_floor: if set, teacher margins below it are raised to it, so the teacher never
            asks the student to rank a mined negative above the labelled positive by more than
            ``-floor`` (0: at most a tie). ``None`` keeps the teacher's margins as they are.

    Inputs:
        +-----------------------------------------------+--------------------------------------+
        | Texts                                         | Labels                               |
        +===============================================+======================================+
        | (anchor, positive, negative_1, ..., negative_n)| text ids + teacher scores (labels.py)|
        +-----------------------------------------------+--------------------------------------+
    """

    def __init__(
        self,
        model: nn.Module,
        margin_scale: float = 5.0,
        similarity: str = "cosine",
        teacher_margin_floor: float | None = None,
    ) -> None:
        super().__init__()
        self.similarity = check_similarity(similarity)
        self.model = model
        self.margin_scale = margin_scale
        self.teacher_margin_floor = teacher_margin_floor

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        return self.loss_from_embeddings(embed_columns(self.model, list(sentence_features)), labels)

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        teacher = teacher_scores(embeddings, labels, "Margin-MSE")
        student = candidate_scores(embeddings, self.similarity) * self.margin_scale
        student_margin = student[:, :1] - student[:, 1:]
        teacher_margin = teacher[:, :1] - teacher[:, 1:]
        if self.teacher_margin_floor is not None:
            teacher_margin = teacher_margin.clamp(min=self.teacher_margin_floor)
        return nn.functional.mse_loss(student_margin, teacher_margin)
