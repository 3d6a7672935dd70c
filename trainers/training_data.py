"""``TrainingData``: the training set every source is read into (queries, positives, documents)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingData:
    """Queries, their positives and the documents they point to.

    Attributes:
        queries: ``{query_id: text}``.
        positives: ``{query_id: [doc_id, ...]}``, highest relevance first.
        corpus: ``{doc_id: text}`` (``title + " " + text`` for BEIR documents).
        negatives: negatives named by the source (``{query_id: [doc_id, ...]}``).
        not_negative: documents known to match a query that are not trained on as its positives
            (``{query_id: [doc_id, ...]}``); mining never returns them for that query. Entries of
            queries without positives (dropped by ``data.max_queries``) are ignored.
        unsearchable: documents that serve only as positives (e.g. a document with its title cut
            off, for a title query); they are left out of every index that mines negatives.
    """

    queries: dict[str, str]
    positives: dict[str, list[str]]
    corpus: dict[str, str]
    negatives: dict[str, list[str]] = field(default_factory=dict)
    not_negative: dict[str, list[str]] = field(default_factory=dict)
    unsearchable: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for qid, docs in self.positives.items():
            if qid not in self.queries:
                raise ValueError(f"positives name query {qid!r}, which has no text")
            missing = [d for d in docs if d not in self.corpus]
            if missing:
                raise ValueError(f"query {qid!r} has positive {missing[0]!r}, which is not in the corpus")

    @property
    def query_ids(self) -> list[str]:
        return list(self.positives)

    @property
    def search_corpus(self) -> dict[str, str]:
        """The documents negatives are mined from (``corpus`` less ``unsearchable``)."""
        if not self.unsearchable:
            return self.corpus
        return {d: t for d, t in self.corpus.items() if d not in self.unsearchable}

    def excluded(self, query_id: str) -> set[str]:
        """Documents that must not be a negative for ``query_id``."""
        return {*self.positives.get(query_id, ()), *self.not_negative.get(query_id, ())}

    def merge(self, other: TrainingData) -> TrainingData:
        return TrainingData(
            queries={**self.queries, **other.queries},
            positives={**self.positives, **other.positives},
            corpus={**self.corpus, **other.corpus},
            negatives={**self.negatives, **other.negatives},
            not_negative={**self.not_negative, **other.not_negative},
            unsearchable=self.unsearchable | other.unsearchable,
        )
