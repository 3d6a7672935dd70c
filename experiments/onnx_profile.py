"""Where ONNX encoding time goes on this CPU: onnxruntime's per-operator profile of each export variant.

The dense model is exported in fp32 (``winnow export onnx``, plain and ``--optimize O2``); the variants
are built from those graphs: Winnow's int8 (per-channel int8 weights of the weight MatMuls), per-tensor
int8, int8 of every MatMul (attention's activation products too), and the fused graph with its
Attention nodes quantised as well (QAttention). Each variant encodes the same SciFact documents (sorted
by length, batches of 32, as ``OnnxEncoder`` does) with onnxruntime's profiler on; the table gives the
wall time and each operator type's share of kernel time::

    python -m experiments.onnx_profile --docs 192
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import command_line, log_progress, save_record
from eval.report import render_markdown
from retrieval.corpus import document_text, open_beir
from retrieval.onnx_export import export_onnx
from retrieval.settings import resolve_beir

logger = logging.getLogger("experiments.onnx_profile")
TOP_OPS = 6


def variants(fp32: Path, fused: Path, work: Path) -> dict[str, Path]:
    """The graphs to profile, built from the fp32 export and its ``--optimize O2`` export."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_ops = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    out = {"fp32": fp32, "fp32, O2 fusions": fused}
    recipes = {
        "int8 weight MatMuls, per channel (winnow)": (fp32, {"per_channel": True, "op_types": ["MatMul"]}),
        "int8 weight MatMuls, per tensor": (fp32, {"per_channel": False, "op_types": ["MatMul"]}),
        "int8 every MatMul": (fp32, {"per_channel": True, "op_types": ["MatMul"], "both": True}),
        "O2 fusions + int8 MatMul and Attention": (
            fused,
            {"per_channel": True, "op_types": ["MatMul", "Attention"]},
        ),
    }
    for i, (name, (source, r)) in enumerate(recipes.items()):
        target = work / f"v{i}.onnx"
        options = dict(float_ops, MatMulConstBOnly=False) if r.get("both") else float_ops
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=r["per_channel"],
            op_types_to_quantize=r["op_types"],
            extra_options=options,
        )
        out[name] = target
    return out


def profile(
    graph: Path, tokenizer: object, texts: list[str], max_length: int
) -> tuple[float, dict[str, float]]:
    """Wall seconds to encode ``texts`` and kernel seconds per operator type."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        runtime = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in runtime.get_inputs()]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        start = time.perf_counter()
        for i in range(0, len(texts), 32):
            batch = [texts[j] for j in order[i : i + 32]]
            encoded = tokenizer(
                batch, padding=True, truncation=True, max_length=max_length, return_tensors="np"
            )
            feeds = {
                n: encoded[n].astype(np.int64) if n in encoded else np.zeros_like(encoded["input_ids"])
                for n in names
            }
            runtime.run(None, feeds)
        seconds = time.perf_counter() - start
        events = json.loads(Path(runtime.end_profiling()).read_text())
    ops: dict[str, float] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            ops[event["args"]["op_name"]] += event["dur"] / 1e6
    return seconds, dict(ops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--data", default="scifact")
    parser.add_argument("--docs", type=int, default=192)
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    log_progress()
    from transformers import AutoTokenizer

    texts = [document_text(d) for d in open_beir(resolve_beir(args.data)).corpus()[: args.docs]]
    with tempfile.TemporaryDirectory(prefix="winnow-onnx-profile-") as tmp:
        work = Path(tmp)
        export_onnx(args.model, work / "fp32")
        export_onnx(args.model, work / "o2", optimize="O2")
        meta = json.loads((work / "fp32" / "meta.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(str(work / "fp32"))
        graphs = variants(work / "fp32" / "model.onnx", work / "o2" / "model.onnx", work)
        figures = {}
        for name, graph in graphs.items():
            profile(graph, tokenizer, texts[:32], meta["max_length"])  # warm-up
            figures[name] = profile(graph, tokenizer, texts, meta["max_length"])
            logger.info("%s: %.2f s", name, figures[name][0])
    base = figures["fp32"][0]
    rows = []
    for name, (seconds, ops) in figures.items():
        total = sum(ops.values())
        top = sorted(ops.items(), key=lambda kv: -kv[1])[:TOP_OPS]
        shares = ", ".join(f"{op} {100 * t / total:.0f}% ({t:.2f} s)" for op, t in top)
        rows.append([name, f"{seconds:.2f}", f"{base / seconds:.2f}x", shares])
    print(f"# {command_line()}")
    print(f"# {len(texts)} documents of {args.data}, batches of 32, each variant loaded afresh")
    print(render_markdown(["variant", "seconds", "vs fp32", "kernel time by operator"], rows), end="")
    if args.json:
        save_record(args.json, figures={n: {"seconds": s, "ops": o} for n, (s, o) in figures.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
