"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexes.factory import parse_number
from retrieval.settings import data_root, resolve_beir

logger = logging.getLogger("winnow")

DEPRECATED_DEST = "deprecated_flags"

#: Integer flags and their smallest valid value, by argparse ``dest``: checked for every subcommand
#: before it runs (:func:`check_numeric_flags`), so a bad value never reaches a model load.
NUMERIC_FLAGS: dict[str, tuple[str, int]] = {
    "batch_size": ("--batch-size", 1),
    "max_length": ("--max-length", 1),
    "top_k": ("-k/--top-k", 1),
    "skip_queries": ("--skip-queries", 0),
    "chunk_size": ("--chunk-size", 1),
    "doc_max_terms": ("--doc-max-terms", 1),
}


def check_numeric_flags(args: argparse.Namespace) -> None:
    """Raise a ValueError naming the flag, the value and the valid range of the first bad one.

    Example:
        >>> check_numeric_flags(argparse.Namespace(top_k=0))
        Traceback (most recent call last):
        ValueError: -k/--top-k 0: expected an integer >= 1
    """
    for dest, (flag, low) in NUMERIC_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None and value < low:
            raise ValueError(f"{flag} {value}: expected an integer >= {low}")


class DeprecatedAlias(argparse.Action):
    """Store like the flag it stands for, and note the old spelling so the CLI can warn about it."""

    def __init__(self, option_strings: Sequence[str], dest: str, new_flag: str = "", **kwargs: Any) -> None:
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        noted = getattr(namespace, DEPRECATED_DEST, None) or []
        setattr(namespace, DEPRECATED_DEST, [*noted, (option_string, self.new_flag)])


def add_option(
    parser: argparse.ArgumentParser | Any,
    flag: str,
    *,
    old: Sequence[str] = (),
    required: bool = False,
    **kwargs: Any,
) -> None:
    """Add ``flag``; each spelling in ``old`` still works, hidden from --help, with a deprecation warning.

    Example:
        >>> add_option(parser, "--output", old=["--out"], required=True, help="directory to write")
    """
    dest = kwargs.pop("dest", None) or flag.lstrip("-").replace("-", "_")
    if required and old:
        parser = parser.add_mutually_exclusive_group(required=True)
    parser.add_argument(flag, dest=dest, required=required and not old, **kwargs)
    hidden = {k: v for k, v in kwargs.items() if k in ("type", "metavar", "choices")}
    for spelling in old:
        parser.add_argument(
            spelling, dest=dest, action=DeprecatedAlias, new_flag=flag, help=argparse.SUPPRESS, **hidden
        )


def warn_deprecated(args: argparse.Namespace) -> None:
    """Log one warning per deprecated spelling used on the command line."""
    for old, new in getattr(args, DEPRECATED_DEST, None) or []:
        logger.warning("%s is deprecated and will be removed; use %s", old, new)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=None, help="torch device for the encoder (cpu, cuda, cuda:1; default: auto)"
    )


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="data root holding beir/NAME/ (default: $WINNOW_DATA, else ./data, else ../shared/data)",
    )


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    add_device_option(parser)
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    parser.add_argument(
        "--max-length", type=int, default=None, help="maximum tokens per text (default: the model's)"
    )


def add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        default=None,
        help="index spec: faiss:FACTORY for dense models (default faiss:Flat; faiss:HNSW32, "
        "faiss:IVF1024,PQ32...), inverted[:impact=SCALE] (default for sparse models), "
        "lucene[:impact=SCALE], or milvus[:TYPE[,NAME=VALUE...]] for either (exact by default; "
        "milvus:HNSW,M=16)",
    )
    parser.add_argument(
        "--query-weights",
        choices=["model", "corpus"],
        default=None,
        help="with an inference-free sparse --model: weight query tokens by the model's IDF table "
        "(model, the default), or by IDF over the documents indexed (corpus; kept in the index folder)",
    )
    parser.add_argument(
        "--search-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="search parameter, e.g. nprobe=32 or efSearch=128 (faiss), ef=64 (milvus), prune_ratio=0.5 "
        "and expansion_rate=5 (lucene: two-phase search) (repeatable)",
    )
    parser.add_argument(
        "--milvus-uri",
        default=None,
        metavar="URI",
        help="with --index milvus: a Milvus server or cluster (http://host:19530; the token comes from "
        "$MILVUS_TOKEN); default: Milvus Lite inside the index folder",
    )
    parser.add_argument(
        "--milvus-collection",
        default=None,
        metavar="NAME",
        help="with --index milvus: the collection (default: winnow_ plus the output folder's name); a "
        "rerun into an existing collection resumes, skipping ids it holds",
    )


