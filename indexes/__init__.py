"""Vector indexes behind one interface.

``add(vectors, ids)``, ``search(queries, k) -> Hits``, ``save(dir)`` / ``load(dir)``, ``len(index)``.
"""

from __future__ import annotations

from indexes.base import Hits, Index
from indexes.faiss_index import FaissIndex

__all__ = ["FaissIndex", "Hits", "Index"]
