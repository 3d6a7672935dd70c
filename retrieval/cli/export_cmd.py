"""``winnow export onnx``: export an encoder to ONNX (optionally optimised and int8-quantised)."""

from __future__ import annotations

import argparse

from retrieval.onnx_export import OPTIMIZE_LEVELS, QUANTIZE_MODES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a model")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="export to ONNX for onnxruntime")
    onnx.add_argument("--model", required=True, help="hub id or model directory (dense, or a SPLADE MLM)")
    onnx.add_argument("--out", required=True, help="directory to write (loads with retrieval.load_encoder)")
    onnx.add_argument(
        "--optimize", choices=OPTIMIZE_LEVELS, default=None, help="onnxruntime graph optimisation"
    )
    onnx.add_argument("--quantize", choices=QUANTIZE_MODES, default=None, help="dynamic weight quantisation")
    onnx.add_argument("--opset", type=int, default=17)
    onnx.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    from retrieval.onnx_export import export_onnx

    path = export_onnx(args.model, args.out, optimize=args.optimize, quantize=args.quantize, opset=args.opset)
    print(f"exported {args.model} to {path}")
    return 0
