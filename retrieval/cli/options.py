"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=None, help="torch device for the encoder (cpu, cuda, cuda:1; default: auto)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    parser.add_argument(
        "--max-length", type=int, default=None, help="maximum tokens per text (default: the model's)"
    )


def add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        default=None,
        help="index spec: faiss:FACTORY for dense models (default faiss:Flat; faiss:HNSW32, "
        "faiss:IVF1024,PQ32...), inverted[:impact=SCALE] (default for sparse models) or "
        "lucene[:impact=SCALE]",
    )
    parser.add_argument(
        "--search-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="faiss search parameter, e.g. nprobe=32 or efSearch=128 (repeatable)",
    )


def parse_search_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--search-param {item!r}: expected NAME=VALUE, e.g. nprobe=32")
        try:
            params[name] = int(value)
        except ValueError:
            try:
                params[name] = float(value)
            except ValueError as exc:
                raise ValueError(f"--search-param {item!r}: value must be a number") from exc
    return params
