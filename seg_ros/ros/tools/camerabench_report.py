"""The results of ``seg-ros bench cameras`` (:mod:`seg_ros.ros.tools.camerabench`): per camera, per layout, the
comparison of both layouts at each camera count, the report and its tables.

Kept apart from the code that runs the nodes, and free of rclpy, so that a report can be read back and rendered
(:mod:`seg_ros.tools.doctables`) anywhere.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

ONE_NODE, NODE_PER_CAMERA = "one node", "node per camera"
LAYOUTS = (ONE_NODE, NODE_PER_CAMERA)
TARGET_CAMERAS, TARGET_RSS_RATIO, TARGET_FPS_RATIO = 4, 0.5, 1.3
"""With this many cameras, one node uses at most this × the memory of one node per camera and gives at least this
× their aggregate fps."""


@dataclass
class CameraStats:
    """One camera's results in the measured window."""

    camera: str
    sent: int
    """Frames published on its input topic in the window."""
    frames: int
    """``labels`` messages received in the window, of frames stamped in it."""
    fps: float
    latency_p50_ms: float | None
    """Receive wall time − header stamp (= publish wall time), median; None without frames."""
    latency_p99_ms: float | None


@dataclass
class LayoutRun:
    """N cameras in one layout: its processes, throughput and memory (MB = MiB)."""

    layout: str
    """:data:`ONE_NODE` or :data:`NODE_PER_CAMERA`."""
    cameras: int
    processes: int
    pipelines: list[str]
    """The pipeline every process announced in its ready line (backend and precision as resolved), one entry per
    distinct description."""
    seconds: float
    """Length of the measured window."""
    fps: float
    """Results of all cameras per second."""
    rss_mb_end: float
    """Sum of the processes' VmRSS at the end of the window."""
    rss_mb_peak: float
    """Highest such sum sampled during the window."""
    per_camera: list[CameraStats] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.per_camera)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayoutRun:
        return cls(**{**data, "per_camera": [CameraStats(**c) for c in data["per_camera"]]})


