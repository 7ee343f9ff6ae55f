"""``seg-ros bench speed``: bare-network and end-to-end speed of every available backend, beside a naive baseline.

For each device × backend × precision × resolution it times (a) the backend alone on a prepared tensor
(``model``), (b) the whole Segmenter on a uint8 RGB frame with labels, colour and overlay out (``e2e``) and
(c) the same with the confidence map too (``e2e+conf``): fps from the median, p50 / p90 / p99 latency, the
median of each stage, e2e / model, the overhead outside the forward pass, peak host and GPU memory, and the
mIoU on synthetic scenes with exact labels, with its difference to the same backend's fp32 row. openvino and
onnxruntime rows also record the first-use cost (a build into an empty cache, then from the filled one). A
row of ``backend=auto, precision=auto`` says what it resolved to. The **naive baseline**
(:mod:`seg_ros.tools.naive`) is built around the fastest fp32 runtime of the run at that device and
resolution; every e2e row states its speed-up over it (ratio of medians). Rows are timed one after another, so
load on the machine during one row moves its ratios; the speed targets' contenders (the auto pipeline end to end,
the candidates for the fastest bare network, the naive baseline end to end) are therefore timed again in turn,
frame by frame (``interleaved``). The results are :mod:`seg_ros.tools.benchrow`'s dataclasses.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from seg_ros.tools.benchrow import (
    BenchReport,
    BenchRow,
    Interleaved,
    Skipped,
    compare_with_fp32,
    compare_with_naive,
    fastest_fp32,
    format_table,
)
from seg_ros.tools.naive import ONNX_RUNTIMES, NaivePipeline, bench_naive
from seg_ros.tools.timing import (
    E2E_MODES,
    E2E_OUTPUTS,
    peaks,
    percentiles,
    reset_peaks,
    synchronizer,
    time_calls,
    time_interleaved,
)

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
    """Time ``seg`` on ``frame`` (already at the resolution under test): a ``model`` row (the backend alone on
    the prepared tensor), an ``e2e`` row (labels, colour, overlay) and an ``e2e+conf`` row (plus confidence)."""
    res = format_resolution(seg.resolution)
    common = dict(backend=seg.backend.name, device=str(seg.device), precision=seg.backend.precision, resolution=res)
    x = seg.network_input(frame[None])
    sync = synchronizer(seg.device)
    reset_peaks(seg.device)
    for _ in range(warmup):
        seg.backend.infer(x)
        seg.segment(frame, E2E_OUTPUTS)
        seg.segment(frame)
    sync()
    fps, p50, p90, p99 = percentiles(time_calls(lambda: seg.backend.infer(x), frames, sync))
    host, gpu = peaks(seg.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p90_ms=p90, p99_ms=p99, peak_host_mb=host,
                     peak_gpu_mb=gpu, **common)]
    for mode, outputs in E2E_MODES:
        stages: dict[str, list[float]] = {s: [] for s in STAGES}

        def keep_stages(r, stages=stages) -> None:
            for s in STAGES:
                stages[s].append(r.timings[s])

        samples = time_calls(lambda outputs=outputs: seg.segment(frame, outputs), frames, each=keep_stages)
        fps, p50, p90, p99 = percentiles(samples)
        host, gpu = peaks(seg.device)
        med = {s: float(np.median(v)) for s, v in stages.items()}
        overhead = 100.0 * (sum(med.values()) - med["infer"]) / med["infer"]
        rows.append(BenchRow(mode, frames=frames, fps=fps, p50_ms=p50, p90_ms=p90, p99_ms=p99, stages_ms=med,
                             overhead_pct=overhead, peak_host_mb=host, peak_gpu_mb=gpu, note=seg.backend.note,
                             e2e_over_model=p50 / rows[0].p50_ms, **common))
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


COLD_CACHE_BACKENDS = ("openvino", "onnxruntime")
"""Backends whose rows record the first-use cost: a build into an empty cache, then one from the filled cache."""


@dataclass
class Workload:
    """What every row at one device and resolution is timed and scored on."""

    device: str
    resolution: tuple[int, int]
    frame: np.ndarray
    """H×W×3 uint8 RGB at ``resolution``: the timed frame."""
    scenes: list
    """Synthetic scenes with exact labels at ``resolution``: the mIoU column."""
    frames: int
    warmup: int

    @property
    def where(self) -> str:
        return f"on {resolve_device(self.device)} at {format_resolution(self.resolution)}"


def run_bench(model: str, resolutions: list[tuple[int, int]], devices: list[str], frames: int = 30,
              warmup: int = 5, precisions: list[str] | None = None, backends: list[str] | None = None,
              naive: bool = True, accuracy_frames: int = 8, runtime: RuntimeOptions | None = None,
              progress: Callable[[str], None] | None = None) -> BenchReport:
    """Benchmark every device × backend × precision × resolution that can run here, then ``auto`` / ``auto``
    and the naive baseline around the fastest fp32 runtime; returns the JSON report.

    ``backends`` default: every backend in ``AUTO_ORDER`` that can run on the device. int8 rows calibrate on
    ``runtime.calibration``, or on synthetic scenes written to a temporary folder when it is empty; the auto
    row runs with ``runtime`` as given (what the node runs with those settings). openvino and onnxruntime rows
    are built twice, first into a fresh temporary cache (the first-use cost), then from it (the row timed).
    Combinations that cannot run here are listed under ``skipped`` with the reason.
    """
    rows: list[BenchRow] = []
    skipped: list[Skipped] = []
    interleaved: list[Interleaved] = []
    say = progress or (lambda s: None)
    runtime = runtime or RuntimeOptions()
    is_onnx = str(model).lower().endswith(".onnx")
    with tempfile.TemporaryDirectory(prefix="seg-ros-bench-") as tmp:
        for device in devices:
            dev = resolve_device(device)
            for res in resolutions:
                work = Workload(device, res, generate_scene(7, res).image,
                                [generate_scene(ACCURACY_SEED + i, res) for i in range(accuracy_frames)], frames,
                                warmup)
                here: list[BenchRow] = []
                onnx_files: dict[str, str] = {}
                for backend in backends or list(AUTO_ORDER):
                    for precision in precisions or PRECISIONS:
                        ok, why = can_run(backend, dev, precision, is_onnx)
                        if not ok:
                            skipped.append(Skipped(str(dev), backend, precision, format_resolution(res), why))
                            continue
                        say(f"{backend} {precision} {work.where}")
                        opts = _row_options(runtime, backend, precision, work, Path(tmp))
                        try:
                            new, onnx = _backend_rows(model, backend, precision, opts, work)
                        except SegRosError as e:
                            skipped.append(Skipped(str(dev), backend, precision, format_resolution(res), str(e)))
                            continue
                        if onnx is not None:
                            onnx_files[backend] = onnx
                        here += new
                say(f"auto auto {work.where}")
                auto = None
                try:
                    auto_rows, auto = _auto_rows(model, runtime, work)
                    here += auto_rows
                except SegRosError as e:
                    skipped.append(Skipped(str(dev), "auto", "auto", format_resolution(res), str(e)))
                compare_with_fp32(here)
                if naive:
                    naive_rows, base = _naive_rows(model, here, onnx_files, is_onnx, work, say)
                    if auto is not None and base is not None:
                        say(f"auto, best bare network and naive in turn {work.where}")
                        interleaved.append(_interleaved(model, here, auto, base, runtime, work, Path(tmp)))
                    here = naive_rows + here
                rows += here
    return BenchReport(machine=describe_machine(), date=time.strftime("%Y-%m-%d"), model=str(model),
                       torch=torch.__version__, versions=_versions(), accuracy_frames=accuracy_frames, rows=rows,
                       skipped=skipped, interleaved=interleaved)


def _row_options(runtime: RuntimeOptions, backend: str, precision: str, work: Workload,
                 tmp: Path) -> RuntimeOptions:
    """``runtime`` for one row: no fallback; synthetic calibration scenes for int8 when none are given; an empty
    cache folder of its own for the backends whose first use is measured."""
    opts = replace(runtime, fallback=False)
    h, w = work.resolution
    if precision == "int8" and not runtime.calibration:
        calib = tmp / f"calib_{h}x{w}"
        if not calib.is_dir():  # written once per resolution, shared by the int8 backends
            write_calibration_folder(calib, work.resolution)
        opts = replace(opts, calibration=str(calib))
    if backend in COLD_CACHE_BACKENDS:
        opts = replace(opts, cache_dir=str(tmp / f"cache_{backend}_{precision}_{work.device}_{h}x{w}"))
    return opts


def _backend_rows(model: str, backend: str, precision: str, opts: RuntimeOptions,
                  work: Workload) -> tuple[list[BenchRow], str | None]:
    """The timed and scored rows of one backend and precision, and its fp32 ONNX file when it runs one."""
    cold = None
    if backend in COLD_CACHE_BACKENDS:
        cold, _ = _timed_build(model, work, precision, backend, opts)
    warm, seg = _timed_build(model, work, precision, backend, opts)
    rows = bench_segmenter(seg, work.frame, work.frames, work.warmup)
    _score(rows, seg, work.scenes)
    if cold is not None:
        rows[0].build_cold_s, rows[0].build_warm_s = cold, warm
    onnx = getattr(getattr(seg.backend, "model", None), "path", None)
    return rows, (str(onnx) if onnx is not None and seg.backend.precision == "fp32" else None)


def _timed_build(model: str, work: Workload, precision: str, backend: str,
                 runtime: RuntimeOptions) -> tuple[float, Segmenter]:
    """Seconds to the first segmented frame (labels, colour, overlay: what compiles lazily is in it) and the
    Segmenter."""
    t0 = time.perf_counter()
    seg = Segmenter(model, resolution=work.resolution, keep_aspect=False, device=work.device, precision=precision,
                    backend=backend, runtime=runtime)
    seg.segment(work.frame, E2E_OUTPUTS)
    return time.perf_counter() - t0, seg


def _score(rows: list[BenchRow], seg: Segmenter, scenes: list) -> None:
    miou = scene_miou(lambda rgb: seg.segment(rgb, ("labels",)).labels, scenes)
    for r in rows[1:]:
        r.miou = miou


def _auto_rows(model: str, runtime: RuntimeOptions, work: Workload) -> tuple[list[BenchRow], Segmenter]:
    """The rows of ``backend=auto, precision=auto``, labelled ``auto`` / ``auto`` and resolved to what was built,
    and its Segmenter."""
    _, seg = _timed_build(model, work, "auto", "auto", runtime)
    new = bench_segmenter(seg, work.frame, work.frames, work.warmup)
    _score(new, seg, work.scenes)
    for r in new:
        r.resolved = f"{r.backend} {r.precision}"
        r.backend = r.precision = "auto"
    return new, seg


def _naive_rows(model: str, rows: list[BenchRow], onnx_files: dict[str, str], is_onnx: bool, work: Workload,
                say: Callable[[str], None]) -> tuple[list[BenchRow], NaivePipeline | None]:
    """The naive baseline's rows around the fastest fp32 runtime of ``rows`` (sets their ``vs_naive``) and the
    baseline; none when there is no fp32 row to follow or nothing the baseline can run."""
    fastest = fastest_fp32(rows)
    if fastest is None:
        return [], None
    dev = resolve_device(work.device)
    if fastest.backend in ONNX_RUNTIMES and fastest.backend in onnx_files and dev.type == "cpu":
        base = NaivePipeline(model, work.resolution, dev, runtime=fastest.backend, onnx=onnx_files[fastest.backend])
    elif not is_onnx:  # torch eager: on CUDA, or when the fastest runtime reads no ONNX file
        base = NaivePipeline(model, work.resolution, dev)
    else:
        return [], None
    say(f"naive baseline ({base.runtime}) {work.where}")
    naive_rows = bench_naive(base, work.frame, work.frames, work.warmup)
    miou = scene_miou(lambda rgb: base.segment(rgb, ("labels",))["labels"], work.scenes)
    for r in naive_rows:
        r.resolved = f"{base.runtime} fp32"
        r.note = f"fastest fp32 bare network here: {fastest.backend}; baseline: {r.note}"
        r.miou = None if r.mode == "model" else miou
    compare_with_naive(rows, naive_rows)
    return naive_rows, base


BARE_CANDIDATES_WITHIN = 1.5
"""Bare networks timed again in turn: those whose row median is within this factor of the fastest row's (a
row's median can be off by that much under load; the rest cannot be the fastest)."""


