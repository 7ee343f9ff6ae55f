"""What ``seg-ros evaluate`` is asked to do (:class:`EvalOptions`) and the checks made before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from seg_ros.core.errors import ConfigError
from seg_ros.core.limits import DEFAULT_MAX_PIXELS
from seg_ros.core.paths import check_output_dir, require_dir
from seg_ros.io.bags import BagReader, BagWriter


@dataclass
class EvalOptions:
    """What to evaluate and where to write it.

    ``image_topic``: None = the topic recorded by ``bag-from-dataset`` or the bag's only image topic.
    ``gt_topic`` / ``gt_dir`` (+ ``gt_match``): the ground truth; with neither, the topic recorded by
    ``bag-from-dataset`` if present, else a latency-only run. ``gt_window_s``: how long (bag log time, s) a
    frame waits for its ground-truth message before it counts as missing. ``limit``: evaluate only the first
    frames. ``out_storage`` / ``out_distro``: of the output bag (default: the input bag's storage, Jazzy).
    ``charts``: draw the PNG charts (about a second of matplotlib per run).
    """

    bag: Path
    out: Path = Path("eval_out")
    image_topic: str | None = None
    gt_topic: str | None = None
    gt_dir: Path | None = None
    gt_match: str = "stamp"
    gt_window_s: float = 2.0
    out_bag: Path | None = None
    out_prefix: str = "/segmentation_node"
    out_storage: str | None = None
    out_distro: str = "jazzy"
    overwrite: bool = False
    limit: int | None = None
    charts: bool = True
    progress: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Pixel budget of a camera or ground-truth frame, checked before it is decoded (the node's ``max_pixels``)."""

    @property
    def output_topics(self) -> tuple[str, str, str]:
        """The output bag's topics: ``<out_prefix>/labels``, ``/color`` and ``/overlay``."""
        prefix = self.out_prefix.rstrip("/")
        return f"{prefix}/labels", f"{prefix}/color", f"{prefix}/overlay"


def check_options(opts: EvalOptions) -> None:
    """Raise a SegRosError (one sentence) for a bad option or path, before anything is read or written.

    The bag must be a regular file or a folder, ``--gt-dir`` a folder, and the report folder and the output
    bag's folder writable.
    """
    if opts.gt_topic and opts.gt_dir:
        raise ConfigError("give the ground truth either as a topic (--gt-topic) or as a folder (--gt-dir), not both.")
    if not opts.gt_window_s >= 0 or not math.isfinite(opts.gt_window_s):
        raise ConfigError(f"the ground-truth window must be a finite 0 s or more, not {opts.gt_window_s}.")
    if opts.limit is not None and opts.limit < 1:
        raise ConfigError(f"limit must be at least 1 frame, not {opts.limit}.")
    BagReader.check_path(opts.bag)
    if opts.gt_dir is not None:
        require_dir(opts.gt_dir, "ground-truth folder")
    check_output_dir(opts.out, "report folder")
    if opts.out_bag is not None:
        BagWriter.check_path(opts.out_bag, opts.overwrite)
