"""The ``seg-ros`` argument parser, assembled from one module per subcommand.

Each subcommand module has ``add_parser(subparsers)``, which registers its options and sets ``func`` to
its ``run(args)``; modules import torch, OpenCV and the ROS libraries only inside ``run``.
"""

from __future__ import annotations

import argparse

from seg_ros import __version__
from seg_ros.cli import (
    bag_from_dataset,
    bench,
    demo,
    evaluate,
    export,
    import_checkpoint,
    models,
    segment,
    soak,
    train,
    tune_crf,
)
from seg_ros.cli.args import Parser

SUBCOMMANDS = (models, segment, train, bench, tune_crf, export, bag_from_dataset, evaluate, import_checkpoint, soak,
               demo)
"""In the order ``seg-ros --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; ``parse_args(...).func(args)`` runs the one given."""
    parser = Parser(prog="seg-ros", description="Real-time semantic segmentation for ROS 2 cameras.")
    parser.add_argument("--version", action="version", version=f"seg-ros {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser
