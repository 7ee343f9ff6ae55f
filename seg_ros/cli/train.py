"""``seg-ros train``: train a registry architecture on a CamVid-layout folder or synthetic scenes."""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_ros.cli import args as a
from seg_ros.core.errors import SegRosError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a CamVid-layout folder or synthetic scenes")
    p.add_argument("--model", default="liteseg_mobilenetv2", help="registry architecture (default: %(default)s)")
    p.add_argument("--model-arg", type=a.model_arg, action="append", metavar="KEY=VALUE",
                   help="architecture option, repeatable, e.g. output_stride=8 or se=true for DeepLab on ResNet")
    p.add_argument("--data", help="dataset root with <split>/images and <split>/labels")
    p.add_argument("--splits", type=names, default=("train",), metavar="SPLIT[,SPLIT..]",
                   help="splits of --data pooled for training (default: train); with --val-sequences or --folds "
                        "the validation frames come from them too")
    p.add_argument("--group-by", default="prefix", metavar="prefix|list:FILE",
                   help="how frames form sequences: prefix = the file stem before its last '_' (CamVid: 0016E5), "
                        "list:FILE = lines 'frame_stem sequence' (default: prefix)")
    p.add_argument("--val-sequences", type=names, default=(), metavar="SEQ[,SEQ..]",
                   help="validate on every frame of these sequences of the pooled splits, train on all others")
    p.add_argument("--folds", metavar="K|sequence",
                   help="k-fold cross-validation by sequence (sequence: one fold per sequence); writes "
                        "OUT_STEM.fold<i>.safetensors and OUT_STEM.folds.json, skips finished folds")
    p.add_argument("--cross-validation", metavar="FOLDS_JSON",
                   help="record this cross-validation report's fold scores in the model's provenance")
    p.add_argument("--synthetic", action="store_true", help="train on procedural scenes instead of --data")
    p.add_argument("--label-set", default="camvid", help="camvid, cityscapes or voc (default: camvid)")
    p.add_argument("--synthetic-train", type=int, default=2000, help="synthetic scenes per epoch")
    p.add_argument("--synthetic-val", type=int, default=100, help="held-out synthetic validation scenes")
    p.add_argument("--synthetic-size", type=a.resolution, default=(360, 640), help="synthetic scene size HxW")
    p.add_argument("--crop", type=a.resolution, default=(360, 480), help="training crop HxW")
    p.add_argument("--val-size", type=a.resolution, default=None, metavar="HxW",
                   help="inference size for validation and the model's default resolution "
                        "(default: the validation frames' size)")
    p.add_argument("--scale-min", type=float, default=0.5)
    p.add_argument("--scale-max", type=float, default=2.0)
    p.add_argument("--photometric", action="store_true",
                   help="colour jitter: brightness, contrast, saturation, hue, gamma, blur, noise")
    p.add_argument("--rare-classes", type=names, default=(), metavar="CLASS[,CLASS..]",
                   help="centre a share of the crops (--rare-crop-p) on these classes where a frame holds them, "
                        "e.g. Pole,SignSymbol,Fence,Pedestrian,Bicyclist")
    p.add_argument("--rare-crop-p", type=a.number(float, 0.0, 1.0), default=0.5, metavar="P",
                   help="share of the crops centred on a rare class (default: 0.5)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="write the epoch with the best validation mIoU, or the last (no selection on the "
                        "validation frames; default: best)")
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
    p.add_argument("--device", default="auto", help=a.AUTO_DEVICE_HELP)
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="train in fp32 (default: fp16 mixed precision on CUDA, bf16 on a CPU with hardware bf16)")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fp32", dest="half", action="store_false", help="store fp32 weights (default fp16)")
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def names(text: str) -> tuple[str, ...]:
    """An argparse type: ``a,b`` → ("a", "b"), no empty or repeated name."""
    items = tuple(t.strip() for t in text.split(","))
    if not all(items) or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"expected different comma-separated names, not {text!r}")
    return items


def run(args: argparse.Namespace) -> None:
    from seg_ros.train import TrainConfig, cross_validate, parse_folds, read_folds_report, train

    if args.data is None and not args.synthetic:
        raise SegRosError("give --data DIR (a CamVid-layout folder) or --synthetic.")
    if args.data is not None and args.synthetic:
        raise SegRosError("give either --data or --synthetic, not both.")
    if args.synthetic and (args.val_sequences or args.folds or args.cross_validation):
        raise SegRosError("--val-sequences, --folds and --cross-validation need --data, not --synthetic.")
    if args.folds and args.cross_validation:
        raise SegRosError("give either --folds or --cross-validation, not both.")
    cfg = TrainConfig(
        out=args.out, architecture=args.model, arch_kwargs=dict(args.model_arg or []), data=args.data,
        train_splits=args.splits, val_sequences=args.val_sequences, group_by=args.group_by,
        label_set=args.label_set,
        synthetic_train=args.synthetic_train, synthetic_val=args.synthetic_val, synthetic_size=args.synthetic_size,
        crop=args.crop, val_size=args.val_size,
        scale=(args.scale_min, args.scale_max), photometric=args.photometric,
        rare_classes=args.rare_classes, rare_crop_p=args.rare_crop_p, epochs=args.epochs,
        batch_size=args.batch_size, keep=args.keep,
        optimizer=args.optimizer, loss=args.loss, class_weights=args.class_weights, lr=args.lr,
        weight_decay=args.weight_decay, pretrained=args.pretrained, init=args.init, ema=args.ema,
        device=args.device, amp=args.amp, workers=args.workers, seed=args.seed, half=args.half,
        max_steps_per_epoch=args.max_steps_per_epoch, command=a.command_line(args),
    )
    if args.folds:
        report = cross_validate(cfg, parse_folds(args.folds), resume=args.resume, progress=not args.quiet)
        print(report.table())
        return
    cv = read_folds_report(args.cross_validation) if args.cross_validation else None
    if not args.resume and cfg.checkpoint.exists():
        raise SegRosError(f"checkpoint {cfg.checkpoint} exists; pass --resume to continue it or delete it.")
    res = train(cfg, progress=not args.quiet,
                cross_validation=cv.provenance(Path(args.cross_validation).name) if cv else None)
    print(f"{args.keep} val mIoU {res.best_miou:.4f} at epoch {res.best_epoch}; model written to {res.model_path}")
