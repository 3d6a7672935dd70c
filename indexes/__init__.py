"""Vector indexes behind one interface, made by one factory and opened by one loader.

``index_factory(spec, dim)`` builds an empty index (``faiss:FACTORY``, ``inverted[:impact[=SCALE]]``,
``lucene[:impact=SCALE]``); every index offers ``train(vectors)``, ``add(vectors, ids)``,
``search(queries, k) -> Hits``, ``save(dir)`` / ``load(dir)`` and ``len(index)``; ``load_index(dir)``
opens any saved index folder by its ``meta.json``.
"""

from __future__ import annotations

from indexes.base import Hits, Index
from indexes.factory import INDEX_SPECS, index_factory, index_spec, load_index, parse_index_spec
from indexes.faiss_index import FaissIndex
from indexes.inverted import InvertedIndex

__all__ = [
    "INDEX_SPECS",
    "FaissIndex",
    "Hits",
    "Index",
    "InvertedIndex",
    "index_factory",
    "index_spec",
    "load_index",
    "parse_index_spec",
]
