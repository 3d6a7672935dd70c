"""GISTEmbed contrastive loss with a cached guide: no guide forward pass during training."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from trainers.guide import gist_mask
from trainers.losses.labels import check_similarity, prepare, split_labels


class CachedGuideGISTLoss(nn.Module):
    """GISTEmbed (Solatorio, 2024) with the guide's embeddings looked up instead of computed.

    The frozen guide embedded every training text once (``trainers.guide.Guide``); a batch's guide
    similarities are dot products of rows of that matrix, selected by the text ids in the labels. An
    in-batch or mined candidate whose guide similarity to the anchor exceeds the guide similarity of
    the anchor's positive (minus the margin) is masked out of the softmax; the positive itself never
    is. Candidates that are the very same text as the anchor's positive are masked too (a duplicate
    is always a false negative; the guide rule alone lets ties through), and so are candidates the
    labels name as relevant to the anchor (``labelled_pairs``: another row's document that is also a
    positive of this query, frequent in topic-clustered batches of data sets with many relevant
    documents per query).

    Args:
        model: the student SentenceTransformer.
        guide_embeddings: (n_texts, d) guide embeddings, row ``i`` for text id ``i`` (normalised).
        temperature: softmax temperature over cosine similarities.
        margin_strategy: ``absolute`` or ``relative`` (see :func:`trainers.guide.gist_mask`).
        margin: margin of the rule.
        contrast_anchors: add anchor-anchor terms.
        contrast_positives: add positive-positive terms.
        similarity: ``cosine`` (dense students, divided by ``temperature``) or ``dot`` (sparse students:
            raw dot products divided by ``temperature``, usually 1).
        labelled_pairs: (n, 2) text ids (anchor, document) of known matches, masked wherever the
            document is a candidate for that anchor (``trainers.rows.labelled_pairs``); ``None``: none.

    Inputs:
        +------------------------------------------------+----------------------------------+
        | Texts                                          | Labels                           |
        +================================================+==================================+
        | (anchor, positive) pairs                       | text ids (see losses.labels)     |
        | (anchor, positive, negative_1, ..., negative_n)| text ids [+ teacher scores]      |
        +------------------------------------------------+----------------------------------+

    Example:
        >>> loss = CachedGuideGISTLoss(model, guide.embed(table.texts, ...), temperature=0.05)
        >>> trainer = SentenceTransformerTrainer(model=model, train_dataset=rows, loss=loss, args=args)
    """

    def __init__(
        self,
        model: nn.Module,
        guide_embeddings: np.ndarray | Tensor,
        *,
        temperature: float = 0.05,
        margin_strategy: Literal["absolute", "relative"] = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = False,
        contrast_positives: bool = False,
        similarity: str = "cosine",
        labelled_pairs: np.ndarray | Tensor | None = None,
    ) -> None:
        super().__init__()
        self.similarity = check_similarity(similarity)
        self.model = model
        guide = torch.as_tensor(np.asarray(guide_embeddings, dtype=np.float32))
        self.register_buffer("guide_embeddings", guide, persistent=False)
        pairs = np.asarray(labelled_pairs if labelled_pairs is not None else [], np.int64).reshape(-1, 2)
        keys = torch.as_tensor(pairs[:, 0] * len(guide) + pairs[:, 1]).unique()
        self.register_buffer("labelled_keys", keys, persistent=False)  # sorted anchor * n_texts + doc
        self.temperature = temperature
        self.margin_strategy = margin_strategy
        self.margin = margin
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives
        self.cross_entropy = nn.CrossEntropyLoss()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        sentence_features = list(sentence_features)
        return self.loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def _masked(
        self, sim: Tensor, guide_sim: Tensor, guide_pos: Tensor, same_text: Tensor, keep: Tensor | None
    ) -> Tensor:
        mask = gist_mask(guide_sim, guide_pos, self.margin_strategy, self.margin) | same_text
        if keep is not None:
            mask = mask & ~keep
        return sim.masked_fill(mask, -torch.inf)

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        rows = split_labels(labels, len(embeddings))
        ids = rows.text_ids.to(self.guide_embeddings.device)
        guide = [self.guide_embeddings[ids[:, c]] for c in range(len(embeddings))]
        anchor, positive, *negatives = prepare(embeddings, self.similarity)
        anchor_ids, positive_ids = ids[:, 0], ids[:, 1]
        guide_pos = (guide[0] * guide[1]).sum(-1, keepdim=True)  # (b, 1)
        eye = torch.eye(len(anchor), dtype=torch.bool, device=anchor.device)

        def same(col_ids: Tensor) -> Tensor:
            """Masked besides the guide rule: a copy of the anchor's positive, or a labelled match."""
            mask = positive_ids.unsqueeze(1) == col_ids.unsqueeze(0)
            if len(self.labelled_keys):
                keys = anchor_ids.unsqueeze(1) * len(self.guide_embeddings) + col_ids.unsqueeze(0)
                mask = mask | torch.isin(keys, self.labelled_keys)
            return mask

        scores = [
            self._masked(anchor @ positive.T, guide[0] @ guide[1].T, guide_pos, same(positive_ids), eye)
        ]
        if self.contrast_anchors:
            same_anchor = anchor_ids.unsqueeze(1) == anchor_ids.unsqueeze(0)
            scores.append(
                self._masked(anchor @ anchor.T, guide[0] @ guide[0].T, guide_pos, same_anchor, None)
            )
        if self.contrast_positives:
            scores.append(
                self._masked(
                    positive @ positive.T, guide[1] @ guide[1].T, guide_pos, same(positive_ids), None
                )
            )
        for c, negative in enumerate(negatives, start=2):
            scores.append(
                self._masked(anchor @ negative.T, guide[0] @ guide[c].T, guide_pos, same(ids[:, c]), None)
            )
        logits = torch.cat(scores, dim=1) / self.temperature
        target = torch.arange(len(anchor), device=anchor.device)
        return self.cross_entropy(logits, target)

    @property
    def citation(self) -> str:
        return "Solatorio, GISTEmbed: Guided In-sample Selection of Training Negatives, arXiv:2402.16829"
