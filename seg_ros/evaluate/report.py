"""The evaluation report as typed values, and its report.json form.

:class:`EvaluationReport` holds everything ``seg-ros evaluate`` measured; :meth:`EvaluationReport.to_json`
gives report.json's content (keys in their documented order, see docs/evaluation.md) and
:meth:`EvaluationReport.from_json` reads it back, so ``from_json(r.to_json()) == r``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seg_ros.core.errors import InputError
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.paths import read_text_file
from seg_ros.evaluate.tta import TTAConfig

REPORT_FORMAT = "seg_ros.evaluate/1"
"""report.json's ``format``: :func:`load_report` reads only files that carry it."""


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class BagSummary:
    """The replayed bag: its path, storage plugin, rosbag2 metadata version, log-time span (s), message count,
    and the camera image topic with its message type."""

    path: str
    storage: str
    version: int | None
    duration_s: float
    messages: int
    image_topic: str
    image_type: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "storage": self.storage, "version": self.version, "duration_s": self.duration_s,
                "messages": self.messages, "image_topic": self.image_topic, "image_type": self.image_type}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BagSummary:
        return cls(**{k: d[k] for k in ("path", "storage", "version", "duration_s", "messages", "image_topic",
                                        "image_type")})


@dataclass(frozen=True)
class GroundTruthSource:
    """Where the ground truth came from: a bag topic, or a folder of label PNGs (``files`` of them) named by frame
    ``match`` (``stamp`` or ``index``)."""

    topic: str | None = None
    dir: str | None = None
    match: str | None = None
    files: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.topic is not None:
            return {"topic": self.topic}
        return {"dir": self.dir, "match": self.match, "files": self.files}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GroundTruthSource:
        if "topic" in d:
            return cls(topic=d["topic"])
        return cls(dir=d["dir"], match=d["match"], files=d["files"])


@dataclass(frozen=True)
class ModelSummary:
    """The Segmenter that ran: its one-line description, model file, architecture, label set (name, class names,
    ignore id), inference resolution ("HxW"), the model file's provenance, the backend and precision it ran on
    (what ``auto`` resolved to; empty in reports written before they were recorded), and the test-time
    augmentation it ran with (None without: report.json then has no ``tta`` key)."""

    description: str
    path: str
    architecture: str
    label_set: str
    classes: tuple[str, ...]
    ignore_id: int
    resolution: str
    provenance: dict[str, Any] | None
    backend: str = ""
    precision: str = ""
    tta: TTAConfig | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"description": self.description, "path": self.path, "architecture": self.architecture,
             "label_set": self.label_set, "classes": list(self.classes), "ignore_id": self.ignore_id,
             "resolution": self.resolution, "provenance": self.provenance, "backend": self.backend,
             "precision": self.precision}
        return d if self.tta is None else {**d, "tta": self.tta.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelSummary:
        return cls(description=d["description"], path=d["path"], architecture=d["architecture"],
                   label_set=d["label_set"], classes=tuple(d["classes"]), ignore_id=d["ignore_id"],
                   resolution=d["resolution"], provenance=d["provenance"], backend=d.get("backend", ""),
                   precision=d.get("precision", ""),
                   tta=TTAConfig.from_json(d["tta"]) if d.get("tta") is not None else None)


@dataclass(frozen=True)
class MissingFrame:
    """A camera frame that had no ground truth: its 0-based position on the image topic and its header stamp (ns)."""

    index: int
    stamp_ns: int


@dataclass(frozen=True)
class FrameCounts:
    """How many frames were replayed and scored, which had no ground truth (the first of them listed), how many
    ground-truth images met no frame or repeated a stamp, and the camera frame size ("HxW", None without frames)."""

    total: int
    scored: int
    missing_gt: int
    missing_gt_frames: tuple[MissingFrame, ...]
    gt_without_frame: int
    gt_duplicate_stamps: int
    size: str | None

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "scored": self.scored, "missing_gt": self.missing_gt,
                "missing_gt_frames": [{"index": f.index, "stamp_ns": f.stamp_ns} for f in self.missing_gt_frames],
                "gt_without_frame": self.gt_without_frame, "gt_duplicate_stamps": self.gt_duplicate_stamps,
                "size": self.size}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FrameCounts:
        return cls(total=d["total"], scored=d["scored"], missing_gt=d["missing_gt"],
                   missing_gt_frames=tuple(MissingFrame(f["index"], f["stamp_ns"]) for f in d["missing_gt_frames"]),
                   gt_without_frame=d["gt_without_frame"], gt_duplicate_stamps=d["gt_duplicate_stamps"],
                   size=d["size"])