def _interleaved(model: str, rows: list[BenchRow], auto: Segmenter, naive: NaivePipeline, runtime: RuntimeOptions,
                 work: Workload, tmp: Path) -> Interleaved:
    """The auto pipeline end to end, the candidates for the fastest bare network of ``rows`` (rebuilt from their
    rows' warm caches) and the naive baseline end to end, timed in turn frame by frame on ``work``'s frame."""
    bare_rows = [r for r in rows if r.mode == "model" and r.backend not in ("auto", "naive")]
    fastest = min(r.p50_ms for r in bare_rows)
    bares = {}
    for r in bare_rows:
        if r.p50_ms <= BARE_CANDIDATES_WITHIN * fastest:
            _, seg = _timed_build(model, work, r.precision, r.backend,
                                  _row_options(runtime, r.backend, r.precision, work, tmp))
            bares[f"{seg.backend.name} {seg.backend.precision}"] = (seg, seg.network_input(work.frame[None]))
    calls = [lambda: auto.segment(work.frame, E2E_OUTPUTS), lambda: naive.segment(work.frame, E2E_OUTPUTS)]
    calls += [lambda seg=seg, x=x: seg.backend.infer(x) for seg, x in bares.values()]
    for _ in range(work.warmup):
        for call in calls:
            call()
    medians = [percentiles(s)[1] for s in time_interleaved(calls, work.frames,
                                                           synchronizer(resolve_device(work.device)))]
    bare_ms = dict(zip(bares, medians[2:]))
    best = min(bare_ms, key=bare_ms.__getitem__)
    return Interleaved(str(auto.device), format_resolution(work.resolution), work.frames,
                       f"{auto.backend.name} {auto.backend.precision}", medians[0], best, bare_ms[best],
                       f"{naive.runtime} fp32", medians[1], bare_ms)


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
    for name in ("onnxruntime", "openvino", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


__all__ = ["ACCURACY_SEED", "CALIBRATION_SEED", "COLD_CACHE_BACKENDS", "E2E_OUTPUTS", "RESOLUTIONS", "BenchReport",
           "BenchRow", "NaivePipeline", "Skipped", "Workload", "bench_devices", "bench_naive", "bench_segmenter",
           "format_table", "run_bench", "scene_miou", "write_calibration_folder"]
