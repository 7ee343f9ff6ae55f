"""``seg-ros models``: the registry's architectures and the shipped model files."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list architectures and shipped model files")
    p.add_argument("--details", action="store_true", help="also parameter counts and file paths")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from seg_ros.models import available, get_spec
    from seg_ros.models.modelfile import DEFAULT_MODEL, read_meta, shipped_models
    from seg_ros.train.provenance import validation_summary

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
        summary = validation_summary(prov)
        if summary:
            print(f"  {'':28s} {summary}")
        if args.details:
            print(f"  {'':28s} {path} ({path.stat().st_size / 1e6:.1f} MB), {prov.get('date', '')}")