@dataclass
class CameraComparison:
    """Both layouts at one camera count."""

    cameras: int
    one_node: LayoutRun
    node_per_camera: LayoutRun

    @property
    def fps_ratio(self) -> float:
        """Aggregate fps of one node / of one node per camera."""
        return self.one_node.fps / self.node_per_camera.fps if self.node_per_camera.fps > 0 else math.inf

    @property
    def rss_ratio(self) -> float:
        """Memory (RSS at the end of the window) of one node / of one node per camera."""
        return self.one_node.rss_mb_end / self.node_per_camera.rss_mb_end

    def to_json(self) -> dict[str, Any]:
        return {"cameras": self.cameras, "fps_ratio": _finite(self.fps_ratio), "rss_ratio": self.rss_ratio,
                "one_node": asdict(self.one_node), "node_per_camera": asdict(self.node_per_camera)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CameraComparison:
        return cls(data["cameras"], LayoutRun.from_json(data["one_node"]),
                   LayoutRun.from_json(data["node_per_camera"]))


@dataclass
class CameraBenchReport:
    """What :func:`run_camera_bench` measured, where, when and with which settings."""

    KIND: ClassVar[str] = "camera_bench"

    machine: str
    date: str
    """YYYY-MM-DD."""
    versions: dict[str, str]
    model: str
    device: str
    backend: str
    precision: str
    resolution: str
    """Frame and inference size, HxW."""
    rate_hz: float
    """Frames published per second on each camera topic."""
    seconds: float
    warmup_s: float
    input_qos: str
    """QoS of the frames and of the nodes' inputs, e.g. ``reliable depth 1``."""
    outputs: list[str]
    """The outputs subscribed (only ``labels``)."""
    comparisons: list[CameraComparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Processes that did not exit cleanly at SIGINT."""

    def to_json(self) -> dict[str, Any]:
        head = {k: v for k, v in vars(self).items() if k not in ("comparisons", "problems")}
        return {**head, "comparisons": [c.to_json() for c in self.comparisons], "problems": list(self.problems)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CameraBenchReport:
        head = {k: v for k, v in data.items() if k not in ("kind", "command", "comparisons", "problems")}
        return cls(**head, comparisons=[CameraComparison.from_json(c) for c in data["comparisons"]],
                   problems=list(data.get("problems", [])))

    def targets(self) -> list[str]:
        """One line per target at :data:`TARGET_CAMERAS` cameras, with the numbers and met / not met."""
        lines = []
        for c in (c for c in self.comparisons if c.cameras == TARGET_CAMERAS):
            n = c.cameras
            lines.append(f"- {n} cameras in one node use ≤ {TARGET_RSS_RATIO:g}× the memory of {n} nodes: "
                         f"{c.one_node.rss_mb_end:,.0f} MB vs {c.node_per_camera.rss_mb_end:,.0f} MB = "
                         f"{c.rss_ratio:.2f}×: **{_met(c.rss_ratio <= TARGET_RSS_RATIO)}**")
            lines.append(f"- {n} cameras in one node give ≥ {TARGET_FPS_RATIO:g}× the aggregate throughput of {n} "
                         f"nodes: {c.one_node.fps:.1f} fps vs {c.node_per_camera.fps:.1f} fps = {c.fps_ratio:.2f}×: "
                         f"**{_met(c.fps_ratio >= TARGET_FPS_RATIO)}**")
        return lines


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _without_notes(pipeline: str) -> str:
    """A pipeline description without its ``[...]`` notes (why auto chose what it did, with timings that vary from
    one process to the next)."""
    return re.sub(r" ?\[[^\]]*\]", "", pipeline)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def format_camera_tables(report: CameraBenchReport) -> str:
    """The settings line, one row per camera count and layout, the ratios per camera count and the targets."""
    runs = [run for c in report.comparisons for run in (c.one_node, c.node_per_camera)]
    pipelines = sorted({_without_notes(p) for run in runs for p in run.pipelines})
    lines = [f"Frames {report.resolution.replace('x', '×')} rgb8 at {report.rate_hz:g} Hz per camera "
             f"({report.input_qos}), {report.seconds:g} s measured after {report.warmup_s:g} s of warm-up; only "
             f"{', '.join(f'`{o}`' for o in report.outputs)} subscribed; pipeline: {'; '.join(pipelines) or '?'}.", "",
             "| cameras | layout | processes | results | fps (all cameras) | fps per camera "
             "| latency p50 ms per camera | latency p99 ms per camera | RSS end MB | RSS peak MB |",
             "|" + "---|" * 10]
    for c in report.comparisons:
        for run in (c.one_node, c.node_per_camera):
            cams = run.per_camera
            lines.append(
                f"| {run.cameras} | {run.layout} | {run.processes} | {run.frames} | {run.fps:.1f} "
                f"| {' / '.join(f'{s.fps:.1f}' for s in cams)} | {' / '.join(_ms(s.latency_p50_ms) for s in cams)} "
                f"| {' / '.join(_ms(s.latency_p99_ms) for s in cams)} | {run.rss_mb_end:,.0f} "
                f"| {run.rss_mb_peak:,.0f} |")
    lines += ["", "| cameras | fps: one node / node per camera | fps ratio | RSS MB: one node / node per camera "
                  "| RSS ratio |", "|---|---|---|---|---|"]
    for c in report.comparisons:
        lines.append(f"| {c.cameras} | {c.one_node.fps:.1f} / {c.node_per_camera.fps:.1f} | {c.fps_ratio:.2f}× "
                     f"| {c.one_node.rss_mb_end:,.0f} / {c.node_per_camera.rss_mb_end:,.0f} | {c.rss_ratio:.2f}× |")
    targets = report.targets()
    if targets:
        lines += ["", *targets]
    if report.problems:
        lines += ["", *(f"- problem: {p}" for p in report.problems)]
    return "\n".join(lines)


__all__ = ["LAYOUTS", "NODE_PER_CAMERA", "ONE_NODE", "TARGET_CAMERAS", "TARGET_FPS_RATIO", "TARGET_RSS_RATIO",
           "CameraBenchReport", "CameraComparison", "CameraStats", "LayoutRun", "format_camera_tables"]
