"""``seg-ros demo``: a synthetic drive written to a bag and evaluated with the shipped model."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="write a synthetic drive to a bag, evaluate it with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", type=a.resolution, default=(360, 640), help="frame size HxW")
    p.add_argument("--model", default=a.default_model())
    p.add_argument("--device", default="auto", help=a.AUTO_DEVICE_HELP)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.tools.demo import run_demo

    run_demo(args.out, frames=args.frames, size=args.size, model=args.model, device=args.device,
             progress=not args.quiet)
