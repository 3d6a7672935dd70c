"""``Hybrid``: several retrievers over the same documents, searched once each and fused into one ranking.

Members are any retrievers (:class:`~retrieval.retriever.Retriever` with a dense or sparse encoder,
:class:`~retrieval.bm25.BM25Retriever`, even another hybrid); fusion is reciprocal rank fusion or a
convex combination of normalised scores (:mod:`retrieval.fusion`). A hybrid saves as a folder holding
one saved folder per member under ``members/`` and a ``meta.json`` with the fusion settings;
:func:`retrieval.load_retriever` opens it like any other index folder.

Example:
    >>> from retrieval import BM25Retriever, Hybrid, Retriever, load_encoder
    >>> dense = Retriever(load_encoder("sentence-transformers/all-MiniLM-L6-v2"))
    >>> hybrid = Hybrid([dense, BM25Retriever()], fusion="convex", weights=[0.5, 0.5], depth=1000)
    >>> hybrid.build("data/beir/scifact")
    >>> hits = hybrid.search(["vitamin D and bone fractures"], k=10)
    >>> hybrid.save("runs/scifact-hybrid")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from indexes.base import Hits
from indexes.io import atomic_directory, write_meta
from retrieval.base import HYBRID_KIND, RetrieverProtocol, load_retriever, query_texts, query_weights_of
from retrieval.corpus import CorpusSource, Document
from retrieval.fusion import DEFAULT_RRF_K, check_fusion, check_weights, fuse

logger = logging.getLogger(__name__)

DEFAULT_DEPTH = 1000
MEMBERS_DIR = "members"


class CorpusView:
    """The documents a hybrid searches (every member's): ``ids`` and ``len``, like an index's."""

    def __init__(self, ids: Sequence[str]) -> None:
        self._ids = list(ids)

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)


def check_same_documents(members: Sequence[RetrieverProtocol]) -> None:
    """Raise a ValueError naming the difference when members index different document id sets."""
    first = set(members[0].index.ids)
    for i, member in enumerate(members[1:], start=1):
        other = set(member.index.ids)
        if other == first:
            continue
        only_first, only_other = sorted(first - other), sorted(other - first)
        raise ValueError(
            f"hybrid members index different documents: member 0 ({members[0].kind} "
            f"{members[0].name}) has {len(first)}, member {i} ({member.kind} {member.name}) has "
            f"{len(other)}; {len(only_first)} only in member 0"
            + (f" (first: {only_first[0]!r})" if only_first else "")
            + f", {len(only_other)} only in member {i}"
            + (f" (first: {only_other[0]!r})" if only_other else "")
            + "; index the same corpus with every member"
        )


def _depths(depth: int | Sequence[int], n_members: int) -> list[int]:
    values = [depth] * n_members if isinstance(depth, int) else list(depth)
    if len(values) != n_members:
        raise ValueError(f"got {len(values)} depths for {n_members} members; expected one, or one per member")
    bad = [d for d in values if isinstance(d, bool) or not isinstance(d, int) or d < 1]
    if bad:
        raise ValueError(f"depth {values}: {bad[0]!r} is not an integer >= 1")
    return values


class Hybrid:
    """Several retrievers fused into one: each searched once per batch of queries, fused with numpy.

    Args:
        members: the retrievers to fuse (at least one), over the same documents.
        fusion: ``rrf`` (reciprocal rank fusion) or ``convex`` (weighted sum of normalised scores).
        weights: one non-negative weight per member (None: equal weights).
        depth: candidates taken from each member per query: one number, or one per member.
        normalize: ``minmax``, ``zscore`` or ``none``: how ``convex`` rescales each member's scores.
        rrf_k: the constant of reciprocal rank fusion.

    Raises:
        ValueError: no member, an unknown fusion or normalisation (the message lists the valid ones),
            bad weights or depths, or members already holding different documents.
    """

    def __init__(
        self,
        members: Sequence[RetrieverProtocol],
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        depth: int | Sequence[int] = DEFAULT_DEPTH,
        normalize: str = "minmax",
        rrf_k: float = DEFAULT_RRF_K,
    ) -> None:
        if not members:
            raise ValueError("a hybrid needs at least one member")
        check_fusion(fusion, normalize)
        if not rrf_k > 0:
            raise ValueError(f"rrf_k {rrf_k!r}: expected a number > 0")
        self.members = list(members)
        self.fusion = fusion
        self.weights = check_weights(weights, len(self.members)).tolist()
        self.depths = _depths(depth, len(self.members))
        self.normalize = normalize
        self.rrf_k = float(rrf_k)
        self._doc_ids: list[str] | None = None
        if all(len(m.index) for m in self.members):
            check_same_documents(self.members)

    kind = HYBRID_KIND

    @property
    def name(self) -> str:
        """``hybrid-rrf(dense:MODEL+bm25)``: the fusion and the members it fuses."""
        return f"hybrid-{self.fusion}(" + "+".join(_member_label(m) for m in self.members) + ")"

    @property
    def index_spec(self) -> str:
        """``hybrid:rrf(k=60)[faiss:Flat,lucene:bm25(...)]`` or ``hybrid:convex(minmax)[...]``."""
        how = f"rrf(k={self.rrf_k:g})" if self.fusion == "rrf" else f"convex({self.normalize})"
        return f"hybrid:{how}[{','.join(m.index_spec for m in self.members)}]"

    @property
    def index(self) -> CorpusView:
        """The documents every member indexes (none while a member indexes nothing yet)."""
        if any(len(m.index) == 0 for m in self.members):
            return CorpusView([])
        return CorpusView(self.members[0].index.ids)

    def describe(self) -> dict[str, Any]:
        """The members and fusion settings, as result files record them."""
        return {
            "members": [
                {
                    "kind": m.kind,
                    "model": m.name,
                    "index": m.index_spec,
                    **({"query_weights": w} if (w := query_weights_of(m)) != "model" else {}),
                }
                for m in self.members
            ],
            "fusion": self.fusion,
            "weights": self.weights,
            "depth": self.depths,
            "normalize": self.normalize,
            "rrf_k": self.rrf_k,
        }

    def build(self, corpus: CorpusSource | Sequence[Document], batch_size: int = 64, **kwargs: Any) -> Hybrid:
        """Index ``corpus`` with every member that indexes nothing yet (keywords go to its ``build``).

        Members loaded from saved folders are kept as they are; all must end up with the same documents.
        """
        if not isinstance(corpus, str | Path):
            corpus = list(corpus)  # read once, indexed by several members
        for member in self.members:
            if len(member.index) == 0:
                member.build(corpus, batch_size=batch_size, **kwargs)
        check_same_documents(self.members)
        self._doc_ids = None
        return self

    def search_members(self, queries: Sequence[str] | Mapping[str, str], batch_size: int = 64) -> list[Hits]:
        """Each member's top ``depth`` hits for the queries: the fusion's input."""
        texts = query_texts(queries)
        return [
            m.search(texts, k=d, batch_size=batch_size)
            for m, d in zip(self.members, self.depths, strict=True)
        ]

    def fuse(self, member_hits: Sequence[Hits], k: int = 10) -> Hits:
        """Fuse the members' hits (from :meth:`search_members`) into each query's top ``k``."""
        if self._doc_ids is None:
            self._doc_ids = sorted(self.members[0].index.ids)
        return fuse(
            member_hits,
            self._doc_ids,
            method=self.fusion,
            weights=self.weights,
            depths=self.depths,
            normalize=self.normalize,
            rrf_k=self.rrf_k,
            k=k,
            lower_is_better=[getattr(m.index, "metric", "ip") == "l2" for m in self.members],
        )

    def search(self, queries: Sequence[str] | Mapping[str, str], k: int = 10, batch_size: int = 64) -> Hits:
        """The fused top ``k`` documents for each query (a list of texts or ``{id: text}``)."""
        return self.fuse(self.search_members(queries, batch_size=batch_size), k=k)

    def save(self, directory: str | Path) -> Path:
        """Write each member's folder under ``members/`` and ``meta.json`` (fusion settings), atomically."""
        with atomic_directory(directory, family="index") as tmp:
            names = []
            for i, member in enumerate(self.members):
                name = f"{i}-{member.kind}"
                member.save(tmp / MEMBERS_DIR / name)
                names.append(name)
            write_meta(
                tmp,
                HYBRID_KIND,
                members=names,
                fusion=self.fusion,
                weights=self.weights,
                depth=self.depths,
                normalize=self.normalize,
                rrf_k=self.rrf_k,
                n_documents=len(self.index),
            )
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> Hybrid:
        """Open a folder written by :meth:`save` (as :func:`retrieval.load_retriever` does)."""
        hybrid = load_retriever(directory, device=device)
        if not isinstance(hybrid, Hybrid):
            raise ValueError(f"{directory} holds a {hybrid.kind} index, not a hybrid")
        return hybrid


def _member_label(member: RetrieverProtocol) -> str:
    kind = member.kind
    corpus = " [corpus query weights]" if query_weights_of(member) == "corpus" else ""
    return kind if kind == "bm25" else f"{kind}:{member.name}{corpus}"
