"""Hybrid member specs and hybrid config files: how a hybrid is written down before it is built.

A member is written ``KIND=MODEL[@INDEX_SPEC]`` (``dense=sentence-transformers/all-MiniLM-L6-v2``,
``sparse=runs/models/sparse@lucene``), ``bm25``, or the path of a folder saved by ``winnow index``
(a member already built, searched as it is). A hybrid config is a YAML or JSON file:

.. code-block:: yaml

    members: [dense=sentence-transformers/all-MiniLM-L6-v2, bm25]
    fusion: convex        # or rrf
    normalize: minmax     # convex only: minmax, zscore or none
    weights: [0.5, 0.5]
    depth: [1000, 1000]   # candidates per member
    rrf_k: 60             # rrf only

Relative folder paths in a config file are read relative to the file's folder. ``winnow tune fusion``
writes such a file, with a ``tuning`` section recording what was tried and chosen.

Example:
    >>> config = HybridConfig.read("runs/scifact-hybrid.yaml")
    >>> hybrid = config.build()              # members not yet indexed: build it on a corpus
    >>> hybrid.build("data/beir/scifact")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexes.factory import parse_index_spec
from indexes.io import META_FILE, meta_value, read_meta, write_file_atomic
from retrieval.base import HYBRID_KIND, RERANKED_KIND, RetrieverProtocol, load_retriever, register_loader
from retrieval.fusion import DEFAULT_RRF_K, check_fusion, check_weights
from retrieval.hybrid import DEFAULT_DEPTH, MEMBERS_DIR, Hybrid

MEMBER_KINDS = ("dense", "sparse", "bm25")
CONFIG_KEYS = ("members", "fusion", "normalize", "weights", "depth", "rrf_k", "tuning")


@dataclass(frozen=True)
class MemberSpec:
    """One hybrid member: a model to index with (``kind``, ``model``, ``index``) or a saved ``folder``."""

    kind: str | None = None
    model: str | None = None
    index: str | None = None
    folder: Path | None = None

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> MemberSpec:
        """Read ``KIND=MODEL[@INDEX_SPEC]``, ``bm25`` or a saved folder's path.

        Args:
            text: the spec.
            base: the folder relative paths are read from (a config file's); None: the current one.

        Raises:
            ValueError: an unknown kind (the valid ones listed), a missing model, a bad index spec.
        """
        text = str(text).strip()
        folder = Path(text).expanduser()
        if base is not None and not folder.is_absolute():
            folder = base / folder
        if (folder / META_FILE).is_file():
            return cls(folder=folder)
        if text == "bm25":
            return cls(kind="bm25")
        kind, sep, rest = text.partition("=")
        if not sep or kind not in MEMBER_KINDS:
            raise ValueError(
                f"hybrid member {text!r}: expected KIND=MODEL[@INDEX_SPEC] with KIND one of "
                f"{', '.join(MEMBER_KINDS[:2])}, or bm25, or a folder saved by `winnow index`"
            )
        if kind == "bm25":
            raise ValueError(f"hybrid member {text!r}: bm25 takes no model; write it as bm25")
        model, at, index = rest.rpartition("@") if "@" in rest else (rest, "", None)
        if at and not index:
            raise ValueError(f"hybrid member {text!r}: nothing after '@'; expected an index spec")
        if not model:
            raise ValueError(f"hybrid member {text!r}: no model after '{kind}='")
        if index:
            parse_index_spec(index)
        if base is not None and (base / model).exists() and not Path(model).is_absolute():
            model = str(base / model)
        return cls(kind=kind, model=model, index=index or None)

    def __str__(self) -> str:
        if self.folder is not None:
            return str(self.folder)
        if self.kind == "bm25":
            return "bm25"
        return f"{self.kind}={self.model}" + (f"@{self.index}" if self.index else "")

    def kind_label(self) -> str:
        """``dense``, ``sparse``, ``bm25`` or ``hybrid``: the spec's kind, or what a saved folder holds."""
        if self.folder is None:
            return str(self.kind)
        meta = read_meta(self.folder)
        if meta.get("kind") in (HYBRID_KIND, RERANKED_KIND):
            return str(meta["kind"])
        encoder_kind = meta.get("encoder_kind")
        return "bm25" if encoder_kind == "lexical" else str(encoder_kind or meta.get("kind"))

    def retriever(self, device: str | None = None, max_length: int | None = None) -> RetrieverProtocol:
        """The member: loaded from its folder, or a new, empty retriever of its kind and model.

        Raises:
            ValueError: the model is of another kind than the spec says (a sparse model as ``dense=``).
        """
        if self.folder is not None:
            return load_retriever(self.folder, device=device)
        if self.kind == "bm25":
            from retrieval.bm25 import BM25Retriever

            return BM25Retriever()
        from retrieval.encoders import load_encoder
        from retrieval.retriever import Retriever

        assert self.model is not None
        encoder = load_encoder(self.model, device=device, max_length=max_length)
        if encoder.kind != self.kind:
            raise ValueError(f"hybrid member {self}: {self.model} is a {encoder.kind} model, not {self.kind}")
        return Retriever(encoder, index=self.index)


@dataclass
class HybridConfig:
    """Members and fusion settings of a hybrid (see the module docstring for the file format)."""

    members: list[MemberSpec]
    fusion: str = "rrf"
    normalize: str = "minmax"
    weights: list[float] | None = None
    depth: int | list[int] = DEFAULT_DEPTH
    rrf_k: float = DEFAULT_RRF_K
    tuning: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a hybrid needs at least one member")
        check_fusion(self.fusion, self.normalize)
        if self.weights is not None:
            self.weights = check_weights(self.weights, len(self.members)).tolist()
        depths = [self.depth] * len(self.members) if isinstance(self.depth, int) else list(self.depth)
        if len(depths) != len(self.members) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths
        ):
            raise ValueError(f"depth {self.depth!r}: expected an integer >= 1, or one per member")

    @classmethod
    def from_args(
        cls,
        members: Sequence[str],
        *,
        fusion: str = "rrf",
        normalize: str = "minmax",
        weights: Sequence[float] | None = None,
        depth: int | Sequence[int] = DEFAULT_DEPTH,
        rrf_k: float = DEFAULT_RRF_K,
    ) -> HybridConfig:
        """From command-line values: member specs as strings."""
        return cls(
            [MemberSpec.parse(m) for m in members],
            fusion=fusion,
            normalize=normalize,
            weights=list(weights) if weights is not None else None,
            depth=depth if isinstance(depth, int) else list(depth),
            rrf_k=rrf_k,
        )

    @classmethod
    def read(cls, path: str | Path) -> HybridConfig:
        """Read a YAML or JSON config; errors name the file and the key."""
        import yaml

        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"hybrid config {path} not found") from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML or JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping with a 'members' list; got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"{path}: unknown key {unknown[0]!r}; expected keys {', '.join(CONFIG_KEYS)}")
        members = raw.get("members")
        if not isinstance(members, list) or not members:
            raise ValueError(f"{path}: 'members' must be a non-empty list of member specs; got {members!r}")
        try:
            return cls(
                [MemberSpec.parse(str(m), base=path.parent) for m in members],
                **{k: raw[k] for k in CONFIG_KEYS[1:] if k in raw and raw[k] is not None},
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def saved(cls, directory: str | Path) -> HybridConfig:
        """The config of a hybrid folder written by :meth:`Hybrid.save`: its member folders and fusion."""
        meta = read_meta(directory)
        if meta.get("kind") != HYBRID_KIND:
            raise ValueError(
                f"{Path(directory) / META_FILE}: kind {meta.get('kind')!r} is not a hybrid; search a "
                "single index with --index-dir"
            )
        names = meta_value(directory, meta, "members", list)
        return cls(
            [MemberSpec(folder=Path(directory) / MEMBERS_DIR / str(name)) for name in names],
            fusion=meta_value(directory, meta, "fusion", str),
            normalize=meta.get("normalize", "minmax"),
            weights=meta.get("weights"),
            depth=meta.get("depth", DEFAULT_DEPTH),
            rrf_k=meta.get("rrf_k", DEFAULT_RRF_K),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "members": [str(m) for m in self.members],
            "fusion": self.fusion,
            "normalize": self.normalize,
            "weights": self.weights,
            "depth": self.depth,
            "rrf_k": self.rrf_k,
        }
        if self.tuning:
            out["tuning"] = self.tuning
        return out

    def write(self, path: str | Path) -> Path:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (any other suffix), atomically."""
        import json

        import yaml

        path = Path(path)
        data = self.to_dict()
        data["members"] = [_relative(m, path.parent) for m in self.members]
        if path.suffix in (".yaml", ".yml"):
            data = json.loads(json.dumps(data))  # fresh objects: no YAML anchors for shared lists
            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2) + "\n"
        write_file_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return path

    def build(self, device: str | None = None, max_length: int | None = None) -> Hybrid:
        """The hybrid: saved members loaded, the others new and empty (index them with ``build``)."""
        return Hybrid(
            [m.retriever(device=device, max_length=max_length) for m in self.members],
            fusion=self.fusion,
            weights=self.weights,
            depth=self.depth,
            normalize=self.normalize,
            rrf_k=self.rrf_k,
        )


def check_config_output(path: str | Path) -> Path:
    """Refuse an output path that exists and is not a hybrid config (never overwrite other files)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise ValueError(f"--output {path}: expected a .yaml, .yml or .json file name")
    if path.is_dir():
        raise FileExistsError(f"{path} is a directory; give a config file name")
    if path.exists():
        try:
            HybridConfig.read(path)
        except (ValueError, OSError) as exc:
            raise FileExistsError(
                f"{path} exists and is not a hybrid config ({exc}): refusing to overwrite it"
            ) from exc
    return path


def _relative(member: MemberSpec, base: Path) -> str:
    """A member spec as a config in ``base`` writes it: saved folders relative to ``base``."""
    if member.folder is None:
        return str(member)
    return os.path.relpath(member.folder.resolve(), base.resolve())


register_loader(
    [HYBRID_KIND], lambda directory, device=None: HybridConfig.saved(directory).build(device=device)
)
