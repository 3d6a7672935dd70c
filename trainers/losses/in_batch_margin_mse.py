"""In-batch Margin-MSE (TAS-B's in-batch term) from a dense teacher's cached embeddings."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from trainers.losses.labels import check_similarity, prepare, split_labels


class InBatchMarginMSELoss(nn.Module):
    """Margin-MSE over the documents of the *other* rows of a batch, scored by a frozen dense teacher.

    TAS-Balanced (Hofstätter et al., 2021) pairs topic-aware batches with a second teacher signal
    on in-batch negatives: with batches drawn from one topic cluster, the other queries' documents
    are related to the anchor, and the teacher says by how much less than the positive. For anchor
    ``i`` and every document ``j`` of another row (that row's positive and negatives), the student's
    margin ``s(q_i, p_i) - s(q_i, d_j)`` is fitted to the teacher's. The teacher's similarities are
    dot products of rows of a cached embedding matrix (the guide's, when the dense teacher is the
    guide). With ``normalise`` they are min-max normalised per anchor over its positive and the
    in-batch documents as the ensemble does, so teacher margins lie in [-1, 1]; without it the
    teacher's cosine margins are used as they are, on the student's scale (both times
    ``margin_scale``), as TAS-B uses its teacher's raw scores. The anchor's own mined negatives are
    left to the pairwise term, and a document that is the same text as the anchor's positive is skipped.

    Args:
        model: the student SentenceTransformer.
        teacher_embeddings: (n_texts, d) normalised teacher embeddings, row ``i`` for text id ``i``.
        margin_scale: multiplier of the student's margins (as in :class:`EnsembleMarginMSELoss`), and
            of the teacher's when ``normalise`` is off.
        normalise: min-max normalise the teacher's scores per anchor (else raw cosine margins).
        similarity: ``cosine`` (dense students) or ``dot`` (sparse students).

    Inputs:
        +------------------------------------------------+----------------------------------+
        | Texts                                          | Labels                           |
        +================================================+==================================+
        | (anchor, positive[, negative_1, ..., negative_n])| text ids [+ teacher scores]    |
        +------------------------------------------------+----------------------------------+

    Example:
        >>> term = InBatchMarginMSELoss(model, preparation.teacher_matrix(rows), margin_scale=5.0)
        >>> loss = CombinedLoss(model, [(gist, 1.0), (pairwise, 1.0), (term, 1.0)])
    """

    def __init__(
        self,
        model: nn.Module,
        teacher_embeddings: np.ndarray | Tensor,
        margin_scale: float = 5.0,
        similarity: str = "cosine",
        normalise: bool = True,
    ) -> None:
        super().__init__()
        self.similarity = check_similarity(similarity)
        self.model = model
        teacher = torch.as_tensor(np.asarray(teacher_embeddings, dtype=np.float32))
        self.register_buffer("teacher_embeddings", teacher, persistent=False)
        self.margin_scale = margin_scale
        self.normalise = normalise

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        return self.loss_from_embeddings(embed_columns(self.model, list(sentence_features)), labels)

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        rows = split_labels(labels, len(embeddings))
        ids = rows.text_ids.to(self.teacher_embeddings.device)
        anchor, *docs = prepare(embeddings, self.similarity)
        batch = len(anchor)
        doc_ids = ids[:, 1:].T.reshape(-1)  # column-major: all positives, then each negative column
        doc_row = torch.arange(batch, device=ids.device).repeat(len(docs))
        student = anchor @ torch.cat(docs).T * self.margin_scale  # (batch, batch * n_docs)
        t_query = self.teacher_embeddings[ids[:, 0]]
        teacher = t_query @ self.teacher_embeddings[doc_ids].T
        own = doc_row.unsqueeze(0) == torch.arange(batch, device=ids.device).unsqueeze(1)
        other = ~own & (doc_ids.unsqueeze(0) != ids[:, 1:2])
        if not other.any():
            return student.sum() * 0.0
        positive_column = torch.arange(batch, device=ids.device).unsqueeze(1)  # positives come first
        if self.normalise:  # min-max per anchor over its positive and the other rows' documents
            columns = torch.arange(teacher.shape[1], device=ids.device).unsqueeze(0)
            scored = other | (columns == positive_column)
            low = teacher.masked_fill(~scored, torch.inf).amin(dim=1, keepdim=True)
            high = teacher.masked_fill(~scored, -torch.inf).amax(dim=1, keepdim=True)
            teacher = (teacher - low) / (high - low).clamp_min(1e-9)
        else:
            teacher = teacher * self.margin_scale
        teacher = teacher.to(student.device)
        student_margin = student.gather(1, positive_column.to(student.device)) - student
        teacher_margin = teacher.gather(1, positive_column.to(teacher.device)) - teacher
        mask = other.to(student.device)
        return nn.functional.mse_loss(student_margin[mask], teacher_margin[mask])
