"""``seg-ros tune-crf``: cross-validate the dense CRF's kernel settings on labelled frames."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from seg_ros.crf.config import METHODS

    p = sub.add_parser("tune-crf", help="cross-validate the dense CRF's kernel settings on labelled frames")
    p.add_argument("--data", required=True, help="CamVid-layout root: <data>/<split>/images and labels")
    p.add_argument("--split", default="val")
    p.add_argument("--model", default="liteseg_mobilenetv2_camvid", help="model file or shipped name")
    p.add_argument("--resolution", type=a.resolution, default=None, help="inference size HxW (default: the model's)")
    p.add_argument("--device", default="auto", help=a.AUTO_DEVICE_HELP)
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="CRF used for the search (default: %(default)s)")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                   help="values to try, repeatable, e.g. w1=1,2,4 theta_alpha=30,60,121")
    a.add_set(p, "any node parameter by its full name (docs/node.md), repeatable, applied over the other options: "
                 "crf.* are the fixed base settings, e.g. crf.iterations=5 (default: DeepLab-LargeFOV's)")
    p.add_argument("--every", type=int, default=1, help="use every n-th frame of the split (default: 1)")
    p.add_argument("--preset", metavar="YAML", help="write a node parameter file with the best settings")
    p.add_argument("--preset-method", choices=METHODS, default="fast",
                   help="crf.method in the --preset file (default: %(default)s)")
    p.add_argument("--json", help="write every grid point's scores")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.cli.options import apply_sets
    from seg_ros.config import crf_config, defaults, segmenter_kwargs
    from seg_ros.core.paths import check_output_file
    from seg_ros.io.datasets import FolderDataset
    from seg_ros.pipeline import Segmenter, format_resolution
    from seg_ros.tools.crftune import format_report, parse_grid, tune_crf, write_preset
    from seg_ros.tools.reports import write_report

    for option, path in (("--preset", args.preset), ("--json", args.json)):
        if path:
            check_output_file(path, option)
    grid = parse_grid(args.grid or [])
    if not grid:
        raise SegRosError("give at least one --grid NAME=V1,V2,...")
    if args.every < 1:
        raise SegRosError("--every must be at least 1.")
    values = {**defaults(), "model": args.model, "device": args.device,
              "resolution": format_resolution(args.resolution) if args.resolution else ""}
    values = a.with_crf_method(apply_sets(values, args.set), args.method)
    base = crf_config(values)
    data = FolderDataset(args.data, args.split)
    seg = Segmenter(**{**segmenter_kwargs(values), "crf": None})  # the search applies each CRF itself
    frames = [data[i] for i in range(0, len(data), args.every)]
    result = tune_crf(seg, frames, base, grid, progress=not args.quiet)
    result.model, result.data = seg.describe(), f"{data.name} ({len(frames)} frames)"
    result.command = a.command_line(args)
    print(f"{result.data}, {result.model}")
    print(format_report(result))
    if args.preset:
        path = write_preset(args.preset, result, base, format_resolution(seg.resolution), args.preset_method,
                            dataset=data.name, model=values["model"])
        print(f"wrote {path}")
    if args.json:
        print(f"wrote {write_report(result, args.json)}")
