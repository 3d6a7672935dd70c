"""Training on several processes with torchrun (DDP): who prepares, who writes, how to launch.

``winnow train CONFIG --nproc N`` relaunches itself under ``torchrun --standalone --nproc_per_node N``
(:func:`torchrun_command`); on several machines run that command yourself with ``--nnodes``,
``--node_rank`` and ``--rdzv_endpoint``. Each process then joins one process group (``nccl`` on GPUs,
``gloo`` on CPUs, :func:`init_distributed`), and:

- the expensive preparation (mined negatives, guide embeddings, teacher scores, query clusters) runs on
  rank 0 while the other ranks wait at a barrier; they then read what rank 0 wrote to the shared
  cache folder instead of computing it again (:func:`rank_zero_first`);
- the trainer gives each rank its own batches of the one sampler sequence (accelerate's batch-sampler
  sharding), so together the ranks draw what one process would;
- checkpoints and the final model are written by rank 0 only (:mod:`trainers.loop`).

Example:
    >>> with rank_zero_first("preparation"):
    ...     preparation, rows = prepare(config, model, encoder)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

logger = logging.getLogger(__name__)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment; ``(0, 1)`` in a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return world()[0] == 0


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and world()[1] > 1


def init_distributed() -> bool:
    """Join torchrun's process group (``nccl`` with CUDA, else ``gloo``); False in a single process."""
    if not under_torchrun():
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            local, gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
            if local >= gpus:
                raise ValueError(
                    f"process {local} of this machine has no GPU: {gpus} visible; use --nproc {gpus}"
                )
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        rank, size = world()
        for handler in logging.getLogger().handlers:  # every log line says which rank wrote it
            handler.setFormatter(
                logging.Formatter(
                    f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s", "%H:%M:%S"
                )
            )
        logger.info("rank %d of %d joined the %s process group", rank, size, backend)
    return True


def finish_distributed() -> None:
    """Leave the process group (NCCL warns at exit otherwise); nothing in a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextmanager
def rank_zero_first(what: str) -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (which find rank 0's results cached).

    In a single process the block simply runs. Rank 0 logs how long ``what`` took; the others log that
    they read it from the cache, and how long that took.
    """
    if not init_distributed():
        yield
        return
    rank, size = world()
    if rank != 0:
        barrier()  # rank 0 is preparing
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if rank == 0:
        logger.info(
            "rank 0 computed the %s in %.1f s; %d other ranks read it from the cache", what, seconds, size - 1
        )
        barrier()  # release the others
    else:
        logger.info("rank %d read the %s from the cache in %.1f s", rank, what, seconds)


def parameter_checksum(model: object) -> float:
    """The sum of every parameter of ``model``: equal on every rank when DDP kept them in step."""
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))  # type: ignore[attr-defined]


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The command that runs ``winnow ARGV`` on ``nproc`` processes of this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "retrieval",
        *argv,
    ]