def milvus_collection(args: argparse.Namespace) -> str:
    """``--milvus-collection``, else ``winnow_`` and the output folder's name (letters, digits, ``_``)."""
    if getattr(args, "milvus_collection", None):
        name = args.milvus_collection
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
            raise ValueError(
                f"--milvus-collection {name!r}: letters, digits and _ only, not starting with a digit"
            )
        return name
    output = getattr(args, "output", None)
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(output).name) if output else "eval"
    return f"winnow_{stem}"[:255]


def model_retriever(args: argparse.Namespace, params: dict[str, Any]) -> Any:
    """The :class:`~retrieval.retriever.Retriever` of ``--model`` on ``--index`` (``--device``,
    ``--max-length``, ``--search-param``, ``--milvus-uri``, ``--milvus-collection``), not yet built."""
    from retrieval.encoders import load_encoder
    from retrieval.retriever import Retriever

    encoder = load_encoder(args.model, device=args.device, max_length=args.max_length)
    return Retriever(
        encoder,
        index=args.index,
        search_params=params,
        milvus_uri=args.milvus_uri,
        milvus_collection=milvus_collection(args),
        query_weights=getattr(args, "query_weights", None) or "model",
    )


def check_query_weights(args: argparse.Namespace) -> None:
    """``--query-weights`` only where one model's retriever is built: a saved index keeps the weights
    it was built with, BM25 has no model, and a hybrid's sparse member is built on its own."""
    if getattr(args, "query_weights", None) is None:
        return
    if getattr(args, "index_dir", None):
        raise ValueError(
            f"--query-weights {args.query_weights}: {args.index_dir} searches with the query weights it "
            "was built with (meta.json query_weights); rebuild it with winnow index --query-weights"
        )
    if getattr(args, "model", None) in (None, "bm25"):
        raise ValueError(
            f"--query-weights {args.query_weights} applies to an inference-free sparse --model; for a "
            "hybrid, build the sparse member with winnow index --query-weights and name its folder"
        )


def check_milvus_uri(args: argparse.Namespace) -> None:
    """``--milvus-uri`` only with ``--index milvus...``; a token never on the command line."""
    uri = getattr(args, "milvus_uri", None)
    if uri is None:
        return
    if not str(args.index or "").startswith("milvus"):
        raise ValueError(f"--milvus-uri {uri}: only with --index milvus[:TYPE]")
    milvus_collection(args)
    if "token=" in uri or "@" in uri.partition("://")[2].partition("/")[0]:
        raise ValueError("--milvus-uri: put no credentials in the URI; set $MILVUS_TOKEN instead")


def parse_search_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--search-param {item!r}: expected NAME=VALUE, e.g. nprobe=32")
        number = parse_number(value)
        if number is None:
            raise ValueError(f"--search-param {item!r}: value must be a number")
        params[name] = number
    return params


def resolve_corpus(corpus: str, data_dir: str | None) -> Path:
    """A corpus path as given, else a data set name looked up under the data root."""
    path = Path(corpus).expanduser()
    if path.exists():
        return path
    try:
        return resolve_beir(corpus, data_root(data_dir))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"corpus {corpus} not found (expected a BEIR folder, a corpus.jsonl or a data set name): {exc}"
        ) from exc
