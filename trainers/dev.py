"""Dev-set scoring during training: sentence-transformers' InformationRetrievalEvaluator on a BEIR split.

Encoding a whole corpus at every evaluation is too slow on small machines, so the dev corpus is the
judged documents of the dev queries plus the top BM25 candidates of each (hard distractors, model
independent) up to ``max_corpus`` documents. Figures are for model selection only; report test
scores with ``winnow eval beir``.
"""

from __future__ import annotations

import logging

from retrieval.corpus import document_text, iter_corpus, open_beir
from retrieval.settings import resolve_beir
from trainers.bm25 import BM25

logger = logging.getLogger(__name__)

DEV_NAME = "dev"
DEV_METRIC = f"eval_{DEV_NAME}_cosine_ndcg@10"


def build_dev_evaluator(
    dataset: str, split: str, max_queries: int | None = 300, per_query: int = 30, batch_size: int = 64
):
    """An ``InformationRetrievalEvaluator`` named ``dev`` (its nDCG@10 is ``eval_dev_cosine_ndcg@10``)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    data = open_beir(resolve_beir(dataset))
    qrels = data.qrels(split)
    queries = data.queries(split)
    relevant = {q: {d for d, r in docs.items() if r > 0} for q, docs in qrels.items()}
    relevant = {q: docs for q, docs in relevant.items() if docs}
    query_ids = sorted(relevant)[:max_queries] if max_queries else sorted(relevant)
    corpus = {d["_id"]: document_text(d) for d in iter_corpus(data.root / "corpus.jsonl")}
    bm25 = BM25(corpus)
    ids, _ = bm25.search([queries[q] for q in query_ids], per_query)
    keep = {d for q in query_ids for d in relevant[q]} | {d for row in ids for d in row}
    logger.info("dev: %d %s queries over %d of %d documents", len(query_ids), split, len(keep), len(corpus))
    return InformationRetrievalEvaluator(
        queries={q: queries[q] for q in query_ids},
        corpus={d: corpus[d] for d in keep},
        relevant_docs={q: relevant[q] for q in query_ids},
        name=DEV_NAME,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10, 100],
        map_at_k=[100],
        batch_size=batch_size,
        show_progress_bar=False,
    )
