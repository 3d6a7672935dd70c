"""Ablation of the dense recipe: base model, MNRL, GIST, GIST + TAS-Balanced, full (+ distillation).

Every variant is trained with ``winnow train`` on the data set's train split (NFCorpus selects its
checkpoint on dev) and scored with ``winnow eval beir`` on the test split, exactly as a user would
run them. Results land in ``--out`` (one JSON per run, reused when present, so an interrupted
ablation resumes) and the script prints a Markdown table.

    python -m experiments.train_ablation --datasets scifact nfcorpus
    python -m experiments.train_ablation --datasets scifact --variants mnrl full --set training.epochs=1

Model selection without the test split: ``--held-out N`` trains on all but the last N training
queries (``data.max_queries``) and scores those N held-out training queries instead of the test split
(``winnow eval beir --split train --skip-queries``), so recipe settings are compared on data the
models never saw and the test split stays for the final report:

    python -m experiments.train_ablation --datasets scifact --variants mnrl full --held-out 159 \
        --set guide.margin=-0.05 --out runs/select/margin-0.05

Where a data set has a dev split, ``--score dev`` scores every model on all of it (the whole corpus,
graded qrels: ``winnow eval beir --split dev``) instead of the test split, so a setting is chosen on
dev first; a later run with the same ``--out`` reuses the trained models to report test:

    python -m experiments.train_ablation --datasets nfcorpus --variants full --score dev \
        --set data.max_positives=16 --out runs/select/pos16
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from bench.common import command_line, save_record

ROOT = Path(__file__).resolve().parents[1]  # recipes are configs/NAME.yaml under the repository root

VARIANTS = {"mnrl": "dense-mnrl", "gist": "dense-gist", "gist-tas": "dense-gist-tas", "full": "dense-full"}
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Per data set: the split that selects checkpoints (None: last checkpoint) and extra overrides.
DATASET_SETTINGS: dict[str, list[str]] = {
    "scifact": [],
    "nfcorpus": ["data.dev_split=dev", "data.dev_max_queries=100"],
}

logger = logging.getLogger("experiments.train_ablation")


def winnow(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("winnow")), *args]
    logger.info("$ %s", " ".join(command))
    subprocess.run(command, check=True, cwd=ROOT)


def evaluate(
    model: str, dataset: str, out: Path, held_out: tuple[int, int] | None = None, score: str = "test"
) -> dict:
    """Score ``model`` on the ``score`` split (test or dev), or with ``held_out=(train, total)`` on
    the training queries after the first ``train``."""
    if not out.is_file():
        split = (
            ["--split", score]
            if held_out is None
            else ["--split", "train", "--skip-queries", str(held_out[0])]
        )
        winnow("-q", "eval", "beir", "--model", model, "--data", dataset, *split, "--output", str(out))
    return json.loads(out.read_text())


def held_out_split(dataset: str, held_out: int) -> tuple[int, int]:
    """``(training queries kept, total)`` for ``--held-out``: the training queries with a relevant
    document, in the order ``data.max_queries`` takes them; the last ``held_out`` are scored."""
    from eval.beir import held_out_queries
    from retrieval.corpus import open_beir
    from retrieval.settings import resolve_beir

    data = open_beir(resolve_beir(dataset))
    total = len(held_out_queries(data.qrels("train"), data.queries("train"), 0))
    if not 0 < held_out < total:
        raise SystemExit(
            f"--held-out {held_out}: {dataset} has {total} training queries; give 1..{total - 1}"
        )
    return total - held_out, total


def check_dev_splits(datasets: list[str]) -> None:
    """Refuse ``--score dev`` before any training when a data set has no dev qrels."""
    from retrieval.corpus import open_beir
    from retrieval.settings import resolve_beir

    for dataset in datasets:
        data = open_beir(resolve_beir(dataset))
        if "dev" not in data.splits():
            raise SystemExit(f"--score dev: {data.root} has no dev qrels (its splits: {data.splits()})")


def run(
    dataset: str,
    variant: str,
    out_dir: Path,
    overrides: list[str],
    *,
    split: tuple[int, int] | None = None,
    score: str = "test",
) -> dict:
    result_file = out_dir / f"{dataset}-{variant}{'' if score == 'test' else '-' + score}.json"
    if split is not None:
        overrides = [f"data.max_queries={split[0]}", *overrides]
    if variant == "base":
        return evaluate(BASE_MODEL, dataset, result_file, split, score)
    model_dir = out_dir / "models" / f"{dataset}-{variant}"
    if not (model_dir / "meta.json").is_file():
        start = time.perf_counter()
        sets = [f"data.dataset={dataset}", *DATASET_SETTINGS.get(dataset, []), *overrides]
        winnow(
            "train",
            f"configs/{VARIANTS[variant]}.yaml",
            "--output",
            str(model_dir),
            *[arg for s in sets for arg in ("--set", s)],
            *(["--resume"] if model_dir.with_name(model_dir.name + ".checkpoints").exists() else []),
        )
        (model_dir / "train_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    result = evaluate(str(model_dir), dataset, result_file, split, score)
    meta = json.loads((model_dir / "meta.json").read_text())
    result["train_steps"] = meta.get("steps")
    result["train_seconds"] = (
        float((model_dir / "train_seconds.txt").read_text())
        if (model_dir / "train_seconds.txt").exists()
        else None
    )
    return result


def significance_line(dataset: str, rows: dict[str, dict], variants: list[str]) -> None:
    """A table row of paired randomisation p-values (nDCG@10) against MNRL, where per-query scores exist."""
    from eval.significance import paired_comparison

    reference = rows.get("mnrl", {}).get("per_query", {}).get("ndcg@10")
    if reference is None:
        return
    cells = []
    for variant in variants:
        scores = rows[variant].get("per_query", {}).get("ndcg@10")
        if variant == "mnrl" or scores is None:
            cells.append("")
            continue
        cells.append(f"p = {paired_comparison(reference, scores).p_randomization:.3f}")
    print(f"| {dataset} vs MNRL | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--variants", nargs="+", default=["base", *VARIANTS], choices=["base", *VARIANTS])
    parser.add_argument("--out", default="runs/ablation", help="results and models (default runs/ablation)")
    parser.add_argument("--set", action="append", default=[], help="override for every recipe (KEY=VALUE)")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    parser.add_argument(
        "--held-out",
        type=int,
        default=None,
        metavar="N",
        help="train on all but the last N training queries and score those N instead of the test split",
    )
    parser.add_argument(
        "--score",
        choices=["test", "dev"],
        default="test",
        help="split the models are scored on (default test; dev: select first, report test later)",
    )
    args = parser.parse_args()
    if args.score == "dev" and args.held_out is not None:
        parser.error("--score dev and --held-out both choose the scored queries; give one")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out_dir = ROOT / args.out
    if args.json:
        clash = {(out_dir / f"{d}-{v}.json").resolve() for d in args.datasets for v in args.variants}
        if Path(args.json).resolve() in clash:
            raise SystemExit(
                f"--json {args.json} is the per-run result file of one variant in --out {args.out}; "
                "the table would overwrite it (pick another name, e.g. table.json)"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, dict]] = {}
    if args.score == "dev":
        check_dev_splits(args.datasets)
    for dataset in args.datasets:
        split = held_out_split(dataset, args.held_out) if args.held_out is not None else None
        for variant in args.variants:
            result = run(dataset, variant, out_dir, args.set, split=split, score=args.score)
            table.setdefault(dataset, {})[variant] = result
            m = table[dataset][variant]["metrics"]
            logger.info("%s %s: nDCG@10 %.4f R@100 %.4f", dataset, variant, m["ndcg@10"], m["recall@100"])
    command = command_line()
    print(f"# {command}\n")
    print("| data set | " + " | ".join(args.variants) + " |")
    print("|---|" + "---|" * len(args.variants))
    scored = f"held-out {args.held_out}" if args.held_out is not None else args.score
    for dataset, rows in table.items():
        base = rows.get("base", {}).get("metrics", {}).get("ndcg@10")
        cells = []
        for variant in args.variants:
            value = rows[variant]["metrics"]["ndcg@10"]
            delta = f" ({value - base:+.4f})" if base is not None and variant != "base" else ""
            cells.append(f"{value:.4f}{delta}")
        print(f"| {dataset} {scored} nDCG@10 | " + " | ".join(cells) + " |")
        print(
            f"| {dataset} {scored} R@100 | "
            + " | ".join(f"{rows[v]['metrics']['recall@100']:.4f}" for v in args.variants)
            + " |"
        )
        significance_line(dataset, rows, args.variants)
    if args.json:
        save_record(args.json, results=table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
