"""``seg-ros evaluate``: replay a bag through the Segmenter and score it against ground truth.

Every image on the image topic is read in log-time order and segmented —
lossless stepping, not wall-clock playback, so no frame is ever dropped —
with a Segmenter built from the node's parameter file (``--params``, the
same file ``segmentation_node`` reads, through :func:`seg_ros.ros.params.segmenter_kwargs`).

Ground truth comes from a topic of mono8 label images (matched to camera
frames by identical ``header.stamp``) or from a folder of label PNGs (see
:class:`GroundTruthDir`). One confusion matrix is accumulated over every
scored pixel of the run (the label set's ignore id excluded), exactly as
cityscapesscripts' ``evalPixelLevelSemanticLabeling`` does. Frames without
ground truth are counted and listed, never silently dropped.

Outputs (written all-or-nothing into the report folder): ``report.json``,
``report.md``, ``iou_per_class.png``, ``confusion_matrix.png``,
``latency_histogram.png``; with ``out_bag`` a bag with the input images and
camera_info plus ``<prefix>/labels`` (mono8), ``<prefix>/color`` and
``<prefix>/overlay`` (rgb8), every message carrying its input frame's header
and log time.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seg_ros import __version__
from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.labels import LabelSet
from seg_ros.core.limits import DEFAULT_MAX_PIXELS
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.paths import check_output_dir, require_dir, require_file
from seg_ros.core.staging import staged_output
from seg_ros.io.bags import (
    CAMERA_INFO,
    CUSTOM_GT_TOPIC,
    CUSTOM_IMAGE_TOPIC,
    CUSTOM_LABEL_SET,
    IMAGE,
    BagInfo,
    BagReader,
    BagTopicError,
    BagWriter,
    ImageMessage,
)
from seg_ros.io.datasets import check_label_ids, read_labels
from seg_ros.pipeline import STAGES, Segmenter, format_resolution

REPORT_FORMAT = "seg_ros.evaluate/1"
GT_MATCHES = ("stamp", "index")
OVERHEAD_STAGES = ("read", "decode", "score", "write")
"""Evaluate's own work per frame, outside the Segmenter: bag reading and deserialisation (and ground-truth
pairing), image and label decoding, confusion-matrix update, output-bag writing."""
MAX_LISTED = 50
"""At most this many unscored frames are listed by index and stamp in report.json."""


# -- ground truth from a folder -----------------------------------------------------------------------------------

class GroundTruthDir:
    """Label PNGs (single-channel 8-bit class ids) named by an integer that identifies a camera frame.

    ``match="stamp"``: the frame's ``header.stamp`` in nanoseconds, e.g. ``1700000000100000000.png``.
    ``match="index"``: the frame's 0-based position on the image topic in log-time order, with any zero
    padding, e.g. ``000042.png`` or ``42.png``. Files whose stem is not an integer are ignored; two files
    for the same frame are an error. A frame without a file is counted as missing ground truth.
    """

    def __init__(self, path: str | os.PathLike, match: str = "stamp"):
        self.path = Path(path)
        if match not in GT_MATCHES:
            raise ConfigError(f"ground-truth matching must be one of {', '.join(GT_MATCHES)}, not {match!r}.")
        self.match = match
        if not self.path.is_dir():
            raise InputError(f"ground-truth folder {self.path} does not exist.")
        self.files: dict[int, Path] = {}
        for p in sorted(self.path.iterdir()):
            if p.suffix.lower() != ".png" or not p.stem.isdigit():
                continue
            key = int(p.stem)
            if key in self.files:
                raise InputError(f"ground-truth folder {self.path} has two files for {match} {key}: "
                                 f"{self.files[key].name} and {p.name}.")
            self.files[key] = p
        if not self.files:
            example = "1700000000100000000.png" if match == "stamp" else "000042.png"
            raise InputError(f"ground-truth folder {self.path} holds no label PNG named by a frame {match} "
                             f"(like {example}).")

    def lookup(self, frame: ImageMessage) -> Path | None:
        return self.files.get(frame.stamp_ns if self.match == "stamp" else frame.index)


# -- options ------------------------------------------------------------------------------------------------------

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


def segmenter_from_params(params_file: str | os.PathLike | None = None,
                          overrides: dict[str, Any] | None = None) -> tuple[Segmenter, dict[str, Any]]:
    """A Segmenter configured exactly as the node would be by ``params_file`` (a ROS 2 parameter YAML).

    ``overrides`` (parameter name → value, e.g. from command-line flags) replace file values and are validated
    against the node's parameter schema. Returns the Segmenter and the full validated parameter values.
    """
    from seg_ros.ros.params import defaults, load_params_file, segmenter_kwargs, validate

    values = load_params_file(params_file) if params_file is not None else defaults()
    for name, value in (overrides or {}).items():
        values[name] = validate(name, value)
    return Segmenter(**segmenter_kwargs(values)), values


# -- pairing frames with ground truth -----------------------------------------------------------------------------

@dataclass
class _Pair:
    frame: ImageMessage
    gt: ImageMessage | None
    read_s: float


class _Replay:
    """Walks the bag once: yields every camera frame in order with its ground-truth message (or None).

    A frame waits for a ground-truth message with the same header stamp until the bag's log time has moved
    ``window_ns`` past it; ground-truth messages that never meet a frame are counted in ``gt_unmatched``.
    CameraInfo messages are handed to ``on_camera_info`` as they pass.
    """

    def __init__(self, reader: BagReader, image_topic: str, gt_topic: str | None, window_ns: int,
                 camera_info_topics: list[str], on_camera_info: Callable[[Any], None] | None):
        self.reader, self.image_topic, self.gt_topic = reader, image_topic, gt_topic
        self.window_ns = window_ns
        self.camera_info_topics = camera_info_topics
        self.on_camera_info = on_camera_info
        self.gt_unmatched = 0
        self.gt_duplicates = 0

    def __iter__(self) -> Iterator[_Pair]:
        topics = [self.image_topic] + ([self.gt_topic] if self.gt_topic else []) + self.camera_info_topics
        pending: deque[ImageMessage] = deque()
        waiting: set[int] = set()  # stamps of the pending frames
        gts: dict[int, ImageMessage] = {}
        n_img = n_gt = 0
        t0 = time.perf_counter()
        for m in self.reader.messages(topics):
            now = m.log_time_ns
            # frames whose wait is over leave first, before this message can pair with them
            while pending and self.gt_topic is not None and now - pending[0].log_time_ns > self.window_ns:
                f = pending.popleft()
                waiting.discard(f.stamp_ns)
                yield _Pair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
                t0 = time.perf_counter()
            if m.topic == self.image_topic:
                f = self.reader.image_message(m, n_img)
                n_img += 1
                pending.append(f)
                waiting.add(f.stamp_ns)
            elif m.topic == self.gt_topic:
                g = self.reader.image_message(m, n_gt)
                n_gt += 1
                if g.stamp_ns in gts:
                    self.gt_duplicates += 1
                gts[g.stamp_ns] = g
            elif self.on_camera_info is not None:
                self.on_camera_info(m)
            while pending and (self.gt_topic is None or pending[0].stamp_ns in gts):
                f = pending.popleft()
                waiting.discard(f.stamp_ns)
                yield _Pair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
                t0 = time.perf_counter()
            if gts:
                stale = [s for s, g in gts.items() if now - g.log_time_ns > self.window_ns and s not in waiting]
                for s in stale:
                    del gts[s]
                self.gt_unmatched += len(stale)
        while pending:
            f = pending.popleft()
            yield _Pair(f, gts.pop(f.stamp_ns, None), time.perf_counter() - t0)
            t0 = time.perf_counter()
        self.gt_unmatched += len(gts)


# -- the run ------------------------------------------------------------------------------------------------------

def _pick_image_topic(info: BagInfo, opts: EvalOptions) -> str:
    if opts.image_topic:
        return opts.image_topic
    hinted = info.custom.get(CUSTOM_IMAGE_TOPIC)
    if hinted and info.topic(hinted) is not None:
        return hinted
    candidates = [t.name for t in info.image_topics() if t.name != opts.gt_topic]
    if len(candidates) == 1:
        return candidates[0]
    raise BagTopicError(f"bag {info.path} has {len(candidates) or 'no'} candidate image topics; name one with "
                        f"--image-topic (its image topics are: {info.describe_image_topics()}).")


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3),
            "mean": round(float(a.mean()), 3)}


def _nan_to_none(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def evaluate_bag(opts: EvalOptions, segmenter: Segmenter, *, settings: dict[str, Any] | None = None,
                 command: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Replay ``opts.bag`` through ``segmenter``, write the report (and output bag); returns report.json's content.

    Raises a SegRosError subclass (one sentence) for any bad input; then nothing is written.
    """
    check_options(opts)
    label_set = segmenter.label_set
    gt_dir = GroundTruthDir(opts.gt_dir, opts.gt_match) if opts.gt_dir is not None else None
    wall0 = time.perf_counter()
    with BagReader(opts.bag) as reader:
        info = reader.info
        if info.message_count == 0:
            reader.require_topic(opts.image_topic or "")  # raises EmptyBagError
        image_topic = _pick_image_topic(info, opts)
        img_topic_info = reader.require_topic(image_topic)
        gt_topic = opts.gt_topic
        if gt_topic is None and gt_dir is None:
            hinted = info.custom.get(CUSTOM_GT_TOPIC)
            gt_topic = hinted if hinted and info.topic(hinted) is not None else None
        if gt_topic is not None:
            if gt_topic == image_topic:
                raise ConfigError(f"the ground-truth topic and the image topic are both {gt_topic}.")
            reader.require_topic(gt_topic, (IMAGE,), role="ground-truth")
            bag_labels = info.custom.get(CUSTOM_LABEL_SET)
            if bag_labels and bag_labels != label_set.name:
                raise ConfigError(f"the ground truth in bag {opts.bag} uses the {bag_labels} label set but the model "
                                  f"predicts {label_set.name}; evaluate it with a {bag_labels} model.")
        gt_source: dict[str, Any] | None = (
            {"topic": gt_topic} if gt_topic else
            {"dir": str(gt_dir.path), "match": gt_dir.match, "files": len(gt_dir.files)} if gt_dir else None)
        total = img_topic_info.count if opts.limit is None else min(img_topic_info.count, opts.limit)
        cam_topics = [t.name for t in info.topics if t.msgtype == CAMERA_INFO] if opts.out_bag else []
        writer = (BagWriter(opts.out_bag, distro=opts.out_distro, storage=opts.out_storage or info.storage,
                            overwrite=opts.overwrite) if opts.out_bag else None)
        prefix = opts.out_prefix.rstrip("/")
        outputs = ("labels", "color", "overlay") if writer else ("labels",)
        try:
            with staged_output(opts.out) as stage:
                replay = _Replay(reader, image_topic, gt_topic, round(opts.gt_window_s * 1e9), cam_topics,
                                 (lambda m: writer.write_raw(m.topic, m.msgtype, m.raw, m.log_time_ns))
                                 if writer else None)
                cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
                stage_ms: dict[str, list[float]] = {s: [] for s in (*STAGES, "total")}
                over_ms: dict[str, list[float]] = {s: [] for s in OVERHEAD_STAGES}
                missing: list[dict[str, Any]] = []
                n_missing = scored = frames = 0
                size: tuple[int, int] | None = None
                bar = tqdm(total=total, desc="evaluate", unit="frame", disable=not opts.progress)
                loop0 = time.perf_counter()
                for pair in replay:
                    if frames >= total:
                        break
                    f = pair.frame
                    t0 = time.perf_counter()
                    rgb = f.to_rgb(opts.max_pixels)
                    gt = None
                    if pair.gt is not None:
                        gt = pair.gt.to_labels(opts.max_pixels)
                    elif gt_dir is not None and (path := gt_dir.lookup(f)) is not None:
                        gt = read_labels(path, opts.max_pixels)
                    if gt is not None:
                        if gt.shape != rgb.shape[:2]:
                            raise InputError(f"the ground truth of {f.describe()} is {gt.shape[1]}x{gt.shape[0]} but "
                                             f"the camera image is {rgb.shape[1]}x{rgb.shape[0]}.")
                        check_label_ids(gt, label_set, f"the ground truth of {f.describe()}")
                    t1 = time.perf_counter()
                    r = segmenter.segment(rgb, outputs)
                    t2 = time.perf_counter()
                    if gt is not None:
                        cm.update(r.labels, gt)
                        scored += 1
                    elif gt_source is not None:
                        n_missing += 1
                        if len(missing) < MAX_LISTED:
                            missing.append({"index": f.index, "stamp_ns": f.stamp_ns})
                    t3 = time.perf_counter()
                    if writer is not None:
                        writer.write_raw(f.topic, f.msgtype, f.raw, f.log_time_ns)
                        for name, arr in (("labels", r.labels), ("color", r.color), ("overlay", r.overlay)):
                            writer.write_image(f"{prefix}/{name}", arr, f.stamp_ns, f.frame_id, f.log_time_ns)
                    t4 = time.perf_counter()
                    for s in (*STAGES, "total"):
                        stage_ms[s].append(r.timings[s])
                    for s, dt in zip(OVERHEAD_STAGES, (pair.read_s, t1 - t0, t3 - t2, t4 - t3)):
                        over_ms[s].append(dt * 1000.0)
                    size = size or (rgb.shape[0], rgb.shape[1])
                    frames += 1
                    bar.update(1)
                bar.close()
                loop_s = time.perf_counter() - loop0
                report = _report(
                    opts, info, image_topic, img_topic_info.msgtype, gt_source, segmenter, settings, command,
                    cm if gt_source is not None else None, stage_ms, over_ms, frames, scored, n_missing, missing,
                    replay, size, loop_s)
                t_rep = time.perf_counter()
                _write_report_files(stage, report, cm if gt_source is not None else None, label_set, stage_ms,
                                    opts.charts)
                report["report_write_s"] = round(time.perf_counter() - t_rep, 3)
                report["wall_s"] = round(time.perf_counter() - wall0, 3)
                stage.path("report.json").write_text(json.dumps(report, indent=2))
                if writer is not None:
                    writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is not None:
        writer.commit()
    for line in summary_lines(report):
        log(line)
    return report


