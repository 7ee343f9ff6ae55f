"""``seg-ros segment``: images, image folders and videos through the Segmenter."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a


def add_parser(sub: argparse._SubParsersAction) -> None:
    from seg_ros.crf.config import METHODS

    p = sub.add_parser("segment", help="segment images, image folders and videos")
    p.add_argument("inputs", nargs="+", help="image files, folders of images, or video files")
    p.add_argument("--out", required=True, help="output folder")
    a.add_runtime_args(p)
    p.add_argument("--alpha", type=float, default=0.5, help="overlay colour weight 0..1 (default: 0.5)")
    p.add_argument("--outputs", type=a.outputs, default=("labels", "color", "overlay"),
                   help="images written per input image (default: labels,color,overlay)")
    p.add_argument("--crf", nargs="?", const="fast", choices=METHODS, metavar="METHOD",
                   help="refine with the dense CRF: fast (the default METHOD), exact (pydensecrf2) or auto")
    a.add_set(p, "any node parameter by its full name (docs/node.md), repeatable, applied over the other options "
                 "(e.g. --set crf.iterations=5 --set runtime.threads=2)")
    p.add_argument("--tta", action="store_true",
                   help="offline labelling: average each frame's class probabilities over its horizontal flip and "
                        "several scales of the inference resolution (slower; not the node's output; no --crf)")
    p.add_argument("--tta-scales", metavar="S,S,...",
                   help="with --tta: scales of the inference resolution (default: 0.75,1,1.25)")
    a.add_max_pixels(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.cli.options import apply_sets, values_from_args
    from seg_ros.config import segmenter_kwargs
    from seg_ros.core.errors import SegRosError
    from seg_ros.core.paths import check_output_dir
    from seg_ros.evaluate.tta import TTAConfig, TTASegmenter, parse_scales
    from seg_ros.pipeline import Segmenter
    from seg_ros.tools.segment import collect_inputs, segment_files

    if args.tta_scales is not None and not args.tta:
        raise SegRosError("--tta-scales goes with --tta.")
    tta = (TTAConfig(parse_scales(args.tta_scales)) if args.tta_scales is not None else TTAConfig()) if args.tta \
        else None
    values = {**values_from_args(args, [*a.PIPELINE, "runtime", "max_pixels"]), "overlay_alpha": args.alpha}
    values = a.with_crf_method(apply_sets(values, args.set), args.crf)
    check_output_dir(args.out, "--out")
    inputs = collect_inputs(args.inputs, values["max_pixels"])
    a.check_runtime_paths(values)
    seg = Segmenter(**segmenter_kwargs(values))
    segmenter = TTASegmenter(seg, tta) if tta is not None else seg
    print(f"model: {seg.describe()}" + (f"; test-time augmentation: {tta.describe()}" if tta else ""))
    report = segment_files(segmenter, inputs, args.out, outputs=args.outputs, progress=not args.quiet,
                           max_pixels=values["max_pixels"])
    with_tta = " with test-time augmentation" if tta else ""
    print(f"segmented {report.frames} frames at {report.fps:.1f} fps{with_tta}; wrote {len(report.written)} files to "
          f"{args.out}")
