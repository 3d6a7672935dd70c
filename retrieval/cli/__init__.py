"""The ``winnow`` command line: one small module per subcommand, each calling one API function."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from retrieval.cli import (
    data_cmd,
    eval_cmd,
    export_cmd,
    index_cmd,
    models_cmd,
    search_cmd,
    train_cmd,
    tune_cmd,
)
from retrieval.cli.options import check_numeric_flags, warn_deprecated
from retrieval.settings import configure_logging

logger = logging.getLogger("winnow")

SUBCOMMANDS = (data_cmd, models_cmd, train_cmd, index_cmd, search_cmd, eval_cmd, tune_cmd, export_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="winnow", description="Train, index, search and evaluate retrievers."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (DEBUG)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="results and errors only: no progress bars, no library warnings",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    warn_deprecated(args)
    try:
        check_numeric_flags(args)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"winnow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
