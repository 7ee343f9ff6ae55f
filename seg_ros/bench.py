"""``seg-ros bench``: model-only and end-to-end speed of the Segmenter.

For each device × resolution it times (a) the backend's forward pass alone on
a pre-normalised tensor and (b) the whole Segmenter on a uint8 RGB frame with
every output (labels, colour, overlay, confidence), and reports fps, p50/p99
latency, the median time of each stage, and the pipeline overhead: the time
spent outside the forward pass as a share of the forward time.

``--bag`` measures reading a bag (fetch, deserialize, decode to RGB) per
storage; ``--evaluate`` measures ``seg-ros evaluate``'s own overhead (reading,
decoding, scoring, writing the output bag) against the pipeline time.
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
    head = ("| mode | backend | device | precision | resolution | fps | p50 ms | p99 ms | "
            + " | ".join(STAGES) + " | overhead |")
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


# -- bags and evaluate (seg-ros bench --bag / --evaluate) -------------------------------------------------------------

def bench_bag_read(frames: int = 500, size: tuple[int, int] = (360, 640),
                   storages: tuple[str, ...] = ("sqlite3", "mcap"), workdir: str | os.PathLike | None = None,
                   repeats: int = 3) -> list[dict]:
    """Frames per second reading a bag of ``frames`` raw rgb8 images of ``size`` (H, W), per storage.

    Reading = fetching each message from the storage, deserializing it and decoding it to an (H, W, 3) RGB
    array, as ``seg-ros evaluate`` does. The bag is written first (four synthetic scenes, cycled); the best of
    ``repeats`` passes is reported (the file is then in the page cache, as on a machine that has just
    recorded or copied it). ``read_fps`` is frames per second of wall-clock time; ``read_cpu_fps`` frames per
    second of this process's CPU time (user + system), which is what one core achieves when nothing else
    competes for it.
    """
    import tempfile

    from seg_ros.bags import BagReader, BagWriter

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
            rows.append({"storage": storage, "frames": frames, "resolution": format_resolution(size),
                         "encoding": "rgb8", "bag_mb": round(size_mb, 1), "write_fps": round(frames / write_s, 1),
                         "read_fps": round(frames / best, 1), "read_mb_s": round(size_mb / best, 1),
                         "read_cpu_fps": round(frames / max(best_cpu, 1e-9), 1)})
    return rows


def bench_evaluate(model: str, frames: int = 20, size: tuple[int, int] = (360, 640), device: str = "cpu",
                   workdir: str | os.PathLike | None = None) -> dict:
    """Evaluate's own overhead: a synthetic drive bag replayed through ``seg-ros evaluate`` with an output bag.

    Returns the pipeline milliseconds per frame and evaluate's own (read, decode, score, write) milliseconds
    per frame, their share of the pipeline time, and the one-off time to write the report and charts.
    """
    import tempfile

    from seg_ros.bags import write_dataset_bag
    from seg_ros.datasets import SyntheticDriveSource
    from seg_ros.evaluate import EvalOptions, evaluate_bag, segmenter_from_params

    seg, _ = segmenter_from_params(None, {"model": str(model), "device": device})
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        write_dataset_bag(SyntheticDriveSource(99, frames, size), Path(tmp) / "bag", progress=False)
        rep = evaluate_bag(EvalOptions(bag=Path(tmp) / "bag", out=Path(tmp) / "report", out_bag=Path(tmp) / "out",
                                       progress=False), seg, log=lambda s: None)
    over = {s: rep["overhead_ms"][s]["mean"] for s in rep["overhead_ms"]}
    return {
        "model": seg.describe(), "frames": rep["frames"]["total"], "resolution": format_resolution(size),
        "pipeline_ms": rep["latency_ms"]["total"]["mean"], "pipeline_fps": rep["fps"],
        "overhead_ms": over, "overhead_total_ms": round(sum(over.values()), 3), "overhead_pct": rep["overhead_pct"],
        "report_write_s": rep["report_write_s"], "miou": rep["metrics"]["miou"],
    }


def format_bag_table(rows: list[dict]) -> str:
    """Markdown table of :func:`bench_bag_read` rows."""
    lines = ["| storage | frames | resolution | encoding | bag MB | write fps | read fps (wall) | read MB/s (wall) "
             "| read fps (CPU time) |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['storage']} | {r['frames']} | {r['resolution']} | {r['encoding']} | {r['bag_mb']} "
              f"| {r['write_fps']} | {r['read_fps']} | {r['read_mb_s']} | {r['read_cpu_fps']} |" for r in rows]
    return "\n".join(lines)


def format_evaluate_table(ev: dict) -> str:
    """Markdown table of :func:`bench_evaluate`'s result."""
    o = ev["overhead_ms"]
    return "\n".join([
        "| frames | resolution | pipeline ms/frame | read | decode | score | write | overhead ms/frame | overhead "
        "| report + charts s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {ev['frames']} | {ev['resolution']} | {ev['pipeline_ms']:.1f} | {o['read']:.2f} | {o['decode']:.2f} "
        f"| {o['score']:.2f} | {o['write']:.2f} | {ev['overhead_total_ms']:.2f} | {ev['overhead_pct']:.1f}% "
        f"| {ev['report_write_s']:.2f} |",
    ])