@dataclass(frozen=True)
class Accuracy:
    """Scores of one confusion matrix over every scored pixel of the run (ignore id excluded).

    IoU and accuracy values are 0..1, None where undefined (a class neither in the ground truth nor predicted);
    ``iou`` and ``class_accuracy`` map class names in label-set order; ``confusion_matrix`` is (C, C) pixel counts,
    rows ground truth, columns prediction.
    """

    miou: float | None
    pixel_accuracy: float | None
    iou: dict[str, float | None]
    class_accuracy: dict[str, float | None]
    pixels: int
    confusion_matrix: tuple[tuple[int, ...], ...]

    @classmethod
    def from_confusion(cls, cm: ConfusionMatrix, names: Sequence[str]) -> Accuracy:
        """The scores of ``cm``, classes named by ``names`` (the label set's, in id order)."""
        return cls(miou=_finite_or_none(cm.miou()), pixel_accuracy=_finite_or_none(cm.pixel_accuracy()),
                   iou={n: _finite_or_none(v) for n, v in zip(names, cm.iou())},
                   class_accuracy={n: _finite_or_none(v) for n, v in zip(names, cm.class_accuracy())},
                   pixels=cm.total, confusion_matrix=tuple(tuple(row) for row in cm.matrix.tolist()))

    def to_json(self) -> dict[str, Any]:
        return {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy, "iou": dict(self.iou),
                "class_accuracy": dict(self.class_accuracy), "pixels": self.pixels,
                "confusion_matrix": [list(row) for row in self.confusion_matrix]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Accuracy:
        return cls(miou=d["miou"], pixel_accuracy=d["pixel_accuracy"], iou=dict(d["iou"]),
                   class_accuracy=dict(d["class_accuracy"]), pixels=d["pixels"],
                   confusion_matrix=tuple(tuple(row) for row in d["confusion_matrix"]))


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles, maximum and mean of per-frame times in milliseconds, rounded to the microsecond."""

    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencyStats | None:
        """The statistics of ``values_ms`` (ms per frame); None when there are none."""
        if not values_ms:
            return None
        a = np.asarray(values_ms, np.float64)
        return cls(p50=round(float(np.percentile(a, 50)), 3), p90=round(float(np.percentile(a, 90)), 3),
                   p99=round(float(np.percentile(a, 99)), 3), max=round(float(a.max()), 3),
                   mean=round(float(a.mean()), 3))

    def to_json(self) -> dict[str, float]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max, "mean": self.mean}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> LatencyStats | None:
        return None if d is None else cls(p50=d["p50"], p90=d["p90"], p99=d["p99"], max=d["max"], mean=d["mean"])


@dataclass(frozen=True)
class OutputBag:
    """The bag written with the segmentation: its path and the output topics (labels, color, overlay)."""

    path: str
    topics: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "topics": list(self.topics)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> OutputBag:
        return cls(path=d["path"], topics=tuple(d["topics"]))


@dataclass(frozen=True)
class CameraResult:
    """One camera of a run that scored several: its name, image topic and message type, ground-truth topic (None
    without ground truth), its frames, its scores (None without ground truth), the statistics of its frames' total
    pipeline time (ms; None without frames) and its topics in the output bag (empty without one)."""

    name: str
    image_topic: str
    image_type: str
    gt_topic: str | None
    frames: FrameCounts
    metrics: Accuracy | None
    latency_ms: LatencyStats | None
    output_topics: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "image_topic": self.image_topic, "image_type": self.image_type,
                "gt_topic": self.gt_topic, "frames": self.frames.to_json(),
                "metrics": None if self.metrics is None else self.metrics.to_json(),
                "latency_ms": None if self.latency_ms is None else self.latency_ms.to_json(),
                "output_topics": list(self.output_topics)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CameraResult:
        return cls(name=d["name"], image_topic=d["image_topic"], image_type=d["image_type"], gt_topic=d["gt_topic"],
                   frames=FrameCounts.from_json(d["frames"]),
                   metrics=None if d["metrics"] is None else Accuracy.from_json(d["metrics"]),
                   latency_ms=LatencyStats.from_json(d["latency_ms"]), output_topics=tuple(d["output_topics"]))


@dataclass(frozen=True)
class SequenceResult:
    """One dataset sequence of a run over frames from several (a bag written by ``bag-from-dataset`` records
    them): its name, the frames of it replayed and scored, and its scores (None when none was scored)."""

    name: str
    frames: int
    scored: int
    metrics: Accuracy | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "frames": self.frames, "scored": self.scored,
                "metrics": None if self.metrics is None else self.metrics.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SequenceResult:
        return cls(name=d["name"], frames=d["frames"], scored=d["scored"],
                   metrics=None if d["metrics"] is None else Accuracy.from_json(d["metrics"]))


def _stats_to_json(block: Mapping[str, LatencyStats | None]) -> dict[str, Any]:
    return {s: None if st is None else st.to_json() for s, st in block.items()}


def _stats_from_json(block: Mapping[str, Any]) -> dict[str, LatencyStats | None]:
    return {s: LatencyStats.from_json(st) for s, st in block.items()}


@dataclass(frozen=True)
class EvaluationReport:
    """Everything one ``seg-ros evaluate`` run measured.

    ``latency_ms``: per Segmenter stage and ``total``; ``overhead_ms``: evaluate's own work per frame (read,
    decode, score, write). ``fps``: from the mean total pipeline time; ``throughput_fps``: frames per second
    through the whole replay loop; ``overhead_pct``: evaluate's own time as a share of the pipeline time (%).
    ``metrics`` is None for a run without ground truth. ``charts``: the PNG files written next to report.json;
    ``report_write_s``: seconds spent drawing them and writing report.md; ``wall_s``: the whole run (s).

    ``cameras``: one result per camera of a run that scored several cameras, empty for a run of one camera (whose
    report.json then has no ``cameras`` key, exactly as before). With several cameras every other field is the
    total over all of them: ``metrics`` from one confusion matrix summed over the cameras, ``frames`` and the
    latency statistics over every frame of every camera; ``bag.image_topic`` / ``bag.image_type`` and
    ``ground_truth.topic`` join the cameras' values with ", ", and ``frames.size`` is the first camera's.

    ``sequences``: one result per dataset sequence of a scored run whose frames span several sequences, empty
    otherwise (report.json then has no ``sequences`` key).
    """

    seg_ros_version: str
    date: str
    command: str | None
    bag: BagSummary
    ground_truth: GroundTruthSource | None
    model: ModelSummary
    settings: dict[str, Any]
    frames: FrameCounts
    metrics: Accuracy | None
    latency_ms: dict[str, LatencyStats | None]
    fps: float | None
    throughput_fps: float | None
    overhead_ms: dict[str, LatencyStats | None]
    overhead_pct: float | None
    out_bag: OutputBag | None
    charts: tuple[str, ...] = ()
    report_write_s: float | None = None
    wall_s: float | None = None
    cameras: tuple[CameraResult, ...] = ()
    sequences: tuple[SequenceResult, ...] = ()
    format: str = field(default=REPORT_FORMAT)

    def to_json(self) -> dict[str, Any]:
        """report.json's content: plain JSON values, keys in report.json's order (``cameras`` after ``metrics``,
        only when there are several cameras; then ``sequences``, only when there are several sequences)."""
        d = {
            "format": self.format,
            "seg_ros_version": self.seg_ros_version,
            "date": self.date,
            "command": self.command,
            "bag": self.bag.to_json(),
            "ground_truth": None if self.ground_truth is None else self.ground_truth.to_json(),
            "model": self.model.to_json(),
            "settings": self.settings,
            "frames": self.frames.to_json(),
            "metrics": None if self.metrics is None else self.metrics.to_json(),
            "latency_ms": _stats_to_json(self.latency_ms),
            "fps": self.fps,
            "throughput_fps": self.throughput_fps,
            "overhead_ms": _stats_to_json(self.overhead_ms),
            "overhead_pct": self.overhead_pct,
            "out_bag": None if self.out_bag is None else self.out_bag.to_json(),
            "charts": list(self.charts),
            "report_write_s": self.report_write_s,
            "wall_s": self.wall_s,
        }
        extra: dict[str, Any] = {}
        if self.cameras:
            extra["cameras"] = [c.to_json() for c in self.cameras]
        if self.sequences:
            extra["sequences"] = [q.to_json() for q in self.sequences]
        if not extra:
            return d
        keys = list(d)
        at = keys.index("metrics") + 1
        return {**{k: d[k] for k in keys[:at]}, **extra, **{k: d[k] for k in keys[at:]}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EvaluationReport:
        """The report of a parsed report.json; KeyError or TypeError if a field is missing or malformed."""
        return cls(
            format=d["format"], seg_ros_version=d["seg_ros_version"], date=d["date"], command=d["command"],
            bag=BagSummary.from_json(d["bag"]),
            ground_truth=None if d["ground_truth"] is None else GroundTruthSource.from_json(d["ground_truth"]),
            model=ModelSummary.from_json(d["model"]), settings=dict(d["settings"]),
            frames=FrameCounts.from_json(d["frames"]),
            metrics=None if d["metrics"] is None else Accuracy.from_json(d["metrics"]),
            latency_ms=_stats_from_json(d["latency_ms"]), fps=d["fps"], throughput_fps=d["throughput_fps"],
            overhead_ms=_stats_from_json(d["overhead_ms"]), overhead_pct=d["overhead_pct"],
            out_bag=None if d["out_bag"] is None else OutputBag.from_json(d["out_bag"]),
            charts=tuple(d.get("charts", ())), report_write_s=d.get("report_write_s"), wall_s=d.get("wall_s"),
            cameras=tuple(CameraResult.from_json(c) for c in d.get("cameras", ())),
            sequences=tuple(SequenceResult.from_json(q) for q in d.get("sequences", ())))


def load_report(path: str | os.PathLike) -> EvaluationReport:
    """Read a report.json written by ``seg-ros evaluate``; InputError if it is not one."""
    p = Path(path)
    try:
        data = json.loads(read_text_file(p, "report"))
    except ValueError as e:
        raise InputError(f"report {p} is not JSON ({e}).") from e
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise InputError(f"{p} is not a report.json written by seg-ros evaluate.")
    try:
        return EvaluationReport.from_json(data)
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"report {p} is incomplete or malformed ({type(e).__name__}: {e}).") from e
