"""``seg-ros bench``: model-only and end-to-end speed of the Segmenter.

For each device × resolution it times (a) the backend's forward pass alone on
a pre-normalised tensor and (b) the whole Segmenter on a uint8 RGB frame with
every output (labels, colour, overlay, confidence), and reports fps, p50/p99
latency, the median time of each stage, and the pipeline overhead: the time
spent outside the forward pass as a share of the forward time.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from seg_ros.outputs import atomic_path
from seg_ros.pipeline import STAGES, Segmenter, format_resolution
from seg_ros.synthetic import generate_scene


@dataclass
class BenchRow:
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


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    a = np.asarray(samples)
    return float(1000.0 / a.mean()), float(np.percentile(a, 50) * 1000), float(np.percentile(a, 99) * 1000)


def bench_segmenter(seg: Segmenter, frame: np.ndarray, frames: int = 30, warmup: int = 5) -> list[BenchRow]:
    """Time ``seg`` on ``frame`` (already at the resolution under test): one model row and one e2e row."""
    res = format_resolution(seg.resolution)
    common = dict(backend=seg.backend.name, device=str(seg.device), precision=seg.backend.precision, resolution=res)
    ih, iw = seg.inference_size(*frame.shape[:2])
    x = seg._preprocess(frame[None], ih, iw)
    sync = (lambda: torch.cuda.synchronize(seg.device)) if seg.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        seg.backend.infer(x)
        seg.segment(frame)
    sync()
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        seg.backend.infer(x)
        sync()
        samples.append(time.perf_counter() - t0)
    fps, p50, p99 = _percentiles(samples)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, **common)]
    samples, stages = [], {s: [] for s in STAGES}
    for _ in range(frames):
        t0 = time.perf_counter()
        r = seg.segment(frame)
        samples.append(time.perf_counter() - t0)
        for s in STAGES:
            stages[s].append(r.timings[s])
    fps, p50, p99 = _percentiles(samples)
    med = {s: float(np.median(v)) for s, v in stages.items()}
    overhead = 100.0 * (sum(med.values()) - med["infer"]) / med["infer"]
    rows.append(BenchRow("e2e", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, stages_ms=med,
                         overhead_pct=overhead, **common))
    return rows


def run_bench(model: str, resolutions: list[tuple[int, int]], devices: list[str], frames: int = 30,
              warmup: int = 5, precisions: list[str] | None = None) -> dict:
    """Benchmark every device × precision × resolution; returns the JSON-ready report."""
    rows: list[BenchRow] = []
    for device in devices:
        for precision in precisions or ["fp32"]:
            if precision == "fp16" and not device.startswith("cuda"):
                continue
            for res in resolutions:
                seg = Segmenter(model, resolution=res, keep_aspect=False, device=device, precision=precision)
                frame = generate_scene(7, res).image
                rows += bench_segmenter(seg, frame, frames, warmup)
    return {
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "model": model,
        "torch": torch.__version__,
        "rows": [asdict(r) for r in rows],
    }


def _machine() -> str:
    from seg_ros.train import _cpu_name

    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{_cpu_name()}{gpu}, {platform.system()} {platform.release()}, {torch.get_num_threads()} torch threads"


def format_table(report: dict) -> str:
    """A Markdown table of a report from :func:`run_bench`."""
    head = ("| mode | backend | device | precision | resolution | fps | p50 ms | p99 ms "
            "| preprocess | infer | postprocess | render | overhead |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["rows"]:
        st = r["stages_ms"]
        stage_cells = " | ".join(f"{st[s]:.1f}" if s in st else "" for s in STAGES)
        ov = f"{r['overhead_pct']:.1f}%" if r["overhead_pct"] is not None else ""
        lines.append(f"| {r['mode']} | {r['backend']} | {r['device']} | {r['precision']} | {r['resolution']} "
                     f"| {r['fps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {stage_cells} | {ov} |")
    return "\n".join(lines)


def write_report(report: dict, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return Path(path)
