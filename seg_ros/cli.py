"""The ``seg-ros`` command.

Subcommands: ``models``, ``segment``, ``train``, ``bench``, ``soak``, ``demo``. A user
error (bad path, bad setting, unreadable input) prints one sentence to stderr
and exits with status 2, leaving no half-written output.
"""

from __future__ import annotations

import argparse
import sys

from seg_ros import __version__
from seg_ros.errors import SegRosError
from seg_ros.modelfile import DEFAULT_MODEL
from seg_ros.pipeline import OUTPUTS, parse_resolution

EXIT_USER_ERROR = 2


def _resolution(text: str) -> tuple[int, int]:
    try:
        return parse_resolution(text)
    except SegRosError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _outputs(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [n for n in names if n not in OUTPUTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"outputs must be a comma list of {', '.join(sorted(OUTPUTS))}.")
    return names


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="model file or shipped model name (default: %(default)s)")
    p.add_argument("--resolution", type=_resolution, default=None,
                   help="inference size HxW, e.g. 360x640 (default: the model's training size)")
    p.add_argument("--no-keep-aspect", dest="keep_aspect", action="store_false",
                   help="stretch frames to exactly HxW instead of fitting them inside it")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default: auto)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--backend", default="torch", help="inference backend (default: torch)")


def _cmd_models(args: argparse.Namespace) -> None:
    from seg_ros.modelfile import read_meta, shipped_models
    from seg_ros.models import available, build, get_spec

    print("Architectures (seg_ros.models registry):")
    for name in available():
        spec = get_spec(name)
        line = f"  {name:28s} {spec.description}"
        if args.details:
            m = build(name, 19)
            line += f"\n  {'':28s} {sum(p.numel() for p in m.parameters()) / 1e6:.2f} M parameters at 19 classes"
        print(line)
    print("Shipped model files:")
    shipped = shipped_models()
    if not shipped:
        print("  (none)")
    for name, path in shipped.items():
        meta = read_meta(path)
        prov = meta.provenance
        miou = prov.get("val_miou")
        print(f"  {name:28s} {meta.architecture}, {meta.label_set.name} ({meta.num_classes} classes), "
              f"input {meta.input_size[0]}x{meta.input_size[1]}, trained on {prov.get('dataset', '?')}, "
              f"val mIoU {miou if miou is not None else '?'}" + ("  [default]" if name == DEFAULT_MODEL else ""))
        if args.details:
            print(f"  {'':28s} {path} ({path.stat().st_size / 1e6:.1f} MB), {prov.get('date', '')}")


def _cmd_segment(args: argparse.Namespace) -> None:
    from seg_ros.files import collect_inputs, segment_files
    from seg_ros.pipeline import Segmenter

    inputs = collect_inputs(args.inputs)
    seg = Segmenter(args.model, resolution=args.resolution, keep_aspect=args.keep_aspect, device=args.device,
                    precision=args.precision, backend=args.backend, overlay_alpha=args.alpha)
    print(f"model: {seg.describe()}")
    report = segment_files(seg, inputs, args.out, outputs=args.outputs, progress=not args.quiet)
    print(f"segmented {report.frames} frames at {report.fps:.1f} fps; wrote {len(report.written)} files to {args.out}")


def _cmd_train(args: argparse.Namespace) -> None:
    from seg_ros.train import TrainConfig, train

    if args.data is None and not args.synthetic:
        raise SegRosError("give --data DIR (a CamVid-layout folder) or --synthetic.")
    if args.data is not None and args.synthetic:
        raise SegRosError("give either --data or --synthetic, not both.")
    cfg = TrainConfig(
        out=args.out, architecture=args.model, data=args.data, label_set=args.label_set,
        synthetic_train=args.synthetic_train, synthetic_val=args.synthetic_val, synthetic_size=args.synthetic_size,
        crop=args.crop, scale=(args.scale_min, args.scale_max), epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, loss=args.loss, lr=args.lr, weight_decay=args.weight_decay,
        pretrained=args.pretrained,
        device=args.device, amp=args.amp, workers=args.workers, seed=args.seed, half=args.half,
        max_steps_per_epoch=args.max_steps_per_epoch,
    )
    if not args.resume and cfg.checkpoint.exists():
        raise SegRosError(f"checkpoint {cfg.checkpoint} exists; pass --resume to continue it or delete it.")
    res = train(cfg, progress=not args.quiet)
    print(f"best val mIoU {res.best_miou:.4f} at epoch {res.best_epoch}; model written to {res.model_path}")


