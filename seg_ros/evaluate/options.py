"""What ``seg-ros evaluate`` is asked to do (:class:`EvalOptions`) and the checks made before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from seg_ros.core.errors import ConfigError
from seg_ros.core.limits import DEFAULT_MAX_PIXELS
from seg_ros.core.paths import check_output_dir, require_dir
from seg_ros.evaluate.tta import TTAConfig
from seg_ros.io.bags import BagReader, BagWriter


@dataclass
class EvalOptions:
    """What to evaluate and where to write it.

    ``image_topics``: the camera topics to score; empty = every camera a multi-camera bag records, else the topic
    recorded by ``bag-from-dataset`` or the bag's only image topic. ``gt_topics`` (one per image topic, in the
    same order) / ``gt_dir`` (+ ``gt_match``, one camera only): the ground truth; with neither, the topics
    recorded by ``bag-from-dataset`` where present, else a latency-only run. ``gt_window_s``: how long (bag log
    time, s) a frame waits for its ground-truth message before it counts as missing. ``limit``: evaluate only the
    first frames of each camera. ``out_storage`` / ``out_distro``: of the output bag (default: the input bag's
    storage, Jazzy).
    ``charts``: draw the PNG charts (about a second of matplotlib per run). ``tta``: segment every frame with
    test-time augmentation (an offline score; the robot's is the one without), None for the Segmenter's own.
    """

    bag: Path
    out: Path = Path("eval_out")
    image_topics: tuple[str, ...] = ()
    gt_topics: tuple[str, ...] = ()
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
    tta: TTAConfig | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Pixel budget of a camera or ground-truth frame, checked before it is decoded (the node's ``max_pixels``)."""

    @property
    def output_topics(self) -> tuple[str, str, str]:
        """The output bag's topics for one camera: ``<out_prefix>/labels``, ``/color`` and ``/overlay``."""
        return self.camera_output_topics(None)

    def camera_output_topics(self, camera: str | None) -> tuple[str, str, str]:
        """The output bag's topics of ``camera``: ``<out_prefix>/<camera>/labels``, ``/color`` and ``/overlay``;
        those of :attr:`output_topics` for None (a one-camera run)."""
        prefix = self.out_prefix.rstrip("/") + (f"/{camera}" if camera else "")
        return f"{prefix}/labels", f"{prefix}/color", f"{prefix}/overlay"


def check_options(opts: EvalOptions) -> None:
    """Raise a SegRosError (one sentence) for a bad option or path, before anything is read or written.

    The bag must be a regular file or a folder, ``--gt-dir`` a folder, and the report folder and the output
    bag's folder writable.
    """
    if opts.gt_topics and opts.gt_dir:
        raise ConfigError("give the ground truth either as a topic (--gt-topic) or as a folder (--gt-dir), not both.")
    _check_topics(opts)
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


def _check_topics(opts: EvalOptions) -> None:
    images, gts = opts.image_topics, opts.gt_topics
    for topics, option in ((images, "--image-topic"), (gts, "--gt-topic")):
        repeated = sorted({t for t in topics if topics.count(t) > 1})
        if repeated:
            raise ConfigError(f"{option} {repeated[0]} is given more than once.")
    if images and gts and len(images) != len(gts):
        raise ConfigError(f"give one --gt-topic per --image-topic, in the same order, not {len(gts)} ground-truth "
                          f"topics for {len(images)} image topics.")
    if len(gts) > 1 and not images:
        raise ConfigError("name the camera of each --gt-topic with --image-topic, in the same order.")
    if opts.gt_dir is not None and len(images) > 1:
        raise ConfigError(f"--gt-dir holds the labels of one camera; give it with one --image-topic, not "
                          f"{len(images)}.")
