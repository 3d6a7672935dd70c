"""``winnow train CONFIG.yaml``: run a training recipe (dense, sparse or cross-encoder)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import subprocess
from pathlib import Path

import yaml

from indexes.io import check_output
from indexes.lock import output_lock
from retrieval.settings import DATA_ENV, DEFAULT_DATA_ROOT
from trainers.distributed import (
    finish_distributed,
    init_distributed,
    is_main_process,
    torchrun_command,
    under_torchrun,
)

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train", help="train a model (bi-encoder, sparse or cross-encoder) from a YAML recipe"
    )
    parser.add_argument("config", help="YAML recipe (see configs/)")
    parser.add_argument(
        "--output", default=None, help="model directory to write (default: the recipe's output)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help=f"data root holding beir/NAME/, where the recipe's data set names are looked up "
        f"(default: ${DATA_ENV}, else ./{DEFAULT_DATA_ROOT} in the current directory, else ../shared/data)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train on N processes of this machine under torchrun (DDP: gloo on CPUs, nccl on GPUs); "
        "the preparation runs once, on rank 0",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set training.max_steps=2 (repeatable; VALUE is YAML)",
    )
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, object]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. training.max_steps=100")
        overrides[key] = yaml.safe_load(value)
    return overrides


def run(args: argparse.Namespace) -> int:
    from retrieval.settings import data_root
    from trainers.config import load_config
    from trainers.config_checks import check_models

    if args.nproc < 1:
        raise ValueError(f"--nproc {args.nproc}: expected an integer >= 1")
    if args.data_dir and not Path(args.data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"--data-dir {args.data_dir} is not a directory")
    config = load_config(args.config, parse_overrides(args.set), data_root=data_root(args.data_dir))
    output = args.output or config.output
    if not output:
        raise ValueError(
            f"{args.config}: no output directory; pass --output DIR or set output: in the recipe"
        )
    check_output(output, "model")  # before loading models, mining or training
    if args.nproc > 1 and not under_torchrun():
        return launch(args, output)
    init_distributed()
    lock = output_lock(output) if is_main_process() else contextlib.nullcontext()
    with lock:  # a second writer of the same folder fails now, before any work
        check_models(config, args.config)  # every model the recipe names can load, before any data
        if config.kind == "dense":
            from trainers.dense import train_dense

            path = train_dense(config, output, resume=args.resume)
        elif config.kind == "cross":
            from trainers.cross import train_cross

            path = train_cross(config, output, resume=args.resume)
        else:
            from trainers.sparse import train_sparse

            path = train_sparse(config, output, resume=args.resume)
    finish_distributed()
    if is_main_process():
        print(f"wrote {path}")
    return 0


def launch(args: argparse.Namespace, output: str) -> int:
    """Run this command again on ``--nproc`` processes under torchrun; its exit status."""
    argv = ["train", args.config, "--output", str(output), *(f"--set={item}" for item in args.set)]
    argv += [f"--data-dir={args.data_dir}"] if args.data_dir else []
    argv += ["--resume"] if args.resume else []
    flags = ["-q"] if getattr(args, "quiet", False) else ["-v"] * getattr(args, "verbose", 0)
    command = torchrun_command(args.nproc, [*flags, *argv])
    logger.info("launching: %s", " ".join(shlex.quote(c) for c in command))
    return subprocess.run(command, check=False).returncode
