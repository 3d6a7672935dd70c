"""Document encoding speed and quality: PyTorch fp32 vs ONNX fp32 vs ONNX int8 (plain, fused), side by side.

For the dense model (all-MiniLM-L6-v2) and a SPLADE document encoder (SPLADE-tiny by default), the
corpus is encoded in chunks, each chunk by every variant in turn (so load changes hit all alike);
documents per second count encoding time only. Quality is nDCG@10 on the test split with exact
search: dense queries are encoded by the same variant; sparse queries by the PyTorch SPLADE query
encoder for every variant, so only the document encoder differs. Every variant is loaded by
``retrieval.load_encoder``, the path users run, and the CPU's int8-relevant instruction sets are
printed beside the ratios (int8 speed-ups depend on them: VNNI or not).

    python -m bench.encode_speed                         # SciFact, full corpus, on the CPU
    python -m bench.encode_speed --limit 1000 --json runs/bench/encode_speed.json
    python -m bench.encode_speed --device cuda --limit 2000   # PyTorch on the GPU, ONNX on its CUDA provider

ONNX models are exported once into ``--work`` and reused.

``--pooling`` instead times the pooling choices on the dense model (PyTorch, same batch, interleaved):
mean pooling against latent attention (512 latents, 8 heads) and multi-layer pooling (4 queries,
8 heads) built on the same transformer; ``--pooling-model NAME=DIR`` times trained models instead::

    python -m bench.encode_speed --pooling --limit 1000
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from bench.common import command_line, log_progress, save_record
from eval.metrics import drop_self_hits, evaluate_run
from indexes.faiss_index import FaissIndex
from retrieval.corpus import document_text, open_beir
from retrieval.encoders import load_encoder
from retrieval.onnx_export import export_onnx
from retrieval.settings import resolve_beir

logger = logging.getLogger("bench.encode_speed")


X86_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_features() -> str:
    """The CPU model and which of the x86 instruction sets int8 kernels use it has (from /proc/cpuinfo);
    onnxruntime's int8 GEMM uses VNNI when present and VPMADDUBSW (AVX2) otherwise."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    lines = info.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    present = [f for f in X86_FEATURES if f in flags]
    absent = [f for f in X86_FEATURES if f not in flags]
    return f"{model}; has {', '.join(present) or 'none'}; lacks {', '.join(absent) or 'none'}"


def exported(model: str, work: Path, quantize: str | None, optimize: str | None = None) -> Path:
    """``model`` exported to ONNX under ``work`` (``quantize``: ``int8``, or None for fp32; ``optimize``:
    a graph optimisation level, or None), once."""
    out = work / "-".join([Path(model).name, quantize or "fp32", *([optimize] if optimize else [])])
    if not (out / "model.onnx").is_file():
        export_onnx(model, out, quantize=quantize, optimize=optimize)
    return out


def encode_interleaved(variants: dict, texts: list[str], chunk: int, batch: int) -> tuple[dict, dict]:
    """Document vectors and encoding seconds per variant, each chunk encoded by every variant in turn."""
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in variants}
    seconds = dict.fromkeys(variants, 0.0)
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        for name, encoder in variants.items():
            t0 = time.perf_counter()
            out = encoder.encode_documents(part, batch_size=batch)
            vectors[name].append(out.toarray() if hasattr(out, "toarray") else np.asarray(out, np.float32))
            seconds[name] += time.perf_counter() - t0
        logger.info("%d/%d documents", min(start + chunk, len(texts)), len(texts))
    return {n: np.concatenate(v) for n, v in vectors.items()}, seconds


def dense_ndcg(
    doc_vectors: np.ndarray, doc_ids: list[str], query_vectors: np.ndarray, query_ids, qrels
) -> float:
    index = FaissIndex(doc_vectors.shape[1], "Flat", device="cpu")
    index.add(doc_vectors, doc_ids)
    run = drop_self_hits(index.search(query_vectors, 1001).as_run(query_ids))
    return evaluate_run(qrels, run, ["ndcg@10"])["ndcg@10"]


def sparse_ndcg(
    doc_vectors: np.ndarray, doc_ids: list[str], query_vectors: np.ndarray, query_ids, qrels
) -> float:
    from scipy import sparse

    scores = (sparse.csr_matrix(query_vectors) @ sparse.csr_matrix(doc_vectors).T).toarray()
    top = np.argsort(-scores, axis=1)[:, :1001]
    run = {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}
    return evaluate_run(qrels, drop_self_hits(run), ["ndcg@10"])["ndcg@10"]


POOLING_SPECS = {
    "latent_attention": {"type": "latent_attention", "latents": 512, "heads": 8},
    "multi_layer": {"type": "multi_layer", "queries": 4, "heads": 8},
}


