"""``seg-ros bench speed``: model-only and end-to-end speed of every available backend, beside a naive baseline.

For each device × backend × precision × resolution it times (a) the backend's forward pass alone on a
pre-normalised tensor and (b) the whole Segmenter on a uint8 RGB frame with every output (labels, colour,
overlay, confidence), and reports fps, p50/p99 latency, the median time of each stage, the pipeline
overhead (time outside the forward pass as a share of the forward time), the peak host memory (resident
set high-water mark over the row) and peak GPU memory (torch's allocator), and the mIoU on a few synthetic
scenes with exact labels (so int8 and fp16 are compared with fp32 on the same frames). The **naive
baseline** (:mod:`seg_ros.tools.naive`) runs in the same process; each e2e row states its speed-up over it.
The results are :mod:`seg_ros.tools.benchrow`'s dataclasses.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from seg_ros.core.errors import SegRosError
from seg_ros.core.labels import CAMVID
from seg_ros.core.machine import describe_machine
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.pipeline import STAGES, Segmenter, format_resolution
from seg_ros.runtime import AUTO_ORDER, PRECISIONS, RuntimeOptions, can_run, resolve_device
from seg_ros.synthetic import generate_scene
from seg_ros.tools.benchrow import BenchReport, BenchRow, Skipped, format_table
from seg_ros.tools.naive import NaivePipeline, bench_naive
from seg_ros.tools.timing import peaks, percentiles, reset_peaks, synchronizer

RESOLUTIONS = [(360, 640), (512, 1024), (1024, 2048)]
"""The benchmark resolutions; ``seg-ros bench speed`` without --resolution runs these."""
ACCURACY_SEED, CALIBRATION_SEED = 500, 9000
"""Synthetic scenes for the mIoU column and for int8 calibration are drawn from disjoint seeds."""


def bench_devices(specs: list[str] | None) -> list[str]:
    """The devices a multi-device benchmark runs on: ``auto`` (and no ``specs``) is cpu, and cuda:0 when present."""
    out: list[str] = []
    for spec in specs or ["auto"]:
        names = (["cpu", "cuda:0"] if torch.cuda.is_available() else ["cpu"]) if spec.strip().lower() == "auto" \
            else [spec]
        out += [n for n in names if n not in out]
    return out


def bench_segmenter(seg: Segmenter, frame: np.ndarray, frames: int = 30, warmup: int = 5) -> list[BenchRow]:
    """Time ``seg`` on ``frame`` (already at the resolution under test): one model row and one e2e row."""
    res = format_resolution(seg.resolution)
    common = dict(backend=seg.backend.name, device=str(seg.device), precision=seg.backend.precision, resolution=res)
    x = seg.network_input(frame[None])
    sync = synchronizer(seg.device)
    reset_peaks(seg.device)
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
    fps, p50, p99 = percentiles(samples)
    host, gpu = peaks(seg.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                     **common)]
    samples, stages = [], {s: [] for s in STAGES}
    for _ in range(frames):
        t0 = time.perf_counter()
        r = seg.segment(frame)
        samples.append(time.perf_counter() - t0)
        for s in STAGES:
            stages[s].append(r.timings[s])
    fps, p50, p99 = percentiles(samples)
    host, gpu = peaks(seg.device)
    med = {s: float(np.median(v)) for s, v in stages.items()}
    overhead = 100.0 * (sum(med.values()) - med["infer"]) / med["infer"]
    rows.append(BenchRow("e2e", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, stages_ms=med,
                         overhead_pct=overhead, peak_host_mb=host, peak_gpu_mb=gpu, note=seg.backend.note, **common))
    return rows


def scene_miou(segment, scenes: list) -> float:
    """mIoU of ``segment(rgb) → labels`` on synthetic scenes with exact labels (one confusion matrix)."""
    if not scenes:
        return float("nan")
    cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for sc in scenes:
        cm.update(segment(sc.image), sc.labels)
    return float(cm.miou())


def write_calibration_folder(folder: Path, size: tuple[int, int], count: int = 32) -> Path:
    """``count`` synthetic scenes (seeds from CALIBRATION_SEED) as PNGs: the bench's int8 calibration set."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = generate_scene(CALIBRATION_SEED + i, size).image
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def run_bench(model: str, resolutions: list[tuple[int, int]], devices: list[str], frames: int = 30,
              warmup: int = 5, precisions: list[str] | None = None, backends: list[str] | None = None,
              naive: bool = True, accuracy_frames: int = 8, runtime: RuntimeOptions | None = None,
              progress: Callable[[str], None] | None = None) -> BenchReport:
    """Benchmark every device × backend × precision × resolution that can run here; returns the JSON report.

    ``backends`` default: every backend in ``AUTO_ORDER`` that can run on the device. int8 rows calibrate on
    ``runtime.calibration``, or on synthetic scenes written to a temporary folder when it is empty.
    Combinations that cannot run here are listed under ``skipped`` with the reason.
    """
    rows: list[BenchRow] = []
    skipped: list[Skipped] = []
    say = progress or (lambda s: None)
    runtime = runtime or RuntimeOptions()
    is_onnx = str(model).lower().endswith(".onnx")
    with tempfile.TemporaryDirectory(prefix="seg-ros-bench-") as tmp:
        for device in devices:
            dev = resolve_device(device)
            for res in resolutions:
                frame = generate_scene(7, res).image
                scenes = [generate_scene(ACCURACY_SEED + i, res) for i in range(accuracy_frames)]
                naive_fps = None
                if naive and not is_onnx:
                    say(f"naive baseline on {dev} at {format_resolution(res)}")
                    base = NaivePipeline(model, res, dev)
                    naive_rows = bench_naive(base, frame, frames, warmup)
                    naive_rows[1].miou = scene_miou(lambda rgb, b=base: b.segment(rgb)["labels"], scenes)
                    naive_fps = naive_rows[1].fps
                    rows += naive_rows
                    del base
                for backend in backends or list(AUTO_ORDER):
                    for precision in precisions or PRECISIONS:
                        ok, why = can_run(backend, dev, precision, is_onnx)
                        if not ok:
                            skipped.append(Skipped(str(dev), backend, precision, format_resolution(res), why))
                            continue
                        opts = runtime
                        if precision == "int8" and not runtime.calibration:
                            calib = Path(tmp) / f"calib_{res[0]}x{res[1]}"
                            if not calib.is_dir():  # written once per resolution, shared by the int8 backends
                                write_calibration_folder(calib, res)
                            opts = RuntimeOptions(**{**asdict(runtime), "calibration": str(calib)})
                        say(f"{backend} {precision} on {dev} at {format_resolution(res)}")
                        try:
                            seg = Segmenter(model, resolution=res, keep_aspect=False, device=device,
                                            precision=precision, backend=backend,
                                            runtime=RuntimeOptions(**{**asdict(opts), "fallback": False}))
                        except SegRosError as e:
                            skipped.append(Skipped(str(dev), backend, precision, format_resolution(res), str(e)))
                            continue
                        new = bench_segmenter(seg, frame, frames, warmup)
                        new[1].miou = scene_miou(lambda rgb, s=seg: s.segment(rgb, ("labels",)).labels, scenes)
                        if naive_fps:
                            new[1].vs_naive = new[1].fps / naive_fps
                        rows += new
                        del seg
    return BenchReport(machine=describe_machine(), date=time.strftime("%Y-%m-%d"), model=str(model),
                       torch=torch.__version__, versions=_versions(), accuracy_frames=accuracy_frames, rows=rows,
                       skipped=skipped)


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
    for name in ("onnxruntime", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


__all__ = ["ACCURACY_SEED", "CALIBRATION_SEED", "RESOLUTIONS", "BenchReport", "BenchRow", "NaivePipeline", "Skipped",
           "bench_devices", "bench_naive", "bench_segmenter", "format_table", "run_bench", "scene_miou",
           "write_calibration_folder"]
