"""``seg-ros bench crf``: the dense CRF stage, exact vs fast, and its mIoU gain on synthetic scenes and CamVid."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError


def add_parser(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("crf", help="the dense CRF stage, exact vs fast, and its mIoU gain")
    p.add_argument("--model", default=a.default_model(), help="model of the synthetic-scene accuracy test")
    p.add_argument("--resolution", type=a.resolution, default=(512, 1024),
                   help="frame size HxW of the speed test (default: 512x1024)")
    p.add_argument("--device", action="append",
                   help="repeatable (default: auto = cpu, and cuda:0 when CUDA is available); the accuracy tests "
                        "run on the last one")
    p.add_argument("--classes", type=a.number(int, 2), default=19, help="classes in the speed test (default: 19)")
    p.add_argument("--iterations", type=a.number(int, 1), default=5,
                   help="iterations in the speed test (default: 5)")
    p.add_argument("--gate", type=a.number(float, 0.0, 1.0), default=0.9,
                   help="also time and score the fast CRF refining only pixels below this confidence "
                        "(default: 0.9; 0 = not)")
    p.add_argument("--scenes", type=a.number(int, 0), default=8,
                   help="synthetic scenes scored with --model in the accuracy test (default: 8; 0 = none)")
    p.add_argument("--scene-size", type=a.resolution, default=(720, 960), metavar="HxW",
                   help="size of those scenes (default: 720x960, where the fast CRF's auto grid is 1/3)")
    p.add_argument("--downsample", type=int, action="append", metavar="STEP",
                   help="also score the fast CRF on a grid of this step in the accuracy tests, repeatable")
    p.add_argument("--camvid", metavar="DIR", help="also score --camvid-model on DIR/val (CamVid layout)")
    p.add_argument("--camvid-model", default="liteseg_mobilenetv2_camvid",
                   help="model for --camvid (default: %(default)s)")
    p.add_argument("--camvid-params", metavar="YAML",
                   help="with --camvid: take the model, resolution and CRF kernel settings from this node "
                        "parameter file (e.g. config/camvid_crf.yaml) instead")
    p.add_argument("--frames", type=a.number(int, 1), default=30, help="timed frames (default: %(default)s)")
    p.add_argument("--warmup", type=a.number(int, 0), default=2, help="untimed frames first, at most 2 (default: 2)")
    p.add_argument("--json", default="bench.json", help="where to write the JSON report (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.core.paths import check_output_file, require_dir, require_file
    from seg_ros.crf import LIMITS
    from seg_ros.tools.bench import bench_devices
    from seg_ros.tools.crfsuite import CRFBenchPlan, run_crf_bench
    from seg_ros.tools.reports import write_report

    check_output_file(args.json, "--json")
    if args.camvid:
        require_dir(args.camvid, "--camvid")
    if args.camvid_params:
        require_file(args.camvid_params, "--camvid-params")
    hi = LIMITS["downsample"][1]
    if any(not 1 <= step <= hi for step in args.downsample or []):
        raise SegRosError(f"--downsample takes grid steps from 1 to {hi:g}.")
    plan = CRFBenchPlan(model=args.model, devices=bench_devices(args.device), size=args.resolution,
                        classes=args.classes, iterations=args.iterations, frames=args.frames, warmup=args.warmup,
                        gate=args.gate, scenes=args.scenes, scene_size=args.scene_size,
                        downsample=args.downsample or [], camvid=args.camvid, camvid_model=args.camvid_model,
                        camvid_params=args.camvid_params)
    report = run_crf_bench(plan, show=print)
    print(f"wrote {write_report(report, args.json, a.command_line(args))}")

