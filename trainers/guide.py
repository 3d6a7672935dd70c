"""The frozen GISTEmbed guide: cached embeddings of every training text and the false-negative rule.

The rule (Solatorio, 2024): a candidate whose guide similarity to the query exceeds the guide
similarity of the query's positive, minus a margin, is probably a false negative and is masked.
``gist_mask`` implements it once for numpy arrays (filtering mined negatives) and torch tensors
(masking in-batch candidates in the loss).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import numpy as np

from retrieval.embedding_cache import EmbeddingCache, Role
from retrieval.encoders import Encoder
from retrieval.identity import model_identity

logger = logging.getLogger(__name__)

ArrayT = TypeVar("ArrayT")
MARGIN_STRATEGIES = ("absolute", "relative")
POSITIVE_REFERENCES = {"least": np.min, "most": np.max}


def positive_reference(reference: str) -> Callable[[np.ndarray], np.floating]:
    """The reduction over a query's positive scores that ``mining.positive_reference`` names:
    ``least`` is ``np.min``, ``most`` is ``np.max``."""
    if reference not in POSITIVE_REFERENCES:
        raise ValueError(
            f"mining.positive_reference {reference!r} is not one of {', '.join(POSITIVE_REFERENCES)}"
        )
    return POSITIVE_REFERENCES[reference]


def gist_mask(
    candidate_sim: ArrayT, positive_sim: ArrayT, strategy: str = "absolute", margin: float = 0.0
) -> ArrayT:
    """True where a candidate is too close to the query to count as a negative.

    Args:
        candidate_sim: guide similarities of the query to candidates, shape (n, m).
        positive_sim: guide similarity of the query to its positive, shape (n, 1).
        strategy: ``absolute``: mask if ``candidate > positive - margin``; ``relative``: mask if
            ``candidate > positive - |positive| * margin``.
        margin: the margin.
    """
    if strategy == "absolute":
        return candidate_sim > positive_sim - margin
    if strategy == "relative":
        return candidate_sim > positive_sim - abs(positive_sim) * margin
    raise ValueError(f"unknown margin strategy {strategy!r}; expected one of {', '.join(MARGIN_STRATEGIES)}")


class Guide:
    """A frozen guide model whose embeddings are computed once per text and cached on disk.

    Args:
        encoder: the guide encoder (normalised embeddings for cosine models).
        cache: where its embeddings live.
        margin_strategy: see :func:`gist_mask`.
        margin: see :func:`gist_mask`.
    """

    def __init__(
        self,
        encoder: Encoder,
        cache: EmbeddingCache,
        margin_strategy: Literal["absolute", "relative"] = "absolute",
        margin: float = 0.0,
    ) -> None:
        if margin_strategy not in MARGIN_STRATEGIES:
            raise ValueError(f"unknown margin strategy {margin_strategy!r}; expected absolute or relative")
        self.encoder = encoder
        self.cache = cache
        self.margin_strategy = margin_strategy
        self.margin = margin

    @property
    def name(self) -> str:
        return model_identity(self.encoder.name)

    def embed(self, texts: Sequence[str], role: Role) -> np.ndarray:
        return self.cache.get(texts, role)

    def filter_candidates(
        self,
        query: np.ndarray,
        positives: np.ndarray,
        candidates: np.ndarray,
        reference: Literal["least", "most"] = "least",
    ) -> np.ndarray:
        """Boolean keep-mask over ``candidates`` (m, d) for one query (d,) with positives (p, d).

        A candidate is dropped when the GIST rule flags it against a positive: with ``reference``
        ``least`` against the least similar positive (it looks at least as relevant to the guide as
        one document we know is relevant), with ``most`` only against the most similar one (it looks
        more relevant than every known match). With one positive the two agree.
        """
        reduce = positive_reference(reference)
        if len(candidates) == 0:
            return np.zeros(0, dtype=bool)
        positive_sim = reduce(positives @ query)
        candidate_sim = candidates @ query
        return ~gist_mask(candidate_sim, positive_sim, self.margin_strategy, self.margin)