def _report(opts: EvalOptions, info: BagInfo, image_topic: str, image_type: str, gt_source: dict | None,
            seg: Segmenter, settings: dict | None, command: str | None, cm: ConfusionMatrix | None,
            stage_ms: dict[str, list[float]], over_ms: dict[str, list[float]], frames: int, scored: int,
            n_missing: int, missing: list[dict], replay: _Replay, size: tuple[int, int] | None,
            loop_s: float) -> dict[str, Any]:
    ls = seg.label_set
    metrics = None
    if cm is not None:
        metrics = {
            "miou": _nan_to_none(cm.miou()),
            "pixel_accuracy": _nan_to_none(cm.pixel_accuracy()),
            "iou": {n: _nan_to_none(v) for n, v in zip(ls.names, cm.iou())},
            "class_accuracy": {n: _nan_to_none(v) for n, v in zip(ls.names, cm.class_accuracy())},
            "pixels": cm.total,
            "confusion_matrix": cm.matrix.tolist(),
        }
    pipeline_ms = sum(stage_ms["total"])
    overhead_ms = {s: sum(v) for s, v in over_ms.items()}
    mean_total = float(np.mean(stage_ms["total"])) if frames else float("nan")
    return {
        "format": REPORT_FORMAT,
        "seg_ros_version": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "bag": {"path": str(info.path), "storage": info.storage, "version": info.version,
                "duration_s": round(info.duration_s, 3), "messages": info.message_count,
                "image_topic": image_topic, "image_type": image_type},
        "ground_truth": gt_source,
        "model": {"description": seg.describe(), "path": str(seg.model_path), "architecture": seg.meta.architecture,
                  "label_set": ls.name, "classes": list(ls.names), "ignore_id": ls.ignore_id,
                  "resolution": format_resolution(seg.resolution), "provenance": seg.meta.provenance},
        "settings": settings or {},
        "frames": {
            "total": frames, "scored": scored, "missing_gt": n_missing, "missing_gt_frames": missing,
            "gt_without_frame": replay.gt_unmatched, "gt_duplicate_stamps": replay.gt_duplicates,
            "size": format_resolution(size) if size else None,
        },
        "metrics": metrics,
        "latency_ms": {s: _stats(v) for s, v in stage_ms.items()},
        "fps": round(1000.0 / mean_total, 2) if frames and mean_total > 0 else None,
        "throughput_fps": round(frames / loop_s, 2) if frames and loop_s > 0 else None,
        "overhead_ms": {s: _stats(v) for s, v in over_ms.items()},
        "overhead_pct": (round(100.0 * sum(overhead_ms.values()) / pipeline_ms, 2) if pipeline_ms > 0 else None),
        "out_bag": ({"path": str(opts.out_bag), "topics": [f"{opts.out_prefix.rstrip('/')}/{n}"
                                                          for n in ("labels", "color", "overlay")]}
                    if opts.out_bag else None),
    }


