"""Training pairs from BEIR qrels, JSONL rows, or a Hugging Face dataset saved on disk.

Whatever the source, the result is a :class:`~trainers.training_data.TrainingData`: query texts,
each query's positive document ids (best first), the document texts, and any negatives the source
already names. Mining (``trainers.mining``) adds negatives later.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from retrieval.corpus import document_text, iter_corpus, iter_jsonl, open_beir
from retrieval.settings import resolve_beir
from trainers.config import DataConfig
from trainers.title_queries import title_queries
from trainers.training_data import TrainingData

logger = logging.getLogger(__name__)


def _doc_id(text: str) -> str:
    return "t" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def from_beir(
    path: str | Path, split: str, max_positives: int, prefix: str = "", max_queries: int | None = None
) -> TrainingData:
    """Pairs from a BEIR folder's ``qrels/<split>.tsv`` (relevance > 0), the whole corpus as documents.

    A query keeps its ``max_positives`` most relevant documents as positives (judgements of documents
    absent from the corpus are left out, see :meth:`retrieval.corpus.BeirDataset.judged`); the rest of
    its relevant documents go to ``not_negative``, so mining never hands a labelled match back as a negative
    (NFCorpus has ~43 relevant documents per training query).
    """
    data = open_beir(path)
    queries, qrels = data.judged(split)  # absent queries and documents: counted warnings there
    corpus = {prefix + d["_id"]: document_text(d) for d in iter_corpus(data.root / "corpus.jsonl")}
    positives: dict[str, list[str]] = {}
    not_negative: dict[str, list[str]] = {}
    for qid, judged in qrels.items():
        present = (d for d, r in judged.items() if r > 0 and prefix + d in corpus)
        ranked = sorted(present, key=lambda d: -judged[d])
        if ranked:
            positives[prefix + qid] = [prefix + d for d in ranked[:max_positives]]
        if len(ranked) > max_positives:
            not_negative[prefix + qid] = [prefix + d for d in ranked[max_positives:]]
    if max_queries is not None:
        positives = dict(list(positives.items())[:max_queries])
    logger.info(
        "%s/%s: %d training queries, %d documents, %d relevant documents beyond max_positives=%d "
        "kept out of the negatives",
        data.name,
        split,
        len(positives),
        len(corpus),
        sum(len(not_negative.get(q, ())) for q in positives),
        max_positives,
    )
    return TrainingData({prefix + q: queries[q] for q in qrels}, positives, corpus, not_negative=not_negative)


def from_rows(rows: list[tuple[str, dict]], max_positives: int) -> TrainingData:
    """Pairs from ``(where, row)`` records: ``query`` or ``anchor``, ``positive``, optional ``negatives``.

    A query's positives past ``max_positives`` go to ``not_negative`` (never mined as its negatives).
    """
    queries: dict[str, str] = {}
    positives: dict[str, list[str]] = {}
    negatives: dict[str, list[str]] = {}
    not_negative: dict[str, list[str]] = {}
    corpus: dict[str, str] = {}
    for where, row in rows:
        query = row.get("query", row.get("anchor"))
        positive = row.get("positive")
        if (
            not isinstance(query, str)
            or not isinstance(positive, str)
            or not query.strip()
            or not positive.strip()
        ):
            raise ValueError(f"{where}: a row needs non-empty string 'query' (or 'anchor') and 'positive'")
        negs = row.get("negatives", row.get("negative", []))
        negs = [negs] if isinstance(negs, str) else negs
        if not isinstance(negs, list) or not all(isinstance(n, str) for n in negs):
            raise ValueError(f"{where}: 'negatives' must be a string or a list of strings")
        qid = _doc_id(query)
        queries[qid] = query
        for text, bucket in [(positive, positives), *[(n, negatives) for n in negs]]:
            doc = _doc_id(text)
            corpus[doc] = text
            docs = bucket.setdefault(qid, [])
            if doc in docs:
                continue
            if bucket is negatives or len(docs) < max_positives:
                docs.append(doc)
            elif doc not in not_negative.get(qid, []):
                not_negative.setdefault(qid, []).append(doc)
    return TrainingData(queries, positives, corpus, negatives, not_negative)


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    return [(f"{path}:{line_no}", row) for line_no, row in iter_jsonl(path)]


def _hf_rows(path: Path) -> list[tuple[str, dict]]:
    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    if hasattr(dataset, "keys"):  # a DatasetDict: take the train split
        if "train" not in dataset:
            raise ValueError(f"{path}: dataset dict has no 'train' split (splits: {', '.join(dataset)})")
        dataset = dataset["train"]
    return [(f"{path} row {i}", row) for i, row in enumerate(dataset)]


def extra_prefix(dataset: str | Path) -> str:
    """The prefix of the query and document ids of ``dataset`` added through ``data.extra_datasets``."""
    return f"{resolve_beir(dataset).name}/"


def load_training_data(config: DataConfig) -> TrainingData:
    """Read the training set that ``config`` names (plus ``extra_datasets``).

    ``config.dataset`` and ``extra_datasets`` are paths once :func:`trainers.config.load_config` has
    resolved them against the data root; a name left in a config built in code is looked up by
    :func:`retrieval.settings.resolve_beir` under the default data root.
    """
    path = Path(config.dataset)
    rows: list[tuple[str, dict]] | None = None
    if path.is_file() and path.suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(path)
    elif path.is_dir() and any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json")):
        rows = _hf_rows(path)
    if rows is not None:
        if config.title_queries:
            raise ValueError(
                f"data.title_queries needs a BEIR corpus with titles; {config.dataset!r} is a file of rows"
            )
        data = from_rows(rows, config.max_positives)
    else:
        root = resolve_beir(config.dataset)
        data = from_beir(root, config.split, config.max_positives, max_queries=config.max_queries)
        for extra in config.extra_datasets:
            data = data.merge(
                from_beir(resolve_beir(extra), config.split, config.max_positives, prefix=extra_prefix(extra))
            )
        if config.title_queries:
            data = data.merge(title_queries(root / "corpus.jsonl", config.title_queries))
        return data
    if config.max_queries is not None:
        keep = list(data.positives)[: config.max_queries]
        data.positives = {q: data.positives[q] for q in keep}
    return data
