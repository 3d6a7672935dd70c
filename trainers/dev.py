"""Dev-set scoring during training, for model selection: two protocols.

``full``: :class:`BeirDevEvaluator` scores the model in training as ``winnow eval beir --split dev``
scores a saved one: the whole corpus indexed, graded relevance, pytrec_eval, texts cut at the
model's inference length (training may cut them shorter). Its nDCG@10 is the
metric the test report uses, so the checkpoint dev picks is the one that metric prefers.

``sample``: sentence-transformers' ``InformationRetrievalEvaluator`` over the judged documents of
the dev queries plus the top BM25 candidates of each (hard, model-independent distractors), with
binary relevance. Cheaper on a large corpus, but an easier and different task than the report's
(``experiments/dev_protocols.py`` measures how far its gains are from test's).

Both score the model at its inference length (``max_length``): training may cut texts shorter, and
a model scored at its training length is not the model that is saved.

``sample`` is the default (``data.dev_corpus``). Figures are for model selection only; report test
scores with ``winnow eval beir``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, get_args

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from retrieval.corpus import BeirDataset, document_text, iter_corpus, open_beir
from retrieval.settings import resolve_beir
from trainers.bm25 import BM25

logger = logging.getLogger(__name__)

DevCorpus = Literal["full", "sample"]
DEV_CORPORA: tuple[str, ...] = get_args(DevCorpus)

DEV_NAME = "dev"
FULL_METRIC = f"eval_{DEV_NAME}_ndcg@10"
SAMPLE_METRIC = f"eval_{DEV_NAME}_cosine_ndcg@10"
RERANK_NAME = f"{DEV_NAME}_rerank"  # cross-encoders: BM25's top candidates reranked (trainers.cross)
RERANK_METRIC = f"eval_{RERANK_NAME}_ndcg@10"
DEV_METRICS = (FULL_METRIC, SAMPLE_METRIC, RERANK_METRIC)


def dev_score(entry: Mapping[str, Any]) -> float | None:
    """The dev nDCG@10 in one training-log entry (either protocol), else ``None``."""
    return next((float(entry[k]) for k in DEV_METRICS if k in entry), None)


def best_dev_score(history: Iterable[Mapping[str, Any]]) -> float | None:
    """The best dev nDCG@10 in a training log (either protocol), else ``None``."""
    return max((v for entry in history if (v := dev_score(entry)) is not None), default=None)


@contextmanager
def scoring_length(model: Any, max_length: int | None) -> Iterator[None]:
    """Score ``model`` at ``max_length`` tokens per text (``None``: as it is), then restore its
    training length."""
    trained_length = model.max_seq_length
    if max_length is not None:
        model.max_seq_length = max_length
    try:
        yield
    finally:
        model.max_seq_length = trained_length


def dev_metric(evaluator: Any) -> str:
    """The log key of ``evaluator``'s nDCG@10 (``metric_for_best_model``)."""
    if getattr(evaluator, "name", None) == RERANK_NAME:
        return RERANK_METRIC
    return FULL_METRIC if isinstance(evaluator, BeirDevEvaluator) else SAMPLE_METRIC


def dev_query_ids(data: BeirDataset, split: str, max_queries: int | None) -> list[str]:
    """The judged queries with a relevant document, sorted by id, the first ``max_queries`` of them."""
    qrels = data.qrels(split)
    ids = sorted(q for q, docs in qrels.items() if any(r > 0 for r in docs.values()))
    if not ids:
        raise ValueError(f"{data.root / 'qrels' / (split + '.tsv')}: no query has a relevant document")
    return ids[:max_queries] if max_queries else ids


