"""``seg-ros export``: a model to a checked ONNX file, and/or the TensorRT engine the node will load."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from seg_ros.runtime import PRECISIONS

    p = sub.add_parser("export", help="export a model to ONNX (checked against torch) and/or build a TensorRT engine",
                       description="--onnx writes one self-contained ONNX file (opset >= 18) with the model's "
                                   "description embedded; --tensorrt builds the engine the node will load into the "
                                   "engine cache, so a robot never builds at start-up.")
    p.add_argument("--model", default=a.default_model(),
                   help="model file, shipped model name or (for --tensorrt) .onnx")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX export here")
    p.add_argument("--tensorrt", action="store_true", help="build (or verify) the TensorRT engine in the cache")
    p.add_argument("--resolution", type=a.resolution, default=None,
                   help="HxW to export / build for (default: the model's input size)")
    p.add_argument("--dynamic", action="store_true", help="ONNX: leave height and width dynamic")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 18 (default: 18)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX Runtime vs torch check")
    p.add_argument("--device", default="auto",
                   help="TensorRT: the CUDA device, auto or cuda:N (default: auto = cuda:0 when CUDA is available)")
    p.add_argument("--precision", default="fp16", choices=PRECISIONS,
                   help="TensorRT engine precision (default: fp16)")
    a.add_accel_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from seg_ros.core.paths import check_output_file

    if not args.onnx and not args.tensorrt:
        raise SegRosError("give --onnx OUT.onnx and/or --tensorrt.")
    if args.onnx:
        check_output_file(args.onnx, "--onnx")
    runtime = a.runtime_options(args) if args.tensorrt else None  # checks --cache-dir and --calibration first
    model = args.model
    if args.onnx:
        from seg_ros.runtime.export import export_onnx

        if args.dynamic and args.resolution is not None:
            raise SegRosError("give either --resolution HxW (a fixed-size export) or --dynamic, not both.")
        rep = export_onnx(args.model, args.onnx, size=args.resolution, dynamic=args.dynamic, opset=args.opset,
                          check=args.check)
        size = "dynamic HxW" if rep.size is None else f"{rep.size[0]}x{rep.size[1]}"
        print(f"wrote {rep.path} ({rep.bytes / 1e6:.1f} MB, opset {rep.opset}, {size}) in {rep.seconds:.1f} s")
        if args.check:
            sizes = ", ".join(f"{h}x{w}" for h, w in rep.checked_sizes)
            print(f"checked against torch at {sizes}: max |Δlogit| {rep.max_abs_diff:.2e}, "
                  f"argmax agreement {rep.agreement:.4%}")
        model = str(Path(args.onnx))
    if runtime is not None:
        from seg_ros.tools.engine import build_tensorrt_engine

        entry = build_tensorrt_engine(model, args.resolution, args.device, args.precision, runtime)
        print(f"TensorRT engine ready: {entry}")