def _write_report_files(stage: Any, report: dict[str, Any], cm: ConfusionMatrix | None, ls: LabelSet,
                        stage_ms: dict[str, list[float]], charts: bool) -> None:
    from seg_ros.evaluate.plots import plot_confusion, plot_iou, plot_latency

    report["charts"] = []
    if not charts:
        stage.path("report.md").write_text(report_markdown(report))
        return
    if cm is not None and cm.total > 0:
        plot_iou(ls.names, list(report["metrics"]["iou"].values()), stage.path("iou_per_class.png"),
                 f"Per-class IoU — {Path(report['bag']['path']).name}")
        plot_confusion(ls.names, cm.matrix, stage.path("confusion_matrix.png"))
        report["charts"] += ["iou_per_class.png", "confusion_matrix.png"]
    if report["frames"]["total"]:
        plot_latency(stage_ms, stage.path("latency_histogram.png"),
                     f"Latency per stage — {report['model']['description']}")
        report["charts"].append("latency_histogram.png")
    stage.path("report.md").write_text(report_markdown(report))


# -- presenting ---------------------------------------------------------------------------------------------------

def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines for the terminal: scores, frames, speed."""
    fr = report["frames"]
    lines = []
    m = report["metrics"]
    if m is not None:
        lines.append(f"mIoU {_f(m['miou'])}, pixel accuracy {_f(m['pixel_accuracy'])} over {fr['scored']} scored "
                     f"frames of {fr['total']}")
    else:
        lines.append(f"no ground truth given: latency only, {fr['total']} frames")
    if fr["missing_gt"]:
        lines.append(f"warning: {fr['missing_gt']} of {fr['total']} frames had no ground truth and were not scored "
                     f"(listed in report.json under frames.missing_gt_frames)")
    if fr["gt_without_frame"]:
        lines.append(f"warning: {fr['gt_without_frame']} ground-truth images matched no camera frame")
    lat = report["latency_ms"]["total"]
    if lat:
        ov = report["overhead_pct"]
        lines.append(f"{report['fps']} fps in the pipeline (p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms per "
                     f"frame); evaluate's own overhead {_f(ov, 1)}% of the pipeline time")
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """report.md: the run, the scores, per-class IoU, latency per stage and overhead, with the charts."""
    fr, m, b = report["frames"], report["metrics"], report["bag"]
    gt = report["ground_truth"]
    gt_text = ("none (latency only)" if gt is None else f"topic `{gt['topic']}`" if "topic" in gt
               else f"folder `{gt['dir']}` (files named by frame {gt['match']})")
    lines = [
        "# seg_ros evaluation",
        "",
        f"- Bag: `{b['path']}` ({b['storage']}, rosbag2 metadata version {b['version'] or 'n/a'}, "
        f"{b['duration_s']} s, {b['messages']} messages)",
        f"- Camera images: `{b['image_topic']}` ({b['image_type']}), {fr['size'] or 'n/a'}",
        f"- Ground truth: {gt_text}",
        f"- Model: {report['model']['description']}",
        f"- Date: {report['date']}, seg_ros {report['seg_ros_version']}",
    ]
    if report.get("command"):
        lines.append(f"- Command: `{report['command']}`")
    lines += [
        "",
        f"Frames: **{fr['total']}** replayed, **{fr['scored']}** scored, **{fr['missing_gt']}** without ground "
        f"truth (not scored), {fr['gt_without_frame']} ground-truth images without a camera frame.",
        "",
    ]
    if m is not None:
        lines += [
            f"**mIoU {_f(m['miou'])}**, pixel accuracy {_f(m['pixel_accuracy'])} "
            f"({m['pixels']:,} scored pixels; one confusion matrix over the whole run, ignore id excluded).",
            "",
            "| class | IoU | accuracy |",
            "|---|---|---|",
            *[f"| {n} | {_f(v)} | {_f(m['class_accuracy'][n])} |" for n, v in m["iou"].items()],
            "",
        ]
        for png, alt in (("iou_per_class.png", "per-class IoU"), ("confusion_matrix.png", "confusion matrix")):
            if png in report.get("charts", ()):
                lines += [f"![{alt}]({png})", ""]
    lines += [
        f"Pipeline: **{report['fps']} fps** (from the mean total); {report['throughput_fps']} frames/s through "
        "the whole replay including evaluate's own work.",
        "",
        "| stage | p50 ms | p90 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in (("", report["latency_ms"]), ("evaluate: ", report["overhead_ms"])):
        for s, st in block.items():
            if st:
                lines.append(f"| {name}{s} | {st['p50']:.2f} | {st['p90']:.2f} | {st['p99']:.2f} | {st['max']:.2f} "
                             f"| {st['mean']:.2f} |")
    lines += [
        "",
        f"Evaluate's own overhead (reading, decoding, scoring, writing): {_f(report['overhead_pct'], 1)}% of the "
        "pipeline time.",
    ]
    if "latency_histogram.png" in report.get("charts", ()):
        lines += ["", "![latency](latency_histogram.png)"]
    if fr["missing_gt_frames"]:
        lines += ["", "Frames without ground truth (first "
                  f"{len(fr['missing_gt_frames'])}): " + ", ".join(
                      f"{x['index']} ({x['stamp_ns'] / 1e9:.3f} s)" for x in fr["missing_gt_frames"])]
    if report["out_bag"]:
        lines += ["", f"Output bag: `{report['out_bag']['path']}` with " +
                  ", ".join(f"`{t}`" for t in report["out_bag"]["topics"]) + ", the input images and camera_info."]
    return "\n".join(lines) + "\n"


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a report.json written by ``seg-ros evaluate``; InputError if it is not one."""
    p = require_file(path, "report")
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise InputError(f"cannot read report {p} ({e.strerror}).") from e
    except ValueError as e:
        raise InputError(f"report {p} is not JSON ({e}).") from e
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise InputError(f"{p} is not a report.json written by seg-ros evaluate.")
    return data


