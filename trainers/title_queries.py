"""Title queries: unlabelled corpus documents as extra training pairs (title -> the rest of the document).

A document's title is a short statement of what its body is about, much like a search query, so a
corpus with titles gives (query, positive) pairs without any labels: the title becomes the query and
the document *without its title* becomes the positive (cutting the title off keeps the pair from
being a trivial exact match, as the Inverse Cloze Task removes its sentence from the passage). This is
weak supervision from the target corpus, as title-body pairs are in E5's and GTR's pre-training
data; it reads no qrels, so any split of the data set stays held out.

The full document stays in the corpus: it is a possible negative for every other query, and it is
recorded in ``not_negative`` for its own title query so mining never returns it there. The cut
copies are ``unsearchable``: positives only, never mined.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from retrieval.corpus import document_text, iter_corpus
from trainers.training_data import TrainingData

logger = logging.getLogger(__name__)

MIN_TITLE_WORDS = 3
"""Shorter titles ("Introduction", a gene name) say too little to be a query."""


def title_queries(corpus_file: str | Path, count: int, prefix: str = "", seed: int = 0) -> TrainingData:
    """Up to ``count`` title queries from the documents of a BEIR ``corpus.jsonl``.

    Args:
        corpus_file: the BEIR corpus (``_id``, ``title``, ``text`` per line).
        count: pairs wanted; documents are drawn uniformly (``seed``) from those with a title of at
            least ``MIN_TITLE_WORDS`` words and a non-empty body.
        prefix: prefix of the corpus's document ids in the training set (as for ``extra_datasets``).
        seed: the draw's seed (fixed by default, so every training seed sees the same pairs).

    Returns:
        query ``title:<doc id>`` -> positive ``title:<doc id>`` (the body), with the full document
        (``<doc id>``) as the query's ``not_negative`` and the body ``unsearchable``.

    Example:
        >>> data = title_queries("scifact/corpus.jsonl", 800)  # doctest: +SKIP
        >>> data.queries["title:4983"], data.corpus["title:4983"][:40]  # doctest: +SKIP
    """
    if count < 1:
        raise ValueError(f"data.title_queries must be a positive number of documents; got {count}")
    eligible = [
        doc
        for doc in iter_corpus(Path(corpus_file))
        if len((doc.get("title") or "").split()) >= MIN_TITLE_WORDS and (doc.get("text") or "").strip()
    ]
    if not eligible:
        raise ValueError(f"{corpus_file}: no document has a title of {MIN_TITLE_WORDS}+ words and a body")
    picked = np.random.default_rng(seed).permutation(len(eligible))[:count]
    data = TrainingData(queries={}, positives={}, corpus={})
    for i in sorted(picked.tolist()):
        doc = eligible[i]
        full_id = prefix + doc["_id"]
        qid = f"title:{full_id}"
        data.queries[qid] = doc["title"].strip()
        data.corpus[qid] = doc["text"].strip()
        data.corpus[full_id] = document_text(doc)
        data.positives[qid] = [qid]
        data.not_negative[qid] = [full_id]
        data.unsearchable.add(qid)
    logger.info("%s: %d title queries (of %d eligible documents)", corpus_file, len(picked), len(eligible))
    return data
