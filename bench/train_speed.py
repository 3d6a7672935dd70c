"""Seconds per training step: cached-guide GIST vs MNRL vs sentence-transformers' GISTEmbedLoss.

All three train the same student on the same batches (SciFact train queries and positives, plus a
negative), interleaved round by round, with the same guide model for both GIST losses. The cached
guide's one-time cost (embedding every training text) is reported separately; a step does no guide
forward pass. A step is forward + backward + AdamW update.

    python -m bench.train_speed                      # all-MiniLM-L6-v2, guide all-mpnet-base-v2
    python -m bench.train_speed --steps 5 --batch-size 16 --max-length 64 --json runs/bench/train_speed.json
    python -m bench.train_speed --device cuda --precision bf16 --warmup 3 --steps 30 --batch-size 64

On a GPU each step is timed between two ``torch.cuda.synchronize()`` calls (device work is
asynchronous); ``--warmup`` steps per loss are run first and not timed. Last, the loss head alone
(MNRL vs cached-guide GIST on the same random embeddings, no encoder) is timed ``--head-repeats``
times: the difference is what the GIST rule itself adds to a step.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.common import command_line, save_record
from eval.report import render_markdown
from retrieval.corpus import open_beir
from retrieval.settings import resolve_beir
from trainers.data import from_beir
from trainers.losses import CachedGuideGISTLoss

logger = logging.getLogger("bench.train_speed")


def batches(
    data_dir: Path, batch_size: int, n: int
) -> list[tuple[list[str], list[str], list[str], np.ndarray]]:
    """``n`` batches of (anchors, positives, random negatives, text ids) from a BEIR train split."""
    data = from_beir(data_dir, "train", max_positives=1)
    qids = data.query_ids
    docs = list(data.corpus)
    rng = np.random.default_rng(0)
    out = []
    for b in range(n):  # round the query list again when n batches need more queries than it has
        chunk = [qids[i % len(qids)] for i in range(b * batch_size, (b + 1) * batch_size)]
        anchors = [data.queries[q] for q in chunk]
        positives = [data.corpus[data.positives[q][0]] for q in chunk]
        negatives = [data.corpus[docs[i]] for i in rng.integers(0, len(docs), len(chunk))]
        out.append((anchors, positives, negatives, np.arange(3 * len(chunk)).reshape(3, -1).T))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--guide", default="sentence-transformers/all-mpnet-base-v2")
    parser.add_argument("--data", default="scifact", help="BEIR folder, or a name under $WINNOW_DATA/beir")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loss (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per loss first")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: forward under torch.autocast"
    )
    parser.add_argument(
        "--head-repeats", type=int, default=50, help="repeats of the loss-head-only timing (0: skip it)"
    )
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss
    from sentence_transformers.util import batch_to_device

    data_dir = open_beir(resolve_beir(args.data)).root
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.warmup < 0 or args.steps < 1:
        parser.error(f"--warmup must be >= 0 and --steps >= 1, got {args.warmup} and {args.steps}")
    torch.manual_seed(0)
    student = SentenceTransformer(args.student, device=str(device))
    student.max_seq_length = args.max_length
    guide = SentenceTransformer(args.guide, device=str(device))
    guide.max_seq_length = args.max_length
    data = batches(data_dir, args.batch_size, args.warmup + args.steps)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    start = time.perf_counter()
    texts = [t for a, p, n, _ in data for t in (*a, *p, *n)]
    guide_matrix = guide.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    cache_seconds = time.perf_counter() - start

    losses = {
        "MNRL": MultipleNegativesRankingLoss(student),
        "GIST (cached guide, winnow)": CachedGuideGISTLoss(student, guide_matrix, temperature=0.05).to(
            device
        ),
        "GISTEmbedLoss (sentence-transformers)": GISTEmbedLoss(student, guide, temperature=0.05),
    }
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-6)
    times: dict[str, list[float]] = {name: [] for name in losses}

    def step(name: str, batch_no: int) -> float:
        anchors, positives, negatives, ids = data[batch_no]
        offset = batch_no * 3 * args.batch_size
        labels = torch.tensor(ids + offset, dtype=torch.float32, device=device)
        sync()
        t0 = time.perf_counter()
        features = [batch_to_device(student.preprocess(t), device) for t in (anchors, positives, negatives)]
        with autocast():
            loss = losses[name](features, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        sync()
        return time.perf_counter() - t0

    names = list(losses)
    # Round robin over the losses, the first --warmup batches untimed. The order rotates every batch:
    # without it, on a GPU, the loss that ran first on each batch was slowest (the first to meet a
    # batch's padded shape probably pays for the kernel choice).
    for batch_no in range(args.warmup + args.steps):
        shift = batch_no % len(names)
        for name in names[shift:] + names[:shift]:
            student.load_state_dict(initial)
            elapsed = step(name, batch_no)
            if batch_no >= args.warmup:
                times[name].append(elapsed)
    mnrl = statistics.median(times["MNRL"])

    # The loss head alone: the same random embeddings into MNRL and the cached-guide GIST loss, forward
    # and backward, no encoder. What the GIST rule adds to a step is the difference of these two.
    def head_ms(loss_fn: Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor]) -> float:
        dim = student.get_sentence_embedding_dimension()
        embeddings = [torch.randn(args.batch_size, dim, device=device, requires_grad=True) for _ in range(3)]
        labels = torch.tensor(data[0][3], dtype=torch.float32, device=device)

        def once() -> None:
            with autocast():
                loss = loss_fn(embeddings, labels)
            loss.backward()

        for _ in range(3):  # warm-up
            once()
        sync()
        t0 = time.perf_counter()
        for _ in range(args.head_repeats):
            once()
        sync()
        return 1000 * (time.perf_counter() - t0) / args.head_repeats

    heads: dict[str, float] = {}
    if args.head_repeats > 0:
        heads = {
            "MNRL": head_ms(losses["MNRL"].compute_loss_from_embeddings),
            "GIST (cached guide, winnow)": head_ms(
                losses["GIST (cached guide, winnow)"].loss_from_embeddings
            ),
        }
    rows = [
        {
            "loss": name,
            "seconds_per_step": round(statistics.median(t), 4),
            "vs_mnrl": round(statistics.median(t) / mnrl, 3),
        }
        for name, t in times.items()
    ]
    command = command_line()
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    print(f"# {command}")
    print(
        f"# student {args.student}, guide {args.guide}, batch {args.batch_size} "
        f"(anchor, positive, negative), max length {args.max_length}, {where}, {args.precision}, "
        f"median of {args.steps} interleaved steps after {args.warmup} warm-up"
    )
    table = [[r["loss"], f"{r['seconds_per_step']:.3f}", f"{r['vs_mnrl']:.2f}x"] for r in rows]
    print(render_markdown(["loss", "s/step", "vs MNRL"], table), end="")
    print(f"\nOne-time guide embedding of the {len(texts)} texts of these batches: {cache_seconds:.1f} s")
    if heads:
        print(
            f"Loss head alone (given embeddings, forward + backward, mean of {args.head_repeats}): "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in heads.items())
        )
    if args.json:
        save_record(
            args.json,
            device=where,
            precision=args.precision,
            rows=rows,
            guide_cache_seconds=cache_seconds,
            head_ms=heads,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