def compare_reports(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """A Markdown table of two reports side by side, with B − A for the numbers."""
    def num(r: dict, *keys: str) -> float | None:
        v: Any = r
        for k in keys:
            if not isinstance(v, dict) or v.get(k) is None:
                return None
            v = v[k]
        return float(v)

    def row(label: str, va: float | None, vb: float | None, digits: int = 3) -> str:
        d = "" if va is None or vb is None else f"{vb - va:+.{digits}f}"
        return f"| {label} | {_f(va, digits)} | {_f(vb, digits)} | {d} |"

    lines = [f"| | {names[0]} | {names[1]} | {names[1]} − {names[0]} |", "|---|---|---|---|"]
    lines.append(f"| model | {a['model']['description']} | {b['model']['description']} | |")
    lines.append(f"| bag | {a['bag']['path']} ({a['bag']['image_topic']}) | {b['bag']['path']} "
                 f"({b['bag']['image_topic']}) | |")
    lines.append(row("frames scored", num(a, "frames", "scored"), num(b, "frames", "scored"), 0))
    lines.append(row("frames without ground truth", num(a, "frames", "missing_gt"), num(b, "frames", "missing_gt"), 0))
    lines.append(row("mIoU", num(a, "metrics", "miou"), num(b, "metrics", "miou")))
    lines.append(row("pixel accuracy", num(a, "metrics", "pixel_accuracy"), num(b, "metrics", "pixel_accuracy")))
    classes = list(dict.fromkeys([*((a.get("metrics") or {}).get("iou") or {}),
                                  *((b.get("metrics") or {}).get("iou") or {})]))
    for c in classes:
        lines.append(row(f"IoU {c}", num(a, "metrics", "iou", c), num(b, "metrics", "iou", c)))
    lines.append(row("fps (pipeline)", num(a, "fps"), num(b, "fps"), 1))
    for s in (*STAGES, "total"):
        for q in ("p50", "p99"):
            lines.append(row(f"{s} {q} ms", num(a, "latency_ms", s, q), num(b, "latency_ms", s, q), 2))
    lines.append(row("evaluate overhead %", num(a, "overhead_pct"), num(b, "overhead_pct"), 1))
    return "\n".join(lines)
