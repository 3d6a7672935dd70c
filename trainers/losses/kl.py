"""Listwise KL-divergence distillation from normalised ensemble teacher scores."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from trainers.losses.labels import candidate_scores, check_similarity, teacher_scores


class EnsembleKLLoss(nn.Module):
    """KL(teacher || student) over each query's candidate list (positive and negatives).

    ``p_teacher = softmax(t / teacher_temperature)`` from ensemble scores in [0, 1];
    ``p_student = softmax(cos / temperature)``.

    Args:
        model: the student SentenceTransformer.
        temperature: student softmax temperature.
        teacher_temperature: teacher softmax temperature.
        similarity: ``cosine`` (dense students) or ``dot`` (sparse students: raw dot products).

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
        temperature: float = 0.05,
        teacher_temperature: float = 0.1,
        similarity: str = "cosine",
    ) -> None:
        super().__init__()
        self.similarity = check_similarity(similarity)
        self.model = model
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        return self.loss_from_embeddings(embed_columns(self.model, list(sentence_features)), labels)

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        teacher = teacher_scores(embeddings, labels, "KL distillation")
        student = candidate_scores(embeddings, self.similarity) / self.temperature
        target = torch.softmax(teacher / self.teacher_temperature, dim=1)
        return nn.functional.kl_div(torch.log_softmax(student, dim=1), target, reduction="batchmean")
