"""Per-frame times and counts gathered during a replay, and the report values computed from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from seg_ros.evaluate.report import FrameCounts, LatencyStats, MissingFrame
from seg_ros.io.bags import ImageMessage
from seg_ros.pipeline import STAGES, format_resolution

OVERHEAD_STAGES = ("read", "decode", "score", "write")
"""Evaluate's own work per frame, outside the Segmenter: bag reading and deserialisation (and ground-truth
pairing), image and label decoding, confusion-matrix update, output-bag writing."""
MAX_LISTED = 50
"""At most this many unscored frames are listed by index and stamp in report.json."""


def _stage_lists() -> dict[str, list[float]]:
    return {s: [] for s in (*STAGES, "total")}


def _overhead_lists() -> dict[str, list[float]]:
    return {s: [] for s in OVERHEAD_STAGES}


@dataclass
class RunTally:
    """What a replay has seen so far: milliseconds per frame for each Segmenter stage (and ``total``) and for
    each of evaluate's own steps, frame counts, the first unscored frames, and the camera frame size (H, W)."""

    stage_ms: dict[str, list[float]] = field(default_factory=_stage_lists)
    overhead_ms: dict[str, list[float]] = field(default_factory=_overhead_lists)
    frames: int = 0
    scored: int = 0
    missing_gt: int = 0
    missing_listed: list[MissingFrame] = field(default_factory=list)
    size: tuple[int, int] | None = None

    @classmethod
    def combined(cls, tallies: Sequence[RunTally]) -> RunTally:
        """One tally of every frame of ``tallies`` (e.g. one per camera): times and counts pooled, the unscored
        frames listed camera after camera (at most :data:`MAX_LISTED`), the first known frame size."""
        total = cls()
        for t in tallies:
            for s, values in t.stage_ms.items():
                total.stage_ms[s].extend(values)
            for s, values in t.overhead_ms.items():
                total.overhead_ms[s].extend(values)
            total.frames += t.frames
            total.scored += t.scored
            total.missing_gt += t.missing_gt
            total.missing_listed.extend(t.missing_listed[: MAX_LISTED - len(total.missing_listed)])
            total.size = total.size or t.size
        return total

    def add_frame(self, size: tuple[int, int], timings_ms: Mapping[str, float],
                  overhead_s: Mapping[str, float]) -> None:
        """Count one segmented frame of ``size`` (H, W): the Segmenter's stage timings (ms) and evaluate's own
        step times (s, keyed by :data:`OVERHEAD_STAGES`)."""
        for s, values in self.stage_ms.items():
            values.append(timings_ms[s])
        for s, values in self.overhead_ms.items():
            values.append(overhead_s[s] * 1000.0)
        self.size = self.size or size
        self.frames += 1

    def add_missing(self, frame: ImageMessage) -> None:
        """Count a frame that had no ground truth; the first :data:`MAX_LISTED` are listed."""
        self.missing_gt += 1
        if len(self.missing_listed) < MAX_LISTED:
            self.missing_listed.append(MissingFrame(frame.index, frame.stamp_ns))

    def frame_counts(self, gt_without_frame: int, gt_duplicate_stamps: int) -> FrameCounts:
        return FrameCounts(total=self.frames, scored=self.scored, missing_gt=self.missing_gt,
                           missing_gt_frames=tuple(self.missing_listed), gt_without_frame=gt_without_frame,
                           gt_duplicate_stamps=gt_duplicate_stamps,
                           size=format_resolution(self.size) if self.size else None)

    def latency(self) -> dict[str, LatencyStats | None]:
        """Statistics of each Segmenter stage's milliseconds per frame."""
        return {s: LatencyStats.of(v) for s, v in self.stage_ms.items()}

    def overhead(self) -> dict[str, LatencyStats | None]:
        """Statistics of each of evaluate's own steps, milliseconds per frame."""
        return {s: LatencyStats.of(v) for s, v in self.overhead_ms.items()}

    def pipeline_fps(self) -> float | None:
        """Frames per second from the mean total pipeline time; None without frames."""
        mean_total = float(np.mean(self.stage_ms["total"])) if self.frames else float("nan")
        return round(1000.0 / mean_total, 2) if self.frames and mean_total > 0 else None

    def throughput_fps(self, loop_s: float) -> float | None:
        """Frames per second through a replay loop that took ``loop_s`` seconds."""
        return round(self.frames / loop_s, 2) if self.frames and loop_s > 0 else None

    def overhead_pct(self) -> float | None:
        """Evaluate's own time as a percentage of the pipeline time; None when the pipeline took no time."""
        pipeline_ms = sum(self.stage_ms["total"])
        overhead_ms = {s: sum(v) for s, v in self.overhead_ms.items()}
        return round(100.0 * sum(overhead_ms.values()) / pipeline_ms, 2) if pipeline_ms > 0 else None
