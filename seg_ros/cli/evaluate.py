"""``seg-ros evaluate``: replay a bag through the Segmenter the node's parameter file configures; score it."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError

OVERRIDES = (*a.PIPELINE, "max_pixels")
"""The parameters whose own options override the parameter file and ``--set``."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from seg_ros.cli.options import add_options
    from seg_ros.io.bags import DISTRO_VERSIONS, STORAGES

    p = sub.add_parser("evaluate", help="replay a bag through a model and score accuracy and latency",
                       description="Replay every frame of a bag (lossless stepping) through the Segmenter configured "
                                   "by the node's parameter file; score against ground truth; write a report.")
    p.add_argument("--bag", help="bag folder or .db3 / .mcap file")
    p.add_argument("--image-topic", action="append",
                   help="camera topic (Image or CompressedImage), repeatable to score several cameras; default: every "
                        "camera a multi-camera bag records, else the bag's only one")
    gt = p.add_mutually_exclusive_group()
    gt.add_argument("--gt-topic", action="append",
                    help="mono8 ground-truth labels, matched to frames by header stamp; repeatable, one per "
                         "--image-topic in the same order (default: the topics the bag records)")
    gt.add_argument("--gt-dir", help="label PNGs named by frame stamp (ns) or index, see --gt-match")
    p.add_argument("--gt-match", choices=["stamp", "index"], default="stamp",
                   help="with --gt-dir: file NAME.png is the frame whose header stamp in ns (stamp) or whose 0-based "
                        "position on the image topic (index) is NAME (default: stamp)")
    p.add_argument("--gt-window", type=float, default=2.0,
                   help="seconds of bag time a frame waits for its ground-truth message (default: 2)")
    p.add_argument("--params", help="the node's ROS 2 parameter file (model, backend, device, resolution, CRF ...)")
    a.add_set(p, "any node parameter by its full name (docs/node.md), repeatable, over the parameter file's "
                 "(e.g. --set crf.enabled=true); the options below win over both")
    add_options(p, a.PIPELINE, overrides=True, helps={
        "device": "auto, cpu or cuda:N; overrides the parameter file (whose default is auto = cuda:0 when CUDA is "
                  "available, else cpu)"})
    p.add_argument("--out", default="eval_out", help="report folder (default: %(default)s)")
    p.add_argument("--out-bag", help="also write a bag with labels / color / overlay topics (input stamps)")
    p.add_argument("--out-prefix", default="/segmentation_node",
                   help="namespace of the output topics, as the node's; with several cameras each camera's outputs "
                        "are under <prefix>/<camera> (default: %(default)s)")
    p.add_argument("--out-storage", choices=STORAGES, help="output bag storage (default: the input bag's)")
    p.add_argument("--out-distro", choices=sorted(DISTRO_VERSIONS), default="jazzy",
                   help="output bag for this ROS 2 distribution (default: jazzy)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out-bag")
    p.add_argument("--limit", type=int, help="evaluate only the first N frames")
    a.add_max_pixels(p, from_params=True)
    p.add_argument("--tta", action="store_true",
                   help="offline scoring and labelling: average each frame's class probabilities over its horizontal "
                        "flip and several scales of the inference resolution (the robot's score is the one without; "
                        "the dense CRF must be off)")
    p.add_argument("--tta-scales", metavar="S,S,...",
                   help="with --tta: scales of the inference resolution (default: 0.75,1,1.25)")
    p.add_argument("--no-charts", dest="charts", action="store_false", help="skip the PNG charts")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print two reports side by side instead of evaluating")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from dataclasses import replace
    from pathlib import Path

    from seg_ros.cli.options import apply_sets, values_from_args
    from seg_ros.config import defaults, load_params_file, segmenter_kwargs
    from seg_ros.evaluate import EvalOptions, check_options, compare_reports, evaluate_bag, load_report
    from seg_ros.evaluate.tta import TTAConfig, parse_scales
    from seg_ros.pipeline import Segmenter

    if args.compare is not None:
        if args.bag is not None:
            raise SegRosError("give either --bag (run an evaluation) or --compare A.json B.json, not both.")
        first, second = (load_report(p) for p in args.compare)
        print(compare_reports(first, second, names=(str(args.compare[0]), str(args.compare[1]))))
        return
    if args.bag is None:
        raise SegRosError("give --bag BAG to evaluate (or --compare A.json B.json).")
    if args.tta_scales is not None and not args.tta:
        raise SegRosError("--tta-scales goes with --tta.")
    tta = (TTAConfig(parse_scales(args.tta_scales)) if args.tta_scales is not None else TTAConfig()) if args.tta \
        else None
    opts = EvalOptions(
        bag=Path(args.bag), out=Path(args.out), image_topics=tuple(args.image_topic or ()),
        gt_topics=tuple(args.gt_topic or ()),
        gt_dir=Path(args.gt_dir) if args.gt_dir else None, gt_match=args.gt_match, gt_window_s=args.gt_window,
        out_bag=Path(args.out_bag) if args.out_bag else None, out_prefix=args.out_prefix,
        out_storage=args.out_storage, out_distro=args.out_distro, overwrite=args.overwrite, limit=args.limit,
        charts=args.charts, progress=not args.quiet, tta=tta)
    check_options(opts)
    base = load_params_file(args.params) if args.params is not None else defaults()
    overrides = {**dict(args.set or []), **values_from_args(args, OVERRIDES, {})}
    values = values_from_args(args, OVERRIDES, apply_sets(base, args.set))
    seg = Segmenter(**segmenter_kwargs(values))
    opts = replace(opts, max_pixels=values["max_pixels"])
    print(f"model: {seg.describe()}" + (f"; test-time augmentation: {tta.describe()}" if tta else ""))
    settings = {"params_file": str(args.params) if args.params else None, "overrides": overrides, "values": values}
    evaluate_bag(opts, seg, settings=settings, command=a.command_line(args))
    print(f"wrote {Path(args.out) / 'report.md'}, report.json" + (" and the charts" if args.charts else "") +
          (f"; output bag {args.out_bag}" if args.out_bag else ""))
