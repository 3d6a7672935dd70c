"""The label layout Winnow's training rows carry, so losses can look up cached guide embeddings.

Each row of ``n`` text columns (query, positive, negatives...) has a ``label`` vector
``[text_id_0, ..., text_id_{n-1}, teacher_1, ..., teacher_{n-1}]``: the ids index the text table
(and the guide's embedding matrix); the teacher scores (ensemble, in [0, 1]) are present only when
the recipe distils. Ids are exact in float32 up to 2**24 texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class RowLabels:
    text_ids: Tensor  # (batch, n_columns) long
    teacher: Tensor | None  # (batch, n_columns - 1) float: scores of positive and negatives


def split_labels(labels: Tensor, n_columns: int) -> RowLabels:
    """Unpack a ``label`` batch for ``n_columns`` text columns; raise if its width does not fit."""
    if labels is None or labels.dim() != 2:
        raise ValueError(
            "this loss needs Winnow's row labels (text ids [+ teacher scores]); build the dataset with "
            "trainers.rows.build_rows"
        )
    width = labels.shape[1]
    if width not in (n_columns, 2 * n_columns - 1):
        raise ValueError(
            f"label width {width} fits neither {n_columns} nor {2 * n_columns - 1} for {n_columns} columns"
        )
    text_ids = labels[:, :n_columns].round().long()
    teacher = labels[:, n_columns:].float() if width > n_columns else None
    return RowLabels(text_ids, teacher)


SIMILARITIES = ("cosine", "dot")


def check_similarity(similarity: str) -> str:
    if similarity not in SIMILARITIES:
        raise ValueError(
            f"similarity {similarity!r} is not supported; expected one of {', '.join(SIMILARITIES)}"
        )
    return similarity


def prepare(embeddings: list[Tensor], similarity: str) -> list[Tensor]:
    """Normalised embeddings for ``cosine`` (dense students), raw ones for ``dot`` (sparse students)."""
    if similarity == "cosine":
        return [nn.functional.normalize(e, dim=-1) for e in embeddings]
    return list(embeddings)


def candidate_scores(embeddings: list[Tensor], similarity: str = "cosine") -> Tensor:
    """Similarity of each anchor (column 0) with each of its candidates (columns 1..n): (batch, n)."""
    anchor, *docs = prepare(embeddings, similarity)
    return torch.stack([(anchor * d).sum(-1) for d in docs], dim=1)


def teacher_scores(embeddings: list[Tensor], labels: Tensor, loss_name: str) -> Tensor:
    """The teacher scores of a distillation batch (positive, negatives), on the embeddings' device."""
    if len(embeddings) < 3:
        raise ValueError(f"{loss_name} needs (anchor, positive, negative...) rows; enable mining")
    rows = split_labels(labels, len(embeddings))
    if rows.teacher is None:
        raise ValueError(f"{loss_name} needs teacher scores in the labels; configure teachers in the recipe")
    return rows.teacher.to(embeddings[0].device)


__all__ = [
    "SIMILARITIES",
    "RowLabels",
    "candidate_scores",
    "check_similarity",
    "prepare",
    "split_labels",
    "teacher_scores",
]