class BeirDevEvaluator(BaseEvaluator):
    """nDCG@10 (and recall@100, MRR@10) of the model in training on a BEIR split, as ``winnow eval beir``.

    Args:
        dataset: a BEIR folder or a name under ``$WINNOW_DATA/beir/``.
        split: the qrels split (``dev``).
        max_queries: score the first this many judged queries (sorted by id; ``None``: all).
        encoder: builds the :class:`~retrieval.encoders.Encoder` that wraps the model in training
            (default: ``DenseEncoder``).
        max_length: tokens per text while scoring (the model's inference limit; training may truncate
            harder); ``None`` keeps the model's current limit.
        batch_size: texts per forward pass.

    Example:
        >>> evaluator = BeirDevEvaluator("nfcorpus", "dev", max_queries=100, max_length=256)
        >>> evaluator(model)["dev_ndcg@10"]
    """

    def __init__(
        self,
        dataset: str,
        split: str,
        max_queries: int | None = None,
        *,
        encoder: Callable[[Any], Any] | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        self.data = open_beir(resolve_beir(dataset))
        self.split = split
        self.query_ids = dev_query_ids(self.data, split, max_queries)
        self.encoder = encoder
        self.max_length = max_length
        self.batch_size = batch_size
        self.name = DEV_NAME
        self.primary_metric = "ndcg@10"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        from eval.beir import evaluate
        from retrieval.encoders import DenseEncoder
        from retrieval.retriever import Retriever

        with scoring_length(model, self.max_length):
            encoder = self.encoder(model) if self.encoder else DenseEncoder(model, name="dev")
            retriever = Retriever(encoder, device="cpu")
            retriever.build(self.data.root / "corpus.jsonl", batch_size=self.batch_size, progress=False)
            result = evaluate(
                retriever,
                self.data,
                self.split,
                metrics=("ndcg@10", "recall@100", "mrr@10"),
                top_k=100,
                batch_size=self.batch_size,
                build=False,
                query_ids=self.query_ids,
            )
        logger.info(
            "dev (%s, %d queries, whole corpus): nDCG@10 %.4f after step %d",
            self.split,
            len(self.query_ids),
            result["metrics"]["ndcg@10"],
            steps,
        )
        return self.prefix_name_to_metrics(result["metrics"], self.name)


def build_dev_evaluator(
    dataset: str,
    split: str,
    max_queries: int | None = 300,
    *,
    per_query: int = 30,
    batch_size: int = 64,
    corpus: DevCorpus = "sample",
    max_length: int | None = None,
):
    """The dev evaluator of protocol ``corpus`` (see the module docstring); its log key is
    :func:`dev_metric` of it."""
    if corpus not in DEV_CORPORA:
        raise ValueError(f"dev corpus {corpus!r}: expected one of {', '.join(DEV_CORPORA)}")
    if corpus == "full":
        return BeirDevEvaluator(dataset, split, max_queries, max_length=max_length, batch_size=batch_size)
    return sampled_dev_evaluator(
        open_beir(resolve_beir(dataset)),
        split,
        max_queries,
        per_query=per_query,
        batch_size=batch_size,
        max_length=max_length,
    )


def bm25_candidates(
    data: BeirDataset, split: str, query_ids: list[str], corpus: dict[str, str], per_query: int
) -> list[list[str]]:
    """The top ``per_query`` BM25 documents of each of ``query_ids`` (``corpus``: id -> text)."""
    queries = data.queries(split)
    ids, _ = BM25(corpus).search([queries[q] for q in query_ids], per_query)
    return ids


def sample_corpus(
    data: BeirDataset, split: str, query_ids: list[str], corpus: dict[str, str], per_query: int = 30
) -> set[str]:
    """The ``sample`` protocol's documents: the judged relevant documents of ``query_ids`` plus the top
    ``per_query`` BM25 candidates of each."""
    qrels = data.qrels(split)
    ids = bm25_candidates(data, split, query_ids, corpus, per_query)
    relevant = {d for q in query_ids for d, r in qrels[q].items() if r > 0}
    return relevant | {d for row in ids for d in row}


class SampledDevEvaluator(InformationRetrievalEvaluator):
    """sentence-transformers' ``InformationRetrievalEvaluator`` that scores the model at
    ``max_length`` tokens per text (its inference length) and restores the training length after.

    Args:
        max_length: tokens per text while scoring; ``None`` keeps the model's current limit.
        **kwargs: ``InformationRetrievalEvaluator``'s arguments.
    """

    def __init__(self, *, max_length: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def __call__(self, model: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        with scoring_length(model, self.max_length):
            return super().__call__(model, *args, **kwargs)


def sampled_dev_evaluator(
    data: BeirDataset,
    split: str,
    max_queries: int | None,
    *,
    per_query: int = 30,
    batch_size: int = 64,
    max_length: int | None = None,
) -> SampledDevEvaluator:
    """A :class:`SampledDevEvaluator` named ``dev`` over a BM25 sample of the corpus (binary
    relevance); its nDCG@10 is logged as ``eval_dev_cosine_ndcg@10``."""
    qrels = data.qrels(split)
    queries = data.queries(split)
    query_ids = dev_query_ids(data, split, max_queries)
    relevant = {q: {d for d, r in qrels[q].items() if r > 0} for q in query_ids}
    corpus = {d["_id"]: document_text(d) for d in iter_corpus(data.root / "corpus.jsonl")}
    keep = sample_corpus(data, split, query_ids, corpus, per_query)
    logger.info("dev: %d %s queries over %d of %d documents", len(query_ids), split, len(keep), len(corpus))
    return SampledDevEvaluator(
        max_length=max_length,
        queries={q: queries[q] for q in query_ids},
        corpus={d: corpus[d] for d in keep},
        relevant_docs=relevant,
        name=DEV_NAME,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10, 100],
        map_at_k=[100],
        batch_size=batch_size,
        show_progress_bar=False,
    )
