"""``DocumentTexts``: a document's text by id, for rerankers that read what the index only points to.

Indexes keep ids and vectors, not texts. A reranker needs the text of each candidate, so it reads it
from the corpus: for a ``corpus.jsonl`` (or BEIR folder) only each line's byte offset is kept in
memory and lines are read on demand; an in-memory corpus is held as a dict.

Example:
    >>> texts = DocumentTexts.of("data/beir/scifact")
    >>> texts["4983"][:40]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from retrieval.corpus import CorpusSource, document_text, iter_corpus


class DocumentTexts:
    """Id -> ``title + " " + text`` (:func:`~retrieval.corpus.document_text`) of a corpus.

    Build with :meth:`of`; ``path`` is the ``corpus.jsonl`` read on demand (None for in-memory corpora).
    """

    def __init__(
        self, offsets: dict[str, int] | None, texts: dict[str, str] | None, path: Path | None
    ) -> None:
        self._offsets, self._texts, self.path = offsets, texts, path

    @classmethod
    def of(cls, source: CorpusSource | Mapping[str, str] | DocumentTexts) -> DocumentTexts:
        """From a BEIR folder or ``corpus.jsonl`` (offsets only), ``{id: text}``, or documents in memory.

        The file is checked as :func:`~retrieval.corpus.iter_corpus` checks it (bad lines name the file
        and line).
        """
        if isinstance(source, DocumentTexts):
            return source
        if isinstance(source, Mapping):
            return cls(None, {str(k): str(v) for k, v in source.items()}, None)
        if isinstance(source, str | Path):
            path = Path(source)
            path = path / "corpus.jsonl" if path.is_dir() else path
            ids = iter(doc["_id"] for doc in iter_corpus(path))  # validates every line first
            offsets: dict[str, int] = {}
            with path.open("rb") as handle:
                offset = 0
                for line in handle:
                    if line.strip():
                        offsets[next(ids)] = offset
                    offset += len(line)
            return cls(offsets, None, path.resolve())
        return cls(None, {doc["_id"]: document_text(doc) for doc in iter_corpus(source)}, None)

    def __len__(self) -> int:
        return len(self._offsets if self._offsets is not None else self._texts or {})

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in (self._offsets if self._offsets is not None else self._texts or {})

    def __getitem__(self, doc_id: str) -> str:
        return self.get_many([doc_id])[0]

    def get_many(self, doc_ids: Sequence[str]) -> list[str]:
        """The texts of ``doc_ids``, in order.

        Raises:
            KeyError: an id not in the corpus, named with the corpus it was looked up in.
        """
        if self._texts is not None:
            missing = [d for d in doc_ids if d not in self._texts]
            if missing:
                raise KeyError(f"document {missing[0]!r} is not in the reranker's corpus")
            return [self._texts[d] for d in doc_ids]
        assert self._offsets is not None and self.path is not None
        out = []
        with self.path.open("rb") as handle:
            for doc_id in doc_ids:
                if doc_id not in self._offsets:
                    raise KeyError(f"document {doc_id!r} is not in {self.path}")
                handle.seek(self._offsets[doc_id])
                out.append(document_text(json.loads(handle.readline())))
        return out
