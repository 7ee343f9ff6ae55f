"""``seg-ros import-checkpoint``: an official LiteSeg or torchvision deeplabv3 checkpoint → a model file."""

from __future__ import annotations

import argparse

from seg_ros.cli import args as a


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-checkpoint",
                       help="convert an official LiteSeg or a torchvision deeplabv3 checkpoint into a model file")
    p.add_argument("checkpoint", help=".pth state dict (read with torch.load(weights_only=True))")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--label-set", default=None,
                   help="camvid, cityscapes or voc (default: cityscapes for LiteSeg, voc for torchvision)")
    p.add_argument("--input-size", type=a.resolution, default=None,
                   help="default inference size HxW (default: 512x1024 for LiteSeg, 520x520 for torchvision)")
    p.add_argument("--mean", type=a.floats3, default=None, help="input mean of RGB/255 (default: ImageNet)")
    p.add_argument("--std", type=a.floats3, default=None, help="input std of RGB/255 (default: ImageNet)")
    p.add_argument("--dataset", default=None, help="training data, for the provenance")
    p.add_argument("--source", default=None, help="where the checkpoint comes from (URL), for the provenance")
    p.add_argument("--val-miou", type=float, default=None, help="published validation mIoU, for the provenance")
    p.add_argument("--half", action="store_true", help="store fp16 weights (default fp32, bit-exact)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.models.checkpoint_import import import_checkpoint

    provenance = {k: v for k, v in (("dataset", args.dataset), ("source", args.source),
                                    ("val_miou", args.val_miou)) if v is not None}
    kw = {} if args.mean is None else {"mean": args.mean}
    if args.std is not None:
        kw["std"] = args.std
    report = import_checkpoint(args.checkpoint, args.out, label_set=args.label_set, input_size=args.input_size,
                               provenance=provenance, half=args.half, command=a.command_line(args), **kw)
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
