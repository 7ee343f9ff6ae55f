"""``seg-ros bench bag`` and ``seg-ros bench evaluate``: reading bags, and ``seg-ros evaluate``'s own overhead."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from seg_ros.pipeline import format_resolution
from seg_ros.synthetic import generate_scene
from seg_ros.tools.reports import MachineHeader


@dataclass
class BagReadRow:
    """Reading one storage's bag of raw rgb8 frames."""

    storage: str
    """``sqlite3`` or ``mcap``."""
    frames: int
    resolution: str
    encoding: str
    bag_mb: float
    """Size of the bag on disk, MB."""
    write_fps: float
    read_fps: float
    """Frames per second of wall-clock time (best pass)."""
    read_mb_s: float
    read_cpu_fps: float
    """Frames per second of this process's CPU time (user + system): one core with nothing competing."""


@dataclass
class EvaluateOverhead:
    """What ``seg-ros evaluate`` adds around the pipeline, per frame."""

    model: str
    frames: int
    resolution: str
    pipeline_ms: float
    """The Segmenter's mean milliseconds per frame."""
    pipeline_fps: float | None
    overhead_ms: dict[str, float]
    """Mean milliseconds per frame of ``read``, ``decode``, ``score`` and ``write``."""
    overhead_total_ms: float
    overhead_pct: float | None
    """overhead_total_ms as a share of pipeline_ms, percent."""
    report_write_s: float | None
    """One-off seconds to write report.json, report.md and the charts."""
    miou: float | None
    """0..1; None without ground truth."""


@dataclass
class BagBenchReport:
    KIND: ClassVar[str] = "bag_read"
    header: MachineHeader
    bag_read: list[BagReadRow]

    def to_json(self) -> dict[str, Any]:
        return {**vars(self.header), "bag_read": [asdict(r) for r in self.bag_read]}


@dataclass
class EvaluateBenchReport:
    KIND: ClassVar[str] = "evaluate_overhead"
    header: MachineHeader
    evaluate: EvaluateOverhead

    def to_json(self) -> dict[str, Any]:
        return {**vars(self.header), "evaluate": asdict(self.evaluate)}


def bench_bag_read(frames: int = 500, size: tuple[int, int] = (360, 640),
                   storages: tuple[str, ...] = ("sqlite3", "mcap"), workdir: str | os.PathLike | None = None,
                   repeats: int = 3) -> list[BagReadRow]:
    """Frames per second reading a bag of ``frames`` raw rgb8 images of ``size`` (H, W), per storage.

    Reading = fetching each message from the storage, deserializing it and decoding it to an (H, W, 3) RGB
    array, as ``seg-ros evaluate`` does. The bag is written first (four synthetic scenes, cycled); the best of
    ``repeats`` passes is reported (the file is then in the page cache, as on a machine that has just
    recorded or copied it).
    """
    from seg_ros.io.bags import BagReader, BagWriter

    scenes = [generate_scene(seed, size).image for seed in range(4)]
    rows = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for storage in storages:
            path = Path(tmp) / f"read_{storage}"
            t0 = time.perf_counter()
            with BagWriter(path, storage=storage) as w:
                for i in range(frames):
                    w.write_image("/camera/image_raw", scenes[i % 4], 1_700_000_000_000_000_000 + i * 33_333_333)
            write_s = time.perf_counter() - t0
            size_mb = sum(p.stat().st_size for p in path.iterdir()) / 1e6
            best = best_cpu = float("inf")
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                n = 0
                with BagReader(path) as r:
                    for m in r.images("/camera/image_raw"):
                        rgb = m.to_rgb()
                        n += rgb.shape[0] > 0
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            assert n == frames
            rows.append(BagReadRow(storage=storage, frames=frames, resolution=format_resolution(size),
                                   encoding="rgb8", bag_mb=round(size_mb, 1), write_fps=round(frames / write_s, 1),
                                   read_fps=round(frames / best, 1), read_mb_s=round(size_mb / best, 1),
                                   read_cpu_fps=round(frames / max(best_cpu, 1e-9), 1)))
    return rows


def bench_evaluate(model: str, frames: int = 20, size: tuple[int, int] = (360, 640), device: str = "auto",
                   workdir: str | os.PathLike | None = None) -> EvaluateOverhead:
    """Evaluate's own overhead: a synthetic drive bag of ``frames`` frames of ``size`` (H, W) replayed through
    ``seg-ros evaluate`` with an output bag, on ``device``."""
    from seg_ros.evaluate import EvalOptions, evaluate_bag, segmenter_from_params
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    seg, _ = segmenter_from_params(None, {"model": str(model), "device": device})
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        write_dataset_bag(SyntheticDriveSource(99, frames, size), Path(tmp) / "bag", progress=False)
        rep = evaluate_bag(EvalOptions(bag=Path(tmp) / "bag", out=Path(tmp) / "report", out_bag=Path(tmp) / "out",
                                       progress=False), seg, log=lambda s: None)
    over = {s: stats.mean for s, stats in rep.overhead_ms.items() if stats is not None}
    total = rep.latency_ms["total"]
    return EvaluateOverhead(
        model=seg.describe(), frames=rep.frames.total, resolution=format_resolution(size),
        pipeline_ms=total.mean if total is not None else float("nan"), pipeline_fps=rep.fps, overhead_ms=over,
        overhead_total_ms=round(sum(over.values()), 3), overhead_pct=rep.overhead_pct,
        report_write_s=rep.report_write_s, miou=rep.metrics.miou if rep.metrics is not None else None)


def format_bag_table(rows: list[BagReadRow]) -> str:
    """Markdown table of :func:`bench_bag_read` rows."""
    lines = ["| storage | frames | resolution | encoding | bag MB | write fps | read fps (wall) | read MB/s (wall) "
             "| read fps (CPU time) |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.storage} | {r.frames} | {r.resolution} | {r.encoding} | {r.bag_mb} | {r.write_fps} "
              f"| {r.read_fps} | {r.read_mb_s} | {r.read_cpu_fps} |" for r in rows]
    return "\n".join(lines)


def format_evaluate_table(ev: EvaluateOverhead) -> str:
    """Markdown table of :func:`bench_evaluate`'s result."""
    o = ev.overhead_ms
    return "\n".join([
        "| frames | resolution | pipeline ms/frame | read | decode | score | write | overhead ms/frame | overhead "
        "| report + charts s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {ev.frames} | {ev.resolution} | {ev.pipeline_ms:.1f} | {o['read']:.2f} | {o['decode']:.2f} "
        f"| {o['score']:.2f} | {o['write']:.2f} | {ev.overhead_total_ms:.2f} | {ev.overhead_pct:.1f}% "
        f"| {ev.report_write_s:.2f} |",
    ])


__all__ = ["BagBenchReport", "BagReadRow", "EvaluateBenchReport", "EvaluateOverhead", "bench_bag_read",
           "bench_evaluate", "format_bag_table", "format_evaluate_table"]
