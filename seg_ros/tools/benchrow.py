"""The results of ``seg-ros bench speed``: rows, skipped combinations, the report, its Markdown table.

Kept apart from the code that measures them, so that a report can be read back and rendered
(:mod:`seg_ros.tools.benchdoc`) without loading a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from seg_ros.pipeline import STAGES


@dataclass
class BenchRow:
    """One timing: a backend at a precision, device and resolution, forward pass alone or end to end."""

    mode: str
    """``model`` (forward pass only) or ``e2e`` (frame in, all outputs out)."""
    backend: str
    device: str
    precision: str
    resolution: str
    frames: int
    fps: float
    p50_ms: float
    p99_ms: float
    stages_ms: dict[str, float] = field(default_factory=dict)
    overhead_pct: float | None = None
    """(e2e − forward) / forward × 100, from the stage medians; e2e rows only."""
    peak_host_mb: float | None = None
    """Resident-set high-water mark of the process during the row, MB."""
    peak_gpu_mb: float | None = None
    """Peak memory of torch's CUDA allocator during the row, MB (TensorRT / ONNX Runtime buffers not included)."""
    miou: float | None = None
    """mIoU (0..1) on the accuracy scenes at this resolution; e2e rows only."""
    vs_naive: float | None = None
    """e2e fps / the naive baseline's e2e fps at the same device and resolution."""
    note: str = ""


@dataclass
class Skipped:
    """A device × backend × precision × resolution that could not run here, and why."""

    device: str
    backend: str
    precision: str
    resolution: str
    reason: str

    def line(self) -> str:
        return f"skipped {self.backend} {self.precision} on {self.device} at {self.resolution}: {self.reason}"


@dataclass
class BenchReport:
    """What :func:`seg_ros.tools.bench.run_bench` measured, where and when."""

    KIND: ClassVar[str] = "bench_speed"

    machine: str
    date: str
    """YYYY-MM-DD."""
    model: str
    torch: str
    versions: dict[str, str]
    """Library versions: torch, opencv, numpy, onnxruntime and tensorrt where installed."""
    accuracy_frames: int
    """Synthetic scenes behind the mIoU column."""
    rows: list[BenchRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k not in ("rows", "skipped")},
                "rows": [asdict(r) for r in self.rows], "skipped": [asdict(s) for s in self.skipped]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        head = {k: v for k, v in data.items() if k not in ("kind", "command", "rows", "skipped")}
        return cls(**head, rows=[BenchRow(**r) for r in data["rows"]],
                   skipped=[Skipped(**s) for s in data.get("skipped", [])])

    def versions_line(self) -> str:
        """``machine, torch X, opencv Y, ..., date``: the first printed line of a run."""
        return f"{self.machine}, {', '.join(f'{k} {v}' for k, v in self.versions.items())}, {self.date}"


def format_table(report: BenchReport) -> str:
    """A Markdown table of every row of ``report``."""
    head = ("| mode | backend | device | precision | resolution | fps | p50 ms | p99 ms | "
            + " | ".join(STAGES) + " | overhead | peak host MB | peak GPU MB | mIoU | vs naive |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report.rows:
        st = r.stages_ms
        stage_cells = " | ".join(f"{st[s]:.1f}" if s in st else "" for s in STAGES)
        ov = f"{r.overhead_pct:.1f}%" if r.overhead_pct is not None else ""
        host = f"{r.peak_host_mb:.0f}" if r.peak_host_mb is not None else ""
        gpu = f"{r.peak_gpu_mb:.0f}" if r.peak_gpu_mb is not None else ""
        miou = f"{100 * r.miou:.1f}" if r.miou is not None else ""
        vs = f"{r.vs_naive:.2f}×" if r.vs_naive is not None else ""
        lines.append(f"| {r.mode} | {r.backend} | {r.device} | {r.precision} | {r.resolution} "
                     f"| {r.fps:.3g} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {stage_cells} | {ov} "
                     f"| {host} | {gpu} | {miou} | {vs} |")
    return "\n".join(lines)


__all__ = ["BenchReport", "BenchRow", "Skipped", "format_table"]
