"""The ``seg-ros`` command.

Subcommands: ``models``, ``segment``, ``train``, ``bench``, ``export``, ``bag-from-dataset``,
``evaluate``, ``import-checkpoint``, ``tune-crf``, ``soak``, ``demo``. A user
error (bad path, bad setting, unreadable input) prints one sentence to stderr
and exits with status 2, leaving no half-written output; Ctrl-C at any moment
prints one line and exits with status 130. Every output path is checked before
the work starts.
"""

from __future__ import annotations

import sys

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130

# Only light modules at module level: torch, OpenCV and the ROS libraries are imported by the subcommands,
# inside main's error handling, so that an interrupt or a broken install at any moment gives one line.
try:
    import argparse
    import math
    import os

    from seg_ros import __version__
    from seg_ros.core.errors import SegRosError, clip

    # FFmpeg (inside OpenCV) would print its own lines about a corrupt video ("moov atom not found") beside the
    # command's one sentence; it reads the level once, at its first use in the process.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
except KeyboardInterrupt:  # Ctrl-C while the command starts, before main can catch it
    sys.stderr.write("seg-ros: interrupted\n")
    sys.exit(EXIT_INTERRUPTED)

DEBUG_ENV = "SEG_ROS_DEBUG"
"""Set to 1 to get Python's traceback instead of one line for an unexpected error."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prog: error: message``), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message.rstrip('.')}; see {self.prog} --help.\n")


def _resolution(text: str) -> tuple[int, int]:
    from seg_ros.core.limits import parse_resolution

    try:
        return parse_resolution(text)
    except SegRosError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(kind: type, low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """An argparse type: a finite ``kind`` (int or float) in [low, high], or (low, high] when ``low_open``."""
    fmt = "{:,}" if kind is int else "{:g}"
    bounds = [f"{'more than' if low_open else 'at least'} {fmt.format(low)}"] if low is not None else []
    bounds += [f"at most {fmt.format(high)}"] if high is not None else []
    wanted = f"{'an integer' if kind is int else 'a finite number'}{' ' + ' and '.join(bounds) if bounds else ''}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}.") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {wanted}.")
        return value

    return parse


def _outputs(text: str) -> tuple[str, ...]:
    from seg_ros.pipeline import OUTPUTS

    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [n for n in names if n not in OUTPUTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"outputs must be a comma list of {', '.join(sorted(OUTPUTS))}.")
    return names


def _model_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value) with VALUE read as a bool (true/false), an int, a float or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"model argument {text!r} is not of the form KEY=VALUE, e.g. output_stride=8.")
    v = value.strip()
    parsed: object = v
    if v.lower() in ("true", "false"):
        parsed = v.lower() == "true"
    else:
        for kind in (int, float):
            try:
                parsed = kind(v)
                break
            except ValueError:
                pass
    return key.strip(), parsed


def _floats3(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated numbers, e.g. 0.485,0.456,0.406.")
    return values  # type: ignore[return-value]


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    from seg_ros.models.modelfile import DEFAULT_MODEL

    p.add_argument("--model", default=DEFAULT_MODEL, help="model file or shipped model name (default: %(default)s)")
    p.add_argument("--resolution", type=_resolution, default=None,
                   help="inference size HxW, e.g. 360x640 (default: the model's training size)")
    p.add_argument("--no-keep-aspect", dest="keep_aspect", action="store_false",
                   help="stretch frames to exactly HxW instead of fitting them inside it")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default: auto)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--backend", default="torch",
                   help="torch, onnxruntime, tensorrt or auto (tensorrt → onnxruntime → torch) (default: torch)")
    _add_accel_args(p)


def _add_max_pixels(p: argparse.ArgumentParser, from_params: bool = False) -> None:
    from seg_ros.core.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT

    default = "the parameter file's max_pixels, else " if from_params else ""
    p.add_argument("--max-pixels", type=_number(int, 1, MAX_PIXELS_LIMIT), metavar="N",
                   default=None if from_params else DEFAULT_MAX_PIXELS,
                   help=f"pixel budget: refuse frames larger than N pixels (height x width) before decoding them "
                        f"(default: {default}{DEFAULT_MAX_PIXELS:,} = DCI 4K)")


def _add_accel_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("accelerated backends")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime CPU threads (default: 0 = one per core)")
    g.add_argument("--cuda-graphs", action="store_true", help="torch on CUDA: replay a CUDA graph per input shape")
    g.add_argument("--calibration", default="", help="int8: a bag or image folder of frames to calibrate on")
    g.add_argument("--calibration-frames", type=int, default=64, help="int8: at most this many frames (default 64)")
    g.add_argument("--calibration-topic", default="", help="int8: image topic of the calibration bag")
    g.add_argument("--cache-dir", default="", help="ONNX / int8 / TensorRT engine cache (default: ~/.cache/seg_ros)")
    g.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="fail instead of falling back when the backend cannot run here")
    g.add_argument("--on-new-shape", choices=["rebuild", "error"], default="rebuild",
                   help="TensorRT: an input size without an engine is rebuilt or an error (default: rebuild)")
    g.add_argument("--max-batch", type=int, default=1, help="TensorRT: largest batch of the engine (default: 1)")


def _runtime_options(args: argparse.Namespace):
    """The RuntimeOptions of the accelerated-backend options; the cache folder and calibration input are checked."""
    from seg_ros.core.paths import check_output_dir, require_file_or_dir
    from seg_ros.runtime import RuntimeOptions

    if args.cache_dir:
        check_output_dir(args.cache_dir, "--cache-dir")
    if args.calibration:
        require_file_or_dir(args.calibration, "--calibration")
    return RuntimeOptions(threads=args.threads, cuda_graphs=args.cuda_graphs, calibration=args.calibration,
                          calibration_frames=args.calibration_frames, calibration_topic=args.calibration_topic,
                          cache_dir=args.cache_dir, fallback=args.fallback, on_new_shape=args.on_new_shape,
                          max_batch=args.max_batch)


def _cmd_models(args: argparse.Namespace) -> None:
    from seg_ros.models import available, get_spec
    from seg_ros.models.modelfile import DEFAULT_MODEL, read_meta, shipped_models

    print("Architectures (seg_ros.models registry):")
    for name in available():
        spec = get_spec(name)
        line = f"  {name:28s} {spec.description}"
        if args.details:
            from seg_ros.models.complexity import DEFAULT_SIZES, complexity

            c = complexity(name, 19)
            macs = ", ".join(f"{c.gmacs(s):.2f} GMACs at {s[0]}x{s[1]}" for s in DEFAULT_SIZES)
            line += (f"\n  {'':28s} backbone {spec.backbone}, output stride {spec.output_stride}; "
                     f"{c.params / 1e6:.2f} M parameters at 19 classes; {macs}")
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
    from seg_ros.core.paths import check_output_dir
    from seg_ros.pipeline import Segmenter
    from seg_ros.tools.segment import collect_inputs, segment_files

    check_output_dir(args.out, "--out")
    inputs = collect_inputs(args.inputs, args.max_pixels)
    crf = _crf_settings(args.crf, args.set)
    seg = Segmenter(args.model, resolution=args.resolution, keep_aspect=args.keep_aspect, device=args.device,
                    precision=args.precision, backend=args.backend, overlay_alpha=args.alpha, crf=crf,
                    runtime=_runtime_options(args))
    print(f"model: {seg.describe()}")
    report = segment_files(seg, inputs, args.out, outputs=args.outputs, progress=not args.quiet,
                           max_pixels=args.max_pixels)
    print(f"segmented {report.frames} frames at {report.fps:.1f} fps; wrote {len(report.written)} files to {args.out}")


def _crf_settings(method: str | None, sets: list[tuple[str, object]] | None):
    """The CRF settings of ``--crf [METHOD]`` and ``--set crf.NAME=VALUE`` (checked by the node's schema)."""
    from seg_ros.ros.params import crf_config, defaults, validate

    values = defaults()
    for name, value in sets or []:
        if not name.startswith("crf."):
            raise SegRosError(f"--set takes crf.* parameters here (e.g. crf.iterations=5), not {name!r}; "
                              "the other settings have their own options.")
        values[name] = validate(name, value)
    if method is not None:
        values["crf.enabled"] = True
        values["crf.method"] = method
    return crf_config(values)


def _cmd_train(args: argparse.Namespace) -> None:
    from seg_ros.train import TrainConfig, train

    if args.data is None and not args.synthetic:
        raise SegRosError("give --data DIR (a CamVid-layout folder) or --synthetic.")
    if args.data is not None and args.synthetic:
        raise SegRosError("give either --data or --synthetic, not both.")
    cfg = TrainConfig(
        out=args.out, architecture=args.model, arch_kwargs=dict(args.model_arg or []), data=args.data,
        label_set=args.label_set,
        synthetic_train=args.synthetic_train, synthetic_val=args.synthetic_val, synthetic_size=args.synthetic_size,
        crop=args.crop, val_size=args.val_size,
        scale=(args.scale_min, args.scale_max), epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, loss=args.loss, class_weights=args.class_weights, lr=args.lr,
        weight_decay=args.weight_decay, pretrained=args.pretrained, init=args.init, ema=args.ema,
        device=args.device, amp=args.amp, workers=args.workers, seed=args.seed, half=args.half,
        max_steps_per_epoch=args.max_steps_per_epoch, command=_command_line(args),
    )
    if not args.resume and cfg.checkpoint.exists():
        raise SegRosError(f"checkpoint {cfg.checkpoint} exists; pass --resume to continue it or delete it.")
    res = train(cfg, progress=not args.quiet)
    print(f"best val mIoU {res.best_miou:.4f} at epoch {res.best_epoch}; model written to {res.model_path}")


def _cmd_import_checkpoint(args: argparse.Namespace) -> None:
    from seg_ros.models.checkpoint_import import import_checkpoint

    provenance = {k: v for k, v in (("dataset", args.dataset), ("source", args.source),
                                    ("val_miou", args.val_miou)) if v is not None}
    kw = {} if args.mean is None else {"mean": args.mean}
    if args.std is not None:
        kw["std"] = args.std
    report = import_checkpoint(args.checkpoint, args.out, label_set=args.label_set, input_size=args.input_size,
                               provenance=provenance, half=args.half,
                               command=_command_line(args), **kw)
    meta = report.meta
    print(f"read {args.checkpoint} as a {report.source_format} checkpoint: {report.consumed} tensors mapped onto "
          f"{meta.architecture} ({meta.num_classes} classes, {meta.label_set.name}), every key matched")
    if report.dropped:
        shown = ", ".join(report.dropped[:4]) + (", …" if len(report.dropped) > 4 else "")
        print(f"left out {len(report.dropped)} tensors that inference does not use: {shown}")
    if report.filled:
        print(f"{len(report.filled)} BatchNorm num_batches_tracked counters were absent and start at 0")
    print(f"wrote {report.path} (input {meta.input_size[0]}x{meta.input_size[1]}, "
          f"mean {list(meta.mean)}, std {list(meta.std)})")


def _cmd_bench(args: argparse.Namespace) -> None:
    import torch

    from seg_ros.core.paths import check_output_file, require_dir, require_file
    from seg_ros.tools.bench import format_table, run_bench, write_report

    check_output_file(args.json, "--json")
    if args.camvid:
        require_dir(args.camvid, "--camvid")
    if args.camvid_params:
        require_file(args.camvid_params, "--camvid-params")
    if args.node:
        from seg_ros.ros.tools.nodebench import format_node_table, run_node_bench

        report = run_node_bench(args.model, args.resolution or [(360, 640)], args.device or ["cpu"], args.frames,
                                args.warmup)
        print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
        print(format_node_table(report))
        print(f"wrote {write_report(report, args.json)}")
        return
    if args.bag or args.evaluate:
        _bench_bags(args)
        return
    if args.crf:
        _bench_crf(args)
        return
    from seg_ros.tools.bench import RESOLUTIONS

    devices = args.device or (["cpu", "cuda:0"] if torch.cuda.is_available() else ["cpu"])
    report = run_bench(args.model, args.resolution or RESOLUTIONS, devices, args.frames, args.warmup,
                       args.precision, args.backend, naive=args.naive, accuracy_frames=args.accuracy_frames,
                       runtime=_runtime_options(args),
                       progress=None if args.quiet else lambda s: print(f"… {s}", file=sys.stderr, flush=True))
    print(f"{report['machine']}, {', '.join(f'{k} {v}' for k, v in report['versions'].items())}, {report['date']}")
    print(format_table(report))
    for sk in report["skipped"]:
        print(f"skipped {sk['backend']} {sk['precision']} on {sk['device']} at {sk['resolution']}: {sk['reason']}")
    print(f"wrote {write_report(report, args.json)}")


def _cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from seg_ros.core.paths import check_output_file

    if not args.onnx and not args.tensorrt:
        raise SegRosError("give --onnx OUT.onnx and/or --tensorrt.")
    if args.onnx:
        check_output_file(args.onnx, "--onnx")
    if args.tensorrt:
        _runtime_options(args)  # checks --cache-dir and --calibration before the export
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
    if args.tensorrt:
        from seg_ros.pipeline import Segmenter
        from seg_ros.runtime import RuntimeOptions
        from seg_ros.runtime.tensorrt_backend import import_tensorrt

        import_tensorrt()
        opts = RuntimeOptions(**{**vars(_runtime_options(args)), "fallback": False})
        seg = Segmenter(model, resolution=args.resolution, keep_aspect=False, device=args.device,
                        precision=args.precision, backend="tensorrt", runtime=opts)
        b = seg.backend
        shape = next(iter(b._engines))  # type: ignore[attr-defined]
        print(f"TensorRT engine ready: {b.cache.entry(b.fingerprint(shape))}")  # type: ignore[attr-defined]


def _cmd_bag_from_dataset(args: argparse.Namespace) -> None:
    from seg_ros.core.labels import get_label_set
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import CamVidSource, CityscapesSource, ImageFolderSource, SyntheticDriveSource

    given = [n for n in ("camvid", "cityscapes", "images", "synthetic") if getattr(args, n) is not None]
    if len(given) != 1:
        raise SegRosError("give exactly one source: --camvid DIR, --cityscapes DIR, --images DIR or --synthetic N.")
    if args.labels is not None and args.images is None:
        raise SegRosError("--labels goes with --images (a plain image folder).")
    if args.camvid is not None:
        source = CamVidSource(args.camvid, args.split or "val", max_pixels=args.max_pixels)
    elif args.cityscapes is not None:
        source = CityscapesSource(args.cityscapes, args.split or "val", args.city, max_pixels=args.max_pixels)
    elif args.images is not None:
        source = ImageFolderSource(args.images, args.labels, get_label_set(args.label_set),
                                   max_pixels=args.max_pixels)
    else:
        source = SyntheticDriveSource(args.seed, args.synthetic, args.size, max_pixels=args.max_pixels)
    s = write_dataset_bag(
        source, args.out, fps=args.fps, image_format=args.image_format, jpeg_quality=args.jpeg_quality,
        storage=args.storage, distro=args.distro, image_topic=args.image_topic, gt_topic=args.gt_topic,
        camera_info_topic=args.camera_info_topic, frame_id=args.frame_id,
        start_ns=round(args.start_time * 1e9), limit=args.limit, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {s.path}: {s.frames} frames from {s.source} ({s.labelled} with {s.label_set} ground truth) at "
          f"{s.fps:g} fps, {s.storage} storage, rosbag2 metadata version {s.version} ({s.distro}), "
          f"{s.bytes / 1e6:.1f} MB in {s.seconds:.1f} s")
    print(f"topics: {s.image_topic} ({'rgb8 Image' if s.image_format == 'raw' else 'JPEG CompressedImage'}), "
          f"{s.gt_topic} (mono8 labels), {s.camera_info_topic}")


def _set_param(text: str) -> tuple[str, object]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--set takes NAME=VALUE (e.g. crf.enabled=true), not {text!r}.")
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return name.strip(), value


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from dataclasses import replace
    from pathlib import Path

    from seg_ros.evaluate import (
        EvalOptions,
        check_options,
        compare_reports,
        evaluate_bag,
        load_report,
        segmenter_from_params,
    )

    if args.compare is not None:
        if args.bag is not None:
            raise SegRosError("give either --bag (run an evaluation) or --compare A.json B.json, not both.")
        a, b = (load_report(p) for p in args.compare)
        print(compare_reports(a, b, names=(str(args.compare[0]), str(args.compare[1]))))
        return
    if args.bag is None:
        raise SegRosError("give --bag BAG to evaluate (or --compare A.json B.json).")
    opts = EvalOptions(
        bag=Path(args.bag), out=Path(args.out), image_topic=args.image_topic, gt_topic=args.gt_topic,
        gt_dir=Path(args.gt_dir) if args.gt_dir else None, gt_match=args.gt_match, gt_window_s=args.gt_window,
        out_bag=Path(args.out_bag) if args.out_bag else None, out_prefix=args.out_prefix,
        out_storage=args.out_storage, out_distro=args.out_distro, overwrite=args.overwrite, limit=args.limit,
        charts=args.charts, progress=not args.quiet)
    check_options(opts)
    overrides: dict[str, object] = dict(args.set or [])
    for name, value in (("model", args.model), ("resolution", args.resolution), ("device", args.device),
                        ("precision", args.precision), ("backend", args.backend), ("keep_aspect", args.keep_aspect),
                        ("max_pixels", args.max_pixels)):
        if value is not None:
            overrides[name] = value
    seg, values = segmenter_from_params(args.params, overrides)
    opts = replace(opts, max_pixels=values["max_pixels"])
    print(f"model: {seg.describe()}")
    settings = {"params_file": str(args.params) if args.params else None, "overrides": overrides, "values": values}
    evaluate_bag(opts, seg, settings=settings, command=_command_line(args))
    print(f"wrote {Path(args.out) / 'report.md'}, report.json" + (" and the charts" if args.charts else "") +
          (f"; output bag {args.out_bag}" if args.out_bag else ""))


def _bench_bags(args: argparse.Namespace) -> None:
    import time

    import torch

    from seg_ros.core.machine import describe_machine
    from seg_ros.tools.bench import (
        bench_bag_read,
        bench_evaluate,
        format_bag_table,
        format_evaluate_table,
        write_report,
    )

    size = (args.resolution or [(360, 640)])[0]
    report: dict[str, object] = {"machine": describe_machine(), "date": time.strftime("%Y-%m-%d"),
                                 "torch": torch.__version__}
    print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
    if args.bag:
        rows = bench_bag_read(args.bag_frames, size)
        report["bag_read"] = rows
        print(format_bag_table(rows))
    if args.evaluate:
        device = (args.device or ["cpu"])[0]
        ev = bench_evaluate(args.model, args.frames, size, device)
        report["evaluate"] = ev
        print(format_evaluate_table(ev))
    print(f"wrote {write_report(report, args.json)}")


def _bench_crf(args: argparse.Namespace) -> None:
    import time
    from dataclasses import replace

    import torch

    from seg_ros.core.machine import describe_machine
    from seg_ros.crf import LIMITS as CRF_LIMITS
    from seg_ros.crf import CRFConfig, exact_available, grid_name
    from seg_ros.io.datasets import FolderDataset
    from seg_ros.pipeline import Segmenter, format_resolution
    from seg_ros.synthetic import generate_scene
    from seg_ros.tools.bench import write_report
    from seg_ros.tools.crfbench import bench_crf_speed, crf_accuracy, format_accuracy_table, format_speed_table

    size = (args.resolution or [(512, 1024)])[0]
    devices = args.device or (["cpu", "cuda:0"] if torch.cuda.is_available() else ["cpu"])
    report: dict[str, object] = {"machine": describe_machine(), "date": time.strftime("%Y-%m-%d"),
                                 "torch": torch.__version__, "exact_available": exact_available()}
    print(f"{report['machine']}, torch {report['torch']}, {report['date']}")
    if not exact_available():
        print("pydensecrf2 is not installed: exact-CRF rows and comparisons are skipped")
    hi = CRF_LIMITS["downsample"][1]
    if any(not 1 <= step <= hi for step in args.crf_downsample or []):
        raise SegRosError(f"--crf-downsample takes grid steps from 1 to {hi:g}.")
    rows = bench_crf_speed(size, args.crf_classes, args.crf_iterations, devices, frames=args.frames,
                           warmup=min(args.warmup, 2), thresholds=(0.0, args.crf_gate))
    report["speed"] = rows
    print(format_speed_table(rows))
    if args.crf_scenes > 0 or args.camvid:
        device = devices[-1]

        def variants_of(base: CRFConfig, frame_size: tuple[int, int]) -> dict[str, CRFConfig]:
            variants = {"fast": replace(base, method="fast")}
            # what the coarser grid costs in accuracy, and any grid asked for
            steps = ([1] if variants["fast"].grid_step(*frame_size) > 1 else []) + (args.crf_downsample or [])
            for step in steps:
                variants[f"fast, {grid_name(step)}"] = replace(base, method="fast", downsample=step)
            if args.crf_gate > 0:
                variants[f"fast, confidence < {args.crf_gate:g}"] = replace(base, method="fast",
                                                                            confidence_threshold=args.crf_gate)
            if exact_available():
                variants = {"exact": replace(base, method="exact"), **variants}
            return variants

        report["accuracy"] = {}
        if args.crf_scenes > 0:
            seg = Segmenter(args.model, device=device)
            scene_size = args.crf_scene_size
            variants = variants_of(CRFConfig(), scene_size)
            scenes = (generate_scene(1000 + i, scene_size) for i in range(args.crf_scenes))
            res = crf_accuracy(seg, ((s.image, s.labels) for s in scenes), variants)
            res["model"] = seg.describe()
            res["data"] = f"{args.crf_scenes} synthetic scenes {format_resolution(scene_size)} (seeds 1000+)"
            res["grid_step"] = variants["fast"].grid_step(*scene_size)
            report["accuracy"]["synthetic"] = res
            print(f"\n{res['data']}, {res['model']}, CRF defaults (DeepLab-LargeFOV, 10 iterations), "
                  f"fast CRF: {grid_name(res['grid_step'])}:")
            print(format_accuracy_table(res))
        if args.camvid:
            model, resolution, what = args.camvid_model, None, "CRF defaults (DeepLab-LargeFOV, 10 iterations)"
            base = CRFConfig()
            if args.camvid_params:
                from seg_ros.ros.params import crf_config, load_params_file, segmenter_kwargs

                values = load_params_file(args.camvid_params)
                model, resolution = values["model"], segmenter_kwargs(values)["resolution"]
                base = crf_config({**values, "crf.enabled": True})
                what = f"CRF settings of {args.camvid_params}"
            seg = Segmenter(model, resolution=resolution, device=device)
            data = FolderDataset(args.camvid, "val")
            frame_size = data[0][0].shape[:2]
            variants = variants_of(base, frame_size)
            res = crf_accuracy(seg, (data[i] for i in range(len(data))), variants)
            res["model"], res["data"], res["crf"] = seg.describe(), f"{data.name} ({len(data)} frames)", what
            res["grid_step"] = variants["fast"].grid_step(*frame_size)
            what += f", fast CRF: {grid_name(res['grid_step'])}"
            report["accuracy"]["camvid"] = res
            print(f"\n{res['data']}, {res['model']}, {what}:")
            print(format_accuracy_table(res))
    print(f"wrote {write_report(report, args.json)}")


def _cmd_tune_crf(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from seg_ros.core.paths import check_output_file
    from seg_ros.core.staging import atomic_path
    from seg_ros.io.datasets import FolderDataset
    from seg_ros.pipeline import Segmenter, format_resolution
    from seg_ros.tools.bench import write_report
    from seg_ros.tools.crftune import format_report, parse_grid, preset_yaml, tune_crf

    for option, path in (("--preset", args.preset), ("--json", args.json)):
        if path:
            check_output_file(path, option)
    grid = parse_grid(args.grid or [])
    if not grid:
        raise SegRosError("give at least one --grid NAME=V1,V2,...")
    if args.every < 1:
        raise SegRosError("--every must be at least 1.")
    base = _crf_settings(args.method, args.set)
    data = FolderDataset(args.data, args.split)
    seg = Segmenter(args.model, resolution=args.resolution, device=args.device)
    frames = [data[i] for i in range(0, len(data), args.every)]
    result = tune_crf(seg, frames, base, grid, progress=not args.quiet)
    result.update(model=seg.describe(), data=f"{data.name} ({len(frames)} frames)", command=_command_line(args))
    print(f"{result['data']}, {result['model']}")
    print(format_report(result))
    if args.preset:
        best = replace(base, **result["best"])
        held = result["held_out"]
        comment = (f"Dense CRF settings cross-validated with `seg-ros tune-crf` on {data.name}\n"
                   f"(grid searched on {result['frames']['tuning']} frames, scored on {result['frames']['held_out']} "
                   f"held-out frames: mIoU {held['none']['miou']:.2f} without CRF, {held['best']['miou']:.2f} "
                   f"with these settings).\n{result['command']}")
        text = preset_yaml(args.model, format_resolution(seg.resolution), best, args.preset_method, comment)
        with atomic_path(args.preset) as tmp:
            tmp.write_text(text)
        print(f"wrote {args.preset}")
    if args.json:
        print(f"wrote {write_report(result, args.json)}")


def _cmd_soak(args: argparse.Namespace) -> int | None:
    if args.flood is not None:
        from seg_ros.ros.tools.flood import main as flood

        return flood(args.flood)
    from seg_ros.core.paths import check_output_file
    from seg_ros.pipeline import format_resolution
    from seg_ros.tools.soak import format_report, run_soak, write_report

    check_output_file(args.json, "--json")
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
    from seg_ros.tools.demo import run_demo

    run_demo(args.out, frames=args.frames, size=args.size, model=args.model, device=args.device,
             progress=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    from seg_ros.models.modelfile import DEFAULT_MODEL

    parser = _Parser(prog="seg-ros", description="Real-time semantic segmentation for ROS 2 cameras.")
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
    p.add_argument("--crf", nargs="?", const="fast", choices=["fast", "exact", "auto"], metavar="METHOD",
                   help="refine with the dense CRF: fast (the default METHOD), exact (pydensecrf2) or auto")
    p.add_argument("--set", action="append", type=_set_param, metavar="crf.NAME=VALUE",
                   help="a CRF parameter, repeatable (e.g. --set crf.enabled=true --set crf.iterations=5)")
    _add_max_pixels(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("train", help="train a model on a CamVid-layout folder or synthetic scenes")
    p.add_argument("--model", default="liteseg_mobilenetv2", help="registry architecture (default: %(default)s)")
    p.add_argument("--model-arg", type=_model_arg, action="append", metavar="KEY=VALUE",
                   help="architecture option, repeatable, e.g. output_stride=8 or se=true for DeepLab on ResNet")
    p.add_argument("--data", help="dataset root with <split>/images and <split>/labels")
    p.add_argument("--synthetic", action="store_true", help="train on procedural scenes instead of --data")
    p.add_argument("--label-set", default="camvid", help="camvid, cityscapes or voc (default: camvid)")
    p.add_argument("--synthetic-train", type=int, default=2000, help="synthetic scenes per epoch")
    p.add_argument("--synthetic-val", type=int, default=100, help="held-out synthetic validation scenes")
    p.add_argument("--synthetic-size", type=_resolution, default=(360, 640), help="synthetic scene size HxW")
    p.add_argument("--crop", type=_resolution, default=(360, 480), help="training crop HxW")
    p.add_argument("--val-size", type=_resolution, default=None, metavar="HxW",
                   help="inference size for validation and the model's default resolution "
                        "(default: the validation frames' size)")
    p.add_argument("--scale-min", type=float, default=0.5)
    p.add_argument("--scale-max", type=float, default=2.0)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--loss", choices=["ce", "ohem"], default="ce", help="ohem: hardest pixels only")
    p.add_argument("--class-weights", choices=["none", "median-frequency"], default="none",
                   help="per-class loss weights from the training labels (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=4e-5)
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="do not initialise the backbone from ImageNet")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="validate and write an exponential moving average of the weights, e.g. 0.995 "
                        "(default: 0, off)")
    p.add_argument("--init", metavar="MODEL",
                   help="fine-tune: start from every weight of this model file or shipped model "
                        "(same architecture and label set) instead of ImageNet")
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
    p.add_argument("--resolution", type=_resolution, action="append",
                   help="HxW, repeatable (default: 360x640, 512x1024 and 1024x2048; with --node, --bag and "
                        "--evaluate 360x640; with --crf 512x1024)")
    p.add_argument("--device", action="append", help="repeatable (default: cpu, and cuda:0 when present)")
    p.add_argument("--precision", action="append", choices=["fp32", "fp16", "int8"],
                   help="repeatable (default: all three, where the backend and device can run them)")
    p.add_argument("--backend", action="append", choices=["torch", "onnxruntime", "tensorrt"],
                   help="repeatable (default: every backend available here)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="leave out the naive baseline")
    p.add_argument("--accuracy-frames", type=_number(int, 0), default=8,
                   help="synthetic scenes with exact labels for the mIoU column (default: 8)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_accel_args(p)
    p.add_argument("--frames", type=_number(int, 1), default=30)
    p.add_argument("--warmup", type=_number(int, 0), default=5)
    p.add_argument("--json", default="bench.json", help="where to write the JSON report")
    p.add_argument("--bag", action="store_true",
                   help="instead: bag reading speed (raw rgb8 at the first --resolution, sqlite3 and mcap)")
    p.add_argument("--bag-frames", type=_number(int, 1), default=500,
                   help="frames in the --bag benchmark bag (default: 500)")
    p.add_argument("--evaluate", action="store_true",
                   help="instead: seg-ros evaluate's own overhead on a synthetic drive of --frames frames")
    p.add_argument("--node", action="store_true",
                   help="ROS node overhead instead: message decoding and building vs the pipeline (default device cpu)")
    p.add_argument("--crf", action="store_true",
                   help="instead: the dense CRF stage, exact vs fast, at the first --resolution (default 512x1024), "
                        "and its mIoU gain on synthetic scenes (and --camvid)")
    p.add_argument("--crf-classes", type=_number(int, 2), default=19,
                   help="classes in the --crf speed test (default: 19)")
    p.add_argument("--crf-iterations", type=_number(int, 1), default=5,
                   help="iterations in the --crf speed test (default: 5)")
    p.add_argument("--crf-gate", type=_number(float, 0.0, 1.0), default=0.9,
                   help="also time the fast CRF refining only pixels below this confidence (default: 0.9; 0 = not)")
    p.add_argument("--crf-scenes", type=_number(int, 0), default=8,
                   help="synthetic scenes scored with --model in the --crf accuracy test (default: 8; 0 = none)")
    p.add_argument("--crf-scene-size", type=_resolution, default=(720, 960), metavar="HxW",
                   help="size of those scenes (default: 720x960, where the fast CRF's auto grid is 1/3)")
    p.add_argument("--crf-downsample", type=int, action="append", metavar="STEP",
                   help="also score the fast CRF on a grid of this step in the accuracy tests, repeatable")
    p.add_argument("--camvid", metavar="DIR", help="with --crf: also score --camvid-model on DIR/val (CamVid layout)")
    p.add_argument("--camvid-model", default="liteseg_mobilenetv2_camvid",
                   help="model for --camvid (default: %(default)s)")
    p.add_argument("--camvid-params", metavar="YAML",
                   help="with --camvid: take the model, resolution and CRF kernel settings from this node "
                        "parameter file (e.g. config/camvid_crf.yaml) instead")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("tune-crf", help="cross-validate the dense CRF's kernel settings on labelled frames")
    p.add_argument("--data", required=True, help="CamVid-layout root: <data>/<split>/images and labels")
    p.add_argument("--split", default="val")
    p.add_argument("--model", default="liteseg_mobilenetv2_camvid", help="model file or shipped name")
    p.add_argument("--resolution", type=_resolution, default=None, help="inference size HxW (default: the model's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--method", choices=["exact", "fast", "auto"], default="auto",
                   help="CRF used for the search (default: %(default)s)")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                   help="values to try, repeatable, e.g. w1=1,2,4 theta_alpha=30,60,121")
    p.add_argument("--set", action="append", type=_set_param, metavar="crf.NAME=VALUE",
                   help="a fixed base setting, repeatable, e.g. crf.iterations=5 (default: DeepLab-LargeFOV's)")
    p.add_argument("--every", type=int, default=1, help="use every n-th frame of the split (default: 1)")
    p.add_argument("--preset", metavar="YAML", help="write a node parameter file with the best settings")
    p.add_argument("--preset-method", choices=["exact", "fast", "auto"], default="fast",
                   help="crf.method in the --preset file (default: %(default)s)")
    p.add_argument("--json", help="write every grid point's scores")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_tune_crf)

    p = sub.add_parser("export", help="export a model to ONNX (checked against torch) and/or build a TensorRT engine",
                       description="--onnx writes one self-contained ONNX file (opset >= 18) with the model's "
                                   "description embedded; --tensorrt builds the engine the node will load into the "
                                   "engine cache, so a robot never builds at start-up.")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model file, shipped model name or (for --tensorrt) .onnx")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX export here")
    p.add_argument("--tensorrt", action="store_true", help="build (or verify) the TensorRT engine in the cache")
    p.add_argument("--resolution", type=_resolution, default=None,
                   help="HxW to export / build for (default: the model's input size)")
    p.add_argument("--dynamic", action="store_true", help="ONNX: leave height and width dynamic")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 18 (default: 18)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX Runtime vs torch check")
    p.add_argument("--device", default="cuda:0", help="TensorRT: CUDA device (default: cuda:0)")
    p.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"],
                   help="TensorRT engine precision (default: fp16)")
    _add_accel_args(p)
    p.set_defaults(func=_cmd_export)

    from seg_ros.io.bags import DEFAULT_CAMERA_INFO_TOPIC, DEFAULT_GT_TOPIC, DEFAULT_START_NS, DISTRO_VERSIONS, STORAGES

    p = sub.add_parser("bag-from-dataset", help="write a dataset or a synthetic drive as a ROS 2 bag with ground truth",
                       description="Write camera images, ground-truth labels (mono8, lossless) and camera_info on "
                                   "three topics with identical stamps, at a chosen frame rate.")
    src = p.add_argument_group("source (exactly one)")
    src.add_argument("--camvid", metavar="DIR", help="CamVid-layout folder: <DIR>/<split>/images + labels")
    src.add_argument("--cityscapes", metavar="DIR",
                     help="Cityscapes root: leftImg8bit/<split>/<city>, gtFine labelIds mapped to trainIds")
    src.add_argument("--images", metavar="DIR", help="a plain image folder (name order)")
    src.add_argument("--synthetic", metavar="N", type=int, help="a synthetic drive of N frames")
    p.add_argument("--labels", metavar="DIR", help="with --images: label PNGs named like the images (optional)")
    p.add_argument("--label-set", default="camvid", help="with --images: label set of the labels (default: camvid)")
    p.add_argument("--split", help="CamVid / Cityscapes split (default: val)")
    p.add_argument("--city", action="append", help="Cityscapes city, repeatable (default: all)")
    p.add_argument("--size", type=_resolution, default=(360, 640), help="synthetic frame size HxW (default 360x640)")
    p.add_argument("--seed", type=int, default=2024, help="synthetic drive seed (default: 2024)")
    p.add_argument("--out", required=True, help="bag folder to create")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of the stamps (default: 10)")
    p.add_argument("--image-format", choices=["raw", "jpeg"], default="raw",
                   help="raw: sensor_msgs/Image rgb8; jpeg: CompressedImage (default: raw)")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--storage", choices=STORAGES, default="sqlite3", help="rosbag2 storage (default: sqlite3)")
    p.add_argument("--distro", choices=sorted(DISTRO_VERSIONS), default="jazzy",
                   help="humble/iron: metadata version 8; jazzy/kilted/rolling: 9 (default: jazzy)")
    p.add_argument("--image-topic", help="default /camera/image_raw (raw) or /camera/image_raw/compressed (jpeg)")
    p.add_argument("--gt-topic", default=DEFAULT_GT_TOPIC, help="default: %(default)s")
    p.add_argument("--camera-info-topic", default=DEFAULT_CAMERA_INFO_TOPIC, help="default: %(default)s")
    p.add_argument("--frame-id", default="camera")
    p.add_argument("--start-time", type=_number(float, 0.0), default=DEFAULT_START_NS / 1e9,
                   help="stamp of the first frame, seconds since the epoch (default: %(default)d)")
    p.add_argument("--limit", type=int, help="write at most this many frames")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    _add_max_pixels(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bag_from_dataset)

    p = sub.add_parser("evaluate", help="replay a bag through a model and score accuracy and latency",
                       description="Replay every frame of a bag (lossless stepping) through the Segmenter configured "
                                   "by the node's parameter file; score against ground truth; write a report.")
    p.add_argument("--bag", help="bag folder or .db3 / .mcap file")
    p.add_argument("--image-topic", help="camera topic (Image or CompressedImage); default: the bag's only one")
    gt = p.add_mutually_exclusive_group()
    gt.add_argument("--gt-topic", help="mono8 ground-truth labels, matched to frames by header stamp")
    gt.add_argument("--gt-dir", help="label PNGs named by frame stamp (ns) or index, see --gt-match")
    p.add_argument("--gt-match", choices=["stamp", "index"], default="stamp",
                   help="with --gt-dir: file NAME.png is the frame whose header stamp in ns (stamp) or whose 0-based "
                        "position on the image topic (index) is NAME (default: stamp)")
    p.add_argument("--gt-window", type=float, default=2.0,
                   help="seconds of bag time a frame waits for its ground-truth message (default: 2)")
    p.add_argument("--params", help="the node's ROS 2 parameter file (model, backend, device, resolution, CRF ...)")
    p.add_argument("--set", action="append", type=_set_param, metavar="NAME=VALUE",
                   help="override one node parameter, repeatable (e.g. --set crf.enabled=true)")
    p.add_argument("--model", help="overrides the parameter file's model")
    p.add_argument("--resolution", help="inference size HxW; overrides the parameter file")
    p.add_argument("--keep-aspect", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--device", help="auto, cpu or cuda:N; overrides the parameter file")
    p.add_argument("--precision", help="fp32, fp16 or int8; overrides the parameter file")
    p.add_argument("--backend", help="overrides the parameter file")
    p.add_argument("--out", default="eval_out", help="report folder (default: %(default)s)")
    p.add_argument("--out-bag", help="also write a bag with labels / color / overlay topics (input stamps)")
    p.add_argument("--out-prefix", default="/segmentation_node",
                   help="namespace of the output topics, as the node's (default: %(default)s)")
    p.add_argument("--out-storage", choices=STORAGES, help="output bag storage (default: the input bag's)")
    p.add_argument("--out-distro", choices=sorted(DISTRO_VERSIONS), default="jazzy",
                   help="output bag for this ROS 2 distribution (default: jazzy)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out-bag")
    p.add_argument("--limit", type=int, help="evaluate only the first N frames")
    _add_max_pixels(p, from_params=True)
    p.add_argument("--no-charts", dest="charts", action="store_false", help="skip the PNG charts")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print two reports side by side instead of evaluating")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("import-checkpoint",
                       help="convert an official LiteSeg or a torchvision deeplabv3 checkpoint into a model file")
    p.add_argument("checkpoint", help=".pth state dict (read with torch.load(weights_only=True))")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--label-set", default=None,
                   help="camvid, cityscapes or voc (default: cityscapes for LiteSeg, voc for torchvision)")
    p.add_argument("--input-size", type=_resolution, default=None,
                   help="default inference size HxW (default: 512x1024 for LiteSeg, 520x520 for torchvision)")
    p.add_argument("--mean", type=_floats3, default=None, help="input mean of RGB/255 (default: ImageNet)")
    p.add_argument("--std", type=_floats3, default=None, help="input std of RGB/255 (default: ImageNet)")
    p.add_argument("--dataset", default=None, help="training data, for the provenance")
    p.add_argument("--source", default=None, help="where the checkpoint comes from (URL), for the provenance")
    p.add_argument("--val-miou", type=float, default=None, help="published validation mIoU, for the provenance")
    p.add_argument("--half", action="store_true", help="store fp16 weights (default fp32, bit-exact)")
    p.set_defaults(func=_cmd_import_checkpoint)

    p = sub.add_parser("soak", help="soak the node's ROS-free core: frames faster than the pipeline, live changes")
    p.add_argument("--frames", type=_number(int, 1), default=20000)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--size", type=_resolution, default=(96, 128), help="frame size HxW (default: 96x128)")
    p.add_argument("--interval-ms", type=_number(float, 0.0), default=4.0,
                   help="time between submitted frames (default: 4)")
    p.add_argument("--change-every", type=_number(int, 1), default=40,
                   help="frames between parameter changes (default: 40)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="soak.json", help="where to write the JSON report")
    p.add_argument("--flood", nargs=argparse.REMAINDER, default=None, metavar="FLOOD_ARGS",
                   help="instead: flood a real segmentation_node process (or a plain subscriber) over ROS 2 and "
                        "watch its memory; the rest of the line goes to the flood (seg-ros soak --flood --help)")
    p.set_defaults(func=_cmd_soak)

    p = sub.add_parser("demo", help="write a synthetic drive to a bag, evaluate it with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", type=_resolution, default=(360, 640), help="frame size HxW")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed (for provenance), also when :func:`main` is called with an argument list."""
    import shlex

    return shlex.join(["seg-ros", *args.argv])


def main(argv: list[str] | None = None) -> int:
    """Run ``seg-ros`` with ``argv`` (default: the process's arguments); returns the exit status.

    0: done; 2: a user error (one sentence on stderr, no output written); 130: interrupted (one line);
    1: an unexpected error (one line; the traceback with ``SEG_ROS_DEBUG=1``).
    """
    name = "seg-ros"
    process = argv is None  # the command of this process, not a call from Python code
    try:
        if process:
            from seg_ros.core.staging import catch_interrupts

            catch_interrupts()
        args = build_parser().parse_args(argv)
        name = f"seg-ros {args.command}"
        args.argv = list(sys.argv[1:] if process else argv)
        _raise_if_interrupted()  # one that a library swallowed while the parser imported it
        status = args.func(args) or 0
        _raise_if_interrupted()
        if process:  # the work is done and committed: a Ctrl-C during Python's shutdown changes nothing
            _ignore_interrupts()
    except KeyboardInterrupt:
        if process:  # a second Ctrl-C must not break the line below
            _ignore_interrupts()
        print(f"{name}: interrupted", file=sys.stderr)
        if process:
            # Exit now, with 130: an interrupt that passed through a library's C code has made Python
            # re-raise SIGINT at exit (status -2); output folders were already rolled back while unwinding.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every error ends as one line, see _user_error
        sentence = _user_error(e)
        if sentence is None:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            print(f"{name}: internal error: {type(e).__name__}: {_first_line(e)} (this is a bug; rerun with "
                  f"{DEBUG_ENV}=1 for the traceback and report it)", file=sys.stderr)
            return EXIT_INTERNAL_ERROR
        print(f"{name}: error: {sentence}", file=sys.stderr)
        return EXIT_USER_ERROR
    return status


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_if_interrupted() -> None:
    outputs = sys.modules.get("seg_ros.core.staging")
    if outputs is not None:
        outputs.raise_if_interrupted()


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _user_error(e: Exception) -> str | None:
    """The one sentence for an error the user's input or machine causes, or None for a bug."""
    if isinstance(e, SegRosError):
        return str(e)
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(
            k in str(e).lower() for k in ("not enough memory", "out of memory", "can't allocate memory"))):
        return ("the job ran out of memory; use smaller inputs, a smaller --resolution or batch, or a machine with "
                "more memory.")
    if isinstance(e, RecursionError):
        return "an input is nested too deeply to be read (e.g. a model file's metadata); it is not a valid input."
    if isinstance(e, OSError):
        where = f" {clip(e.filename)}" if e.filename else ""
        return f"cannot use{where}: {e.strerror or _first_line(e)}."
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and isinstance(e, cv2.error):
        detail = _first_line(e).partition("error: ")[2] or _first_line(e)
        return f"OpenCV cannot process an input ({detail.rstrip('.')})."
    return None

