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
    """``model`` (the runtime alone on a prepared tensor), ``e2e`` (frame in; labels, colour and overlay out) or
    ``e2e+conf`` (the same plus the confidence map)."""
    backend: str
    device: str
    precision: str
    resolution: str
    frames: int
    fps: float
    """1 / the median frame time."""
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
    """The naive baseline's e2e median / this row's (same mode's median), at the same device and resolution."""
    note: str = ""
    p90_ms: float | None = None
    e2e_over_model: float | None = None
    """This e2e row's median / the model row's median of the same backend and precision."""
    miou_delta_pts: float | None = None
    """mIoU − the fp32 row's mIoU of the same backend, device and resolution, in points (0..100 scale)."""
    build_cold_s: float | None = None
    """Seconds to build the Segmenter with an empty cache (export, compile, quantize); openvino / onnxruntime."""
    build_warm_s: float | None = None
    """Seconds to build it again from the cache the cold build filled."""
    resolved: str = ""
    """``backend precision`` that an ``auto`` / ``auto`` row resolved to, or that the naive baseline runs (the
    fastest fp32 runtime of the run); empty for the other rows."""

    def shown(self) -> tuple[str, str]:
        """(backend, precision) as tables show them: ``auto → openvino``, ``auto → int8`` for a resolved row."""
        if not self.resolved:
            return self.backend, self.precision
        backend, _, precision = self.resolved.partition(" ")
        return f"{self.backend} → {backend}", (self.precision if precision == self.precision
                                                  else f"{self.precision} → {precision}")


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
class Interleaved:
    """The speed targets' contenders at one device and resolution, timed in turn frame by frame
    (:func:`seg_ros.tools.timing.time_interleaved`): the auto end-to-end pipeline (labels, colour, overlay), the
    candidates for the fastest bare network of the run, and the naive baseline end to end. Medians in ms."""

    device: str
    resolution: str
    frames: int
    auto: str
    """What ``backend=auto, precision=auto`` resolved to, e.g. ``openvino bf16``."""
    auto_ms: float
    bare: str
    """The backend and precision whose bare network had the lowest median, timed in turn."""
    bare_ms: float
    naive: str
    """The runtime the naive baseline is written around, e.g. ``openvino fp32``."""
    naive_ms: float
    bare_candidates: dict[str, float] = field(default_factory=dict)
    """Every bare network timed in turn (``backend precision`` → median ms): those whose row median was close
    enough to the fastest row's to be the fastest."""

    @property
    def over_bare(self) -> float:
        """auto end to end / the best bare network."""
        return self.auto_ms / self.bare_ms

    @property
    def vs_naive(self) -> float:
        """naive end to end / auto end to end: how many times faster seg_ros is."""
        return self.naive_ms / self.auto_ms


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
    interleaved: list[Interleaved] = field(default_factory=list)
    """The targets' contenders timed in turn, per device and resolution where the run had all three."""

    LISTS: ClassVar[tuple[str, ...]] = ("rows", "skipped", "interleaved")

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k not in self.LISTS},
                **{k: [asdict(x) for x in getattr(self, k)] for k in self.LISTS}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        head = {k: v for k, v in data.items() if k not in ("kind", "command", *cls.LISTS)}
        return cls(**head, rows=[BenchRow(**r) for r in data["rows"]],
                   skipped=[Skipped(**s) for s in data.get("skipped", [])],
                   interleaved=[Interleaved(**x) for x in data.get("interleaved", [])])

    def versions_line(self) -> str:
        """``machine, torch X, opencv Y, ..., date``: the first printed line of a run."""
        return f"{self.machine}, {', '.join(f'{k} {v}' for k, v in self.versions.items())}, {self.date}"


def fastest_fp32(rows: list[BenchRow]) -> BenchRow | None:
    """The fp32 model row with the lowest median among ``rows`` (one device and resolution), auto excluded."""
    fp32 = [r for r in rows if r.mode == "model" and r.precision == "fp32" and r.backend not in ("auto", "naive")]
    return min(fp32, key=lambda r: r.p50_ms, default=None)


def compare_with_fp32(rows: list[BenchRow]) -> None:
    """mIoU difference (points) of every e2e row to the fp32 e2e row of the same backend (for auto: resolved)."""
    fp32 = {(r.device, r.resolution, r.backend): r.miou for r in rows if r.mode == "e2e" and r.precision == "fp32"}
    for r in rows:
        backend = r.resolved.split()[0] if r.resolved else r.backend
        ref = fp32.get((r.device, r.resolution, backend))
        if r.mode != "model" and r.miou is not None and ref is not None:
            r.miou_delta_pts = 100.0 * (r.miou - ref)


def compare_with_naive(rows: list[BenchRow], naive_rows: list[BenchRow]) -> None:
    """vs_naive of every e2e / e2e+conf row: the naive row's median of the same mode / the row's."""
    by_mode = {r.mode: r for r in naive_rows}
    for r in rows:
        if r.mode in ("e2e", "e2e+conf"):
            r.vs_naive = by_mode[r.mode].p50_ms / r.p50_ms


def format_table(report: BenchReport) -> str:
    """A Markdown table of every row of ``report``."""
    head = ("| mode | backend | device | precision | resolution | fps | p50 ms | p90 ms | p99 ms | "
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
        p90 = f"{r.p90_ms:.1f}" if r.p90_ms is not None else ""
        backend, precision = r.shown()
        lines.append(f"| {r.mode} | {backend} | {r.device} | {precision} | {r.resolution} "
                     f"| {r.fps:.3g} | {r.p50_ms:.1f} | {p90} | {r.p99_ms:.1f} | {stage_cells} | {ov} "
                     f"| {host} | {gpu} | {miou} | {vs} |")
    return "\n".join(lines)


__all__ = ["BenchReport", "BenchRow", "Interleaved", "Skipped", "compare_with_fp32", "compare_with_naive",
           "fastest_fp32", "format_table"]
