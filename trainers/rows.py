"""Training rows: the text table (ids for guide lookups) and the (query, positive, negative) dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.embedding_cache import Role
from trainers.data import TrainingData
from trainers.teachers import Ensemble


@dataclass
class TextTable:
    """Every distinct (role, text) of the training set gets an integer id."""

    texts: list[str] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    _ids: dict[tuple[str, str], int] = field(default_factory=dict)

    def id(self, text: str, role: Role) -> int:
        key = (role, text)
        if key not in self._ids:
            self._ids[key] = len(self.texts)
            self.texts.append(text)
            self.roles.append(role)
        return self._ids[key]

    def find(self, text: str, role: Role) -> int | None:
        """The id of a (role, text) already in the table, else ``None``."""
        return self._ids.get((role, text))

    def __len__(self) -> int:
        return len(self.texts)

    def by_role(self, role: Role) -> tuple[np.ndarray, list[str]]:
        """Ids and texts of one role, for embedding them in two calls."""
        ids = [i for i, r in enumerate(self.roles) if r == role]
        return np.asarray(ids, dtype=np.int64), [self.texts[i] for i in ids]


@dataclass
class TrainingRows:
    """Columns for a ``datasets.Dataset`` plus what the samplers need."""

    columns: dict[str, list]
    row_query: list[int]
    row_margin: list[float]
    query_ids: list[str]
    table: TextTable

    def __len__(self) -> int:
        return len(self.row_query)

    def to_dataset(self):
        from datasets import Dataset

        return Dataset.from_dict(self.columns)


def labelled_pairs(data: TrainingData, rows: TrainingRows) -> np.ndarray:
    """(n, 2) text-id pairs (query, document) for every labelled match of a training query whose
    document is in the row table: its positives and its ``not_negative`` documents. A loss masks
    these where they turn up as another row's document in the batch."""
    pairs: list[tuple[int, int]] = []
    for qid in rows.query_ids:
        q_id = rows.table.find(data.queries[qid], "query")
        if q_id is None:
            continue
        for doc in data.excluded(qid):
            d_id = rows.table.find(data.corpus[doc], "document") if doc in data.corpus else None
            if d_id is not None:
                pairs.append((q_id, d_id))
    return np.asarray(sorted(set(pairs)), dtype=np.int64).reshape(-1, 2)


def candidate_lists(
    data: TrainingData, negatives: dict[str, Sequence[str]], query_ids: Sequence[str]
) -> list[list[str]]:
    """Each query's positives, then its negatives (doc ids, no repeats): what the teachers score."""
    return [list(dict.fromkeys([*data.positives[q], *negatives[q]])) for q in query_ids]


def build_rows(
    data: TrainingData,
    negatives: dict[str, Sequence[str]],
    ensemble: Ensemble | None = None,
    pools: dict[str, Sequence[str]] | None = None,
) -> TrainingRows:
    """One row per (query, positive[, negative]); labels carry text ids and, with an ensemble, teacher scores.

    Queries without negatives (when others have them) are dropped, since every row needs the same columns.
    ``pools`` adds documents per query that the teachers score only to set the min-max range of that
    query's scores (``loss.teacher_pool``).
    """
    use_negatives = any(negatives.get(q) for q in data.query_ids)
    query_ids = [q for q in data.query_ids if not use_negatives or negatives.get(q)]
    teacher_scores: dict[str, dict[str, float]] = {}
    if ensemble is not None:
        if not use_negatives:
            raise ValueError("teacher distillation needs mined negatives; none were found")
        candidates = candidate_lists(data, negatives, query_ids)
        scored = [
            list(dict.fromkeys([*docs, *(pools or {}).get(q, ())]))
            for q, docs in zip(query_ids, candidates, strict=True)
        ]
        scores = ensemble.score(
            [data.queries[q] for q in query_ids], [[data.corpus[d] for d in docs] for docs in scored]
        )
        teacher_scores = {
            q: dict(zip(docs, map(float, s[: len(docs)]), strict=True))
            for q, docs, s in zip(query_ids, candidates, scores, strict=True)
        }
    table = TextTable()
    columns: dict[str, list] = {
        "anchor": [],
        "positive": [],
        **({"negative": []} if use_negatives else {}),
        "label": [],
    }
    row_query: list[int] = []
    row_margin: list[float] = []
    for qi, qid in enumerate(query_ids):
        query = data.queries[qid]
        q_id = table.id(query, "query")
        for pos in data.positives[qid]:
            p_id = table.id(data.corpus[pos], "document")
            for neg in negatives[qid] if use_negatives else [None]:
                label: list[float] = [q_id, p_id]
                columns["anchor"].append(query)
                columns["positive"].append(data.corpus[pos])
                margin = 0.0
                if neg is not None:
                    columns["negative"].append(data.corpus[neg])
                    label.append(table.id(data.corpus[neg], "document"))
                    if teacher_scores:
                        t_pos, t_neg = teacher_scores[qid][pos], teacher_scores[qid][neg]
                        label += [t_pos, t_neg]
                        margin = t_pos - t_neg
                columns["label"].append([float(x) for x in label])
                row_query.append(qi)
                row_margin.append(margin)
    if len(table) >= 2**24:
        raise ValueError(f"{len(table)} distinct texts exceed the 2**24 ids float32 labels hold exactly")
    return TrainingRows(columns, row_query, row_margin, query_ids, table)
