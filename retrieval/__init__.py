"""Winnow's public API: load encoders, build and search retrievers, read corpora.

Example:
    >>> from retrieval import Retriever, load_encoder
    >>> retriever = Retriever(load_encoder("sentence-transformers/all-MiniLM-L6-v2"), index="faiss:Flat")
    >>> retriever.build("data/beir/scifact")
    >>> hits = retriever.search(["vitamin D and bone fractures"], k=10)
    >>> hits.ids[0][:3]
    >>> retriever.save("runs/scifact-minilm")
    >>> same = load_retriever("runs/scifact-minilm")  # any saved folder: dense, sparse or BM25
"""

from __future__ import annotations

from indexes.base import Hits
from retrieval.base import RetrieverProtocol, load_retriever
from retrieval.bm25 import BM25Retriever
from retrieval.corpus import Document, load_corpus, load_qrels, load_queries, open_beir
from retrieval.embed import Embeddings, embed_corpus
from retrieval.encoders import DenseEncoder, Encoder, load_encoder
from retrieval.hybrid import Hybrid
from retrieval.hybrid_config import HybridConfig
from retrieval.milvus_hybrid import MilvusHybrid
from retrieval.rerank import Reranker
from retrieval.retriever import Retriever

__all__ = [
    "BM25Retriever",
    "DenseEncoder",
    "Document",
    "Embeddings",
    "Encoder",
    "Hits",
    "Hybrid",
    "HybridConfig",
    "MilvusHybrid",
    "Reranker",
    "Retriever",
    "RetrieverProtocol",
    "embed_corpus",
    "load_corpus",
    "load_encoder",
    "load_qrels",
    "load_queries",
    "load_retriever",
    "open_beir",
]