def pooling_speed(args: argparse.Namespace, texts: list[str]) -> int:
    """Encode throughput of each pooling against mean pooling on the same transformer and batch."""
    from retrieval.encoders import DenseEncoder
    from retrieval.pooling import build

    if args.pooling_model:
        pairs = [spec.split("=", 1) for spec in args.pooling_model]
        variants = {name: load_encoder(path, device=args.device) for name, path in pairs}
    else:
        variants = {"mean": load_encoder(args.dense, device=args.device)}
        for name, spec in POOLING_SPECS.items():
            variants[name] = DenseEncoder(build(args.dense, spec, device=args.device), name=name)
    _, seconds = encode_interleaved(variants, texts, args.chunk, args.batch_size)
    base = next(iter(variants))
    print(f"# {command_line()}")
    print(f"# {len(texts)} documents, batch {args.batch_size}, {args.chunk}-document chunks interleaved")
    print(f"| pooling | docs/s | time vs {base} |\n|---|---|---|")
    rows = []
    for name in variants:
        rate = len(texts) / seconds[name]
        rows.append({"pooling": name, "docs_per_second": rate, "time_ratio": seconds[name] / seconds[base]})
        print(f"| {name} | {rate:.1f} | {seconds[name] / seconds[base]:.3f}x |")
    if args.json:
        save_record(args.json, device=args.device, rows=rows)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="scifact", help="BEIR folder, or a name under $WINNOW_DATA/beir")
    parser.add_argument("--dense", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--sparse", default="rasyosef/splade-tiny", help="SPLADE MLM document encoder")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N documents")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--work", default="runs/bench/onnx", help="where exported models are kept")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu (default) or cuda, cuda:1, ...: PyTorch runs there and ONNX on the CUDA provider "
        "(needs onnxruntime-gpu)",
    )
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    parser.add_argument("--pooling", action="store_true", help="time pooling choices instead (module doc)")
    parser.add_argument(
        "--pooling-model", action="append", default=[], metavar="NAME=DIR", help="trained models to time"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="batch of the --pooling timings")
    args = parser.parse_args()
    log_progress()
    data = open_beir(resolve_beir(args.data))
    docs = data.corpus()[: args.limit]
    texts, doc_ids = [document_text(d) for d in docs], [d["_id"] for d in docs]
    if args.pooling or args.pooling_model:
        return pooling_speed(args, texts)
    queries, qrels = data.queries("test"), data.qrels("test")
    query_ids = list(queries)
    work = Path(args.work)
    rows = []
    for kind, model in (("dense", args.dense), ("sparse", args.sparse)):
        torch_encoder = load_encoder(model, device=args.device)
        variants = {
            "torch fp32": torch_encoder,
            "onnx fp32": load_encoder(exported(model, work, None), device=args.device),
            "onnx int8": load_encoder(exported(model, work, "int8"), device=args.device),
            "onnx int8, O2 fusions": load_encoder(exported(model, work, "int8", "O2"), device=args.device),
        }
        # SPLADE materialises (batch, tokens, vocabulary) logits: small batches keep memory bounded.
        vectors, seconds = encode_interleaved(variants, texts, args.chunk, 32 if kind == "dense" else 8)
        for name, encoder in variants.items():
            if kind == "dense":
                q = encoder.encode_queries([queries[i] for i in query_ids])
                ndcg = dense_ndcg(vectors[name], doc_ids, q, query_ids, qrels)
            else:
                q = torch_encoder.encode_queries([queries[i] for i in query_ids]).toarray()
                ndcg = sparse_ndcg(vectors[name], doc_ids, q, query_ids, qrels)
            rows.append(
                {
                    "model": model,
                    "kind": kind,
                    "variant": name,
                    "docs_per_second": len(texts) / seconds[name],
                    "ndcg@10": ndcg,
                }
            )
    command = command_line()
    print(f"# {command}")
    print(
        f"# {len(texts)} documents of {data.name}, chunks of {args.chunk} interleaved across variants, "
        f"device {args.device}; every variant loaded by retrieval.load_encoder"
    )
    print(
        f"# CPU: {cpu_features()}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__}"
    )
    print("| model | variant | docs/s | speed-up | nDCG@10 | vs fp32 |\n|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["variant"] == "torch fp32")
        row["speedup"] = row["docs_per_second"] / base["docs_per_second"]
        row["ndcg_change"] = row["ndcg@10"] / base["ndcg@10"] - 1
        print(
            f"| {row['model']} | {row['variant']} | {row['docs_per_second']:.1f} | {row['speedup']:.2f}x | "
            f"{row['ndcg@10']:.4f} | {100 * row['ndcg_change']:+.2f}% |"
        )
    if args.json:
        save_record(args.json, device=args.device, cpu=cpu_features(), rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