def _cmd_bench(args: argparse.Namespace) -> None:
    import torch

    from seg_ros.bench import format_table, run_bench, write_report

    if args.node:
        from seg_ros.ros.nodebench import format_node_table, run_node_bench

        report = run_node_bench(args.model, args.resolution or [(360, 640)], args.device or ["cpu"], args.frames,
                                args.warmup)
        print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
        print(format_node_table(report))
        print(f"wrote {write_report(report, args.json)}")
        return
    devices = args.device or (["cpu", "cuda:0"] if torch.cuda.is_available() else ["cpu"])
    report = run_bench(args.model, args.resolution or [(360, 640)], devices, args.frames, args.warmup,
                       args.precision or ["fp32", "fp16"])
    print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
    print(format_table(report))
    print(f"wrote {write_report(report, args.json)}")


def _cmd_soak(args: argparse.Namespace) -> None:
    from seg_ros.pipeline import format_resolution
    from seg_ros.ros.soak import format_report, run_soak, write_report

    res = format_resolution(args.size)
    report = run_soak(args.frames, model=args.model, size=args.size, resolutions=(res, "64x96"),
                      interval_s=args.interval_ms / 1000.0, change_every=args.change_every, device=args.device,
                      progress=lambda i, r: print(f"frame {i}: {r.processed} processed, {r.dropped} dropped, "
                                                  f"rss {r.rss_samples_mb[-1][1]:.1f} MB", flush=True))
    print(format_report(report))
    print(f"wrote {write_report(report, args.json)}")
    if not report.ok:
        raise SegRosError(f"soak found {len(report.problems)} problem(s); see {args.json}.")


def _cmd_demo(args: argparse.Namespace) -> None:
    from seg_ros.demo import run_demo

    run_demo(args.out, frames=args.frames, size=args.size, model=args.model, device=args.device,
             progress=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-ros", description="Real-time semantic segmentation for ROS 2 cameras.")
    parser.add_argument("--version", action="version", version=f"seg-ros {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list architectures and shipped model files")
    p.add_argument("--details", action="store_true", help="also parameter counts and file paths")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("segment", help="segment images, image folders and videos")
    p.add_argument("inputs", nargs="+", help="image files, folders of images, or video files")
    p.add_argument("--out", required=True, help="output folder")
    _add_runtime_args(p)
    p.add_argument("--alpha", type=float, default=0.5, help="overlay colour weight 0..1 (default: 0.5)")
    p.add_argument("--outputs", type=_outputs, default=("labels", "color", "overlay"),
                   help="images written per input image (default: labels,color,overlay)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("train", help="train a model on a CamVid-layout folder or synthetic scenes")
    p.add_argument("--model", default="liteseg_mobilenetv2", help="registry architecture (default: %(default)s)")
    p.add_argument("--data", help="dataset root with <split>/images and <split>/labels")
    p.add_argument("--synthetic", action="store_true", help="train on procedural scenes instead of --data")
    p.add_argument("--label-set", default="camvid", help="camvid, cityscapes or voc (default: camvid)")
    p.add_argument("--synthetic-train", type=int, default=2000, help="synthetic scenes per epoch")
    p.add_argument("--synthetic-val", type=int, default=100, help="held-out synthetic validation scenes")
    p.add_argument("--synthetic-size", type=_resolution, default=(360, 640), help="synthetic scene size HxW")
    p.add_argument("--crop", type=_resolution, default=(360, 480), help="training crop HxW")
    p.add_argument("--scale-min", type=float, default=0.5)
    p.add_argument("--scale-max", type=float, default=2.0)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--loss", choices=["ce", "ohem"], default="ce", help="ohem: hardest pixels only")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=4e-5)
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="do not initialise the backbone from ImageNet")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fp32", dest="half", action="store_false", help="store fp32 weights (default fp16)")
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("bench", help="model-only and end-to-end speed")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--resolution", type=_resolution, action="append", help="HxW, repeatable (default: 360x640)")
    p.add_argument("--device", action="append", help="repeatable (default: cpu, and cuda:0 when present)")
    p.add_argument("--precision", action="append", choices=["fp32", "fp16"], help="repeatable (default: both)")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", default="bench.json", help="where to write the JSON report")
    p.add_argument("--node", action="store_true",
                   help="ROS node overhead instead: message decoding and building vs the pipeline (default device cpu)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("soak", help="soak the node's ROS-free core: frames faster than the pipeline, live changes")
    p.add_argument("--frames", type=int, default=20000)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--size", type=_resolution, default=(96, 128), help="frame size HxW (default: 96x128)")
    p.add_argument("--interval-ms", type=float, default=4.0, help="time between submitted frames (default: 4)")
    p.add_argument("--change-every", type=int, default=40, help="frames between parameter changes (default: 40)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="soak.json", help="where to write the JSON report")
    p.set_defaults(func=_cmd_soak)

    p = sub.add_parser("demo", help="segment a synthetic drive with the shipped model and score it")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", type=_resolution, default=(360, 640), help="frame size HxW")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SegRosError as e:
        print(f"seg-ros {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"seg-ros {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
