"""``winnow data fetch|list``: download BEIR data sets into the data root, and list what is there."""

from __future__ import annotations

import argparse

from retrieval.cli.options import add_data_dir_option
from retrieval.download import BEIR_DATASETS, BEIR_URL, fetch_beir, list_beir
from retrieval.settings import data_root, show_progress


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="download and list data sets")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch = actions.add_parser(
        "fetch", help="download a BEIR data set into DATA_ROOT/beir/NAME/ (no-op when it is there)"
    )
    fetch.add_argument("name", metavar="NAME", help=f"BEIR data set: {', '.join(BEIR_DATASETS)}")
    add_data_dir_option(fetch)
    fetch.add_argument(
        "--url", default=None, help=f"zip to download (default: {BEIR_URL.format(name='NAME')})"
    )
    fetch.set_defaults(func=run_fetch)
    listing = actions.add_parser("list", help="print the data root and the BEIR data sets found in it")
    add_data_dir_option(listing)
    listing.set_defaults(func=run_list)


def run_fetch(args: argparse.Namespace) -> int:
    root = data_root(args.data_dir)
    path, downloaded = fetch_beir(args.name, root, url=args.url, progress=show_progress())
    print(f"{'downloaded' if downloaded else 'already present, nothing to do:'} {args.name} in {path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    root = data_root(args.data_dir)
    print(f"data root: {root}")
    names = list_beir(root)
    for name in names:
        print(f"beir/{name}")
    if not names:
        print(f"no BEIR data sets under {root / 'beir'}; download one with `winnow data fetch NAME`")
    return 0
