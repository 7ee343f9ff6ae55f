"""``seg-ros bench``: model-only and end-to-end speed of every available backend, beside a naive baseline.

For each device × backend × precision × resolution it times (a) the backend's forward pass alone on a
pre-normalised tensor and (b) the whole Segmenter on a uint8 RGB frame with every output (labels, colour,
overlay, confidence), and reports fps, p50/p99 latency, the median time of each stage, the pipeline
overhead (time outside the forward pass as a share of the forward time), the peak host memory (resident
set high-water mark over the row) and peak GPU memory (torch's allocator), and the mIoU on a few synthetic
scenes with exact labels (so int8 and fp16 are compared with fp32 on the same frames). The **naive
baseline** runs in the same process: torch eager on a plain NCHW tensor, OpenCV resize, numpy
normalisation, numpy argmax, softmax and colouring; each e2e row states its speed-up over it.

``--bag`` measures reading a bag (fetch, deserialize, decode to RGB) per
storage; ``--evaluate`` measures ``seg-ros evaluate``'s own overhead (reading,
decoding, scoring, writing the output bag) against the pipeline time.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from seg_ros.core.errors import SegRosError
from seg_ros.core.labels import CAMVID
from seg_ros.core.machine import describe_machine
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.staging import atomic_path
from seg_ros.models.modelfile import load_model, resolve_model
from seg_ros.pipeline import STAGES, Segmenter, format_resolution
from seg_ros.runtime import AUTO_ORDER, RuntimeOptions, can_run, resolve_device
from seg_ros.synthetic import generate_scene

RESOLUTIONS = [(360, 640), (512, 1024), (1024, 2048)]
"""The issue's benchmark resolutions; ``seg-ros bench`` without --resolution runs these."""
ACCURACY_SEED, CALIBRATION_SEED = 500, 9000
"""Synthetic scenes for the mIoU column and for int8 calibration are drawn from disjoint seeds."""

log = logging.getLogger("seg_ros.tools.bench")


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
    peak_host_mb: float | None = None
    """Resident-set high-water mark of the process during the row, MB."""
    peak_gpu_mb: float | None = None
    """Peak memory of torch's CUDA allocator during the row, MB (TensorRT / ONNX Runtime buffers not included)."""
    miou: float | None = None
    """mIoU (0..1) on the accuracy scenes at this resolution; e2e rows only."""
    vs_naive: float | None = None
    """e2e fps / the naive baseline's e2e fps at the same device and resolution."""
    note: str = ""


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    """(fps, p50 ms, p99 ms) of per-frame times in seconds."""
    a = np.asarray(samples)
    return float(1.0 / a.mean()), float(np.percentile(a, 50) * 1000), float(np.percentile(a, 99) * 1000)


# -- memory -----------------------------------------------------------------------------------------------------------

def _reset_peaks(device: torch.device) -> None:
    try:  # Linux: "5" resets the VmHWM high-water mark of this process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peaks(device: torch.device) -> tuple[float, float | None]:
    host = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                host = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if host is None:
        host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return host, gpu


# -- the Segmenter ----------------------------------------------------------------------------------------------------

def bench_segmenter(seg: Segmenter, frame: np.ndarray, frames: int = 30, warmup: int = 5) -> list[BenchRow]:
    """Time ``seg`` on ``frame`` (already at the resolution under test): one model row and one e2e row."""
    res = format_resolution(seg.resolution)
    common = dict(backend=seg.backend.name, device=str(seg.device), precision=seg.backend.precision, resolution=res)
    ih, iw = seg.inference_size(*frame.shape[:2])
    x = seg._preprocess(frame[None], ih, iw)
    sync = (lambda: torch.cuda.synchronize(seg.device)) if seg.device.type == "cuda" else (lambda: None)
    _reset_peaks(seg.device)
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
    host, gpu = _peaks(seg.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                     **common)]
    samples, stages = [], {s: [] for s in STAGES}
    for _ in range(frames):
        t0 = time.perf_counter()
        r = seg.segment(frame)
        samples.append(time.perf_counter() - t0)
        for s in STAGES:
            stages[s].append(r.timings[s])
    fps, p50, p99 = _percentiles(samples)
    host, gpu = _peaks(seg.device)
    med = {s: float(np.median(v)) for s, v in stages.items()}
    overhead = 100.0 * (sum(med.values()) - med["infer"]) / med["infer"]
    rows.append(BenchRow("e2e", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, stages_ms=med,
                         overhead_pct=overhead, peak_host_mb=host, peak_gpu_mb=gpu, note=seg.backend.note, **common))
    return rows


# -- the naive baseline -----------------------------------------------------------------------------------------------

class NaivePipeline:
    """The straightforward pipeline: OpenCV resize, numpy normalisation, torch eager on a plain NCHW tensor,
    numpy argmax / softmax / colour lookup / float blend. Same outputs as the Segmenter."""

    def __init__(self, model: str | os.PathLike, resolution: tuple[int, int], device: torch.device,
                 alpha: float = 0.5):
        self.device = device
        self.module, meta = load_model(resolve_model(model))
        self.module = self.module.to(self.device).eval()
        self.mean = np.asarray(meta.mean, np.float32)
        self.std = np.asarray(meta.std, np.float32)
        self.palette = meta.label_set.palette
        self.resolution = tuple(resolution)
        self.alpha = alpha

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x)

    def preprocess(self, frame: np.ndarray) -> torch.Tensor:
        h, w = self.resolution
        img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR) if frame.shape[:2] != (h, w) else frame
        x = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(self.device)

    def segment(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        logits = self.infer(self.preprocess(frame))[0].cpu().numpy()
        if logits.shape[1:] != frame.shape[:2]:
            logits = np.stack([cv2.resize(c, (frame.shape[1], frame.shape[0])) for c in logits])
        labels = logits.argmax(0).astype(np.uint8)
        e = np.exp(logits - logits.max(0, keepdims=True))
        confidence = (e.max(0) / e.sum(0)).astype(np.float32)
        color = self.palette[labels]
        overlay = (frame.astype(np.float32) * (1 - self.alpha) + color.astype(np.float32) * self.alpha)
        return {"labels": labels, "confidence": confidence, "color": color, "overlay": overlay.round().astype(np.uint8)}


def bench_naive(naive: NaivePipeline, frame: np.ndarray, frames: int = 30, warmup: int = 5) -> list[BenchRow]:
    res = format_resolution(naive.resolution)
    common = dict(backend="naive", device=str(naive.device), precision="fp32", resolution=res,
                  note="torch eager NCHW + OpenCV resize + numpy argmax/softmax/colour")
    sync = (lambda: torch.cuda.synchronize(naive.device)) if naive.device.type == "cuda" else (lambda: None)
    x = naive.preprocess(frame)
    _reset_peaks(naive.device)
    for _ in range(warmup):
        naive.infer(x)
        naive.segment(frame)
    sync()
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        naive.infer(x)
        sync()
        samples.append(time.perf_counter() - t0)
    fps, p50, p99 = _percentiles(samples)
    host, gpu = _peaks(naive.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                     **common)]
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        naive.segment(frame)
        samples.append(time.perf_counter() - t0)
    fps, p50, p99 = _percentiles(samples)
    host, gpu = _peaks(naive.device)
    rows.append(BenchRow("e2e", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                         vs_naive=1.0, **common))
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
              progress=None) -> dict:
    """Benchmark every device × backend × precision × resolution that can run here; returns the JSON report.

    ``backends`` default: every backend in ``AUTO_ORDER`` that can run on the device. int8 rows calibrate on
    ``runtime.calibration``, or on synthetic scenes written to a temporary folder when it is empty.
    Combinations that cannot run here are listed under ``skipped`` with the reason.
    """
    rows: list[BenchRow] = []
    skipped: list[dict] = []
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
                    for precision in precisions or ["fp32", "fp16", "int8"]:
                        ok, why = can_run(backend, dev, precision, is_onnx)
                        if not ok:
                            skipped.append({"device": str(dev), "backend": backend, "precision": precision,
                                            "resolution": format_resolution(res), "reason": why})
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
                            skipped.append({"device": str(dev), "backend": backend, "precision": precision,
                                            "resolution": format_resolution(res), "reason": str(e)})
                            continue
                        new = bench_segmenter(seg, frame, frames, warmup)
                        new[1].miou = scene_miou(lambda rgb, s=seg: s.segment(rgb, ("labels",)).labels, scenes)
                        if naive_fps:
                            new[1].vs_naive = new[1].fps / naive_fps
                        rows += new
                        del seg
    return {
        "machine": describe_machine(),
        "date": time.strftime("%Y-%m-%d"),
        "model": str(model),
        "torch": torch.__version__,
        "versions": _versions(),
        "accuracy_frames": accuracy_frames,
        "rows": [asdict(r) for r in rows],
        "skipped": skipped,
    }


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
    for name in ("onnxruntime", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


def format_table(report: dict) -> str:
    """A Markdown table of a report from :func:`run_bench`."""
    head = ("| mode | backend | device | precision | resolution | fps | p50 ms | p99 ms | "
            + " | ".join(STAGES) + " | overhead | peak host MB | peak GPU MB | mIoU | vs naive |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["rows"]:
        st = r["stages_ms"]
        stage_cells = " | ".join(f"{st[s]:.1f}" if s in st else "" for s in STAGES)
        ov = f"{r['overhead_pct']:.1f}%" if r.get("overhead_pct") is not None else ""
        host = f"{r['peak_host_mb']:.0f}" if r.get("peak_host_mb") is not None else ""
        gpu = f"{r['peak_gpu_mb']:.0f}" if r.get("peak_gpu_mb") is not None else ""
        miou = f"{100 * r['miou']:.1f}" if r.get("miou") is not None else ""
        vs = f"{r['vs_naive']:.2f}×" if r.get("vs_naive") is not None else ""
        lines.append(f"| {r['mode']} | {r['backend']} | {r['device']} | {r['precision']} | {r['resolution']} "
                     f"| {r['fps']:.3g} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {stage_cells} | {ov} "
                     f"| {host} | {gpu} | {miou} | {vs} |")
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

    from seg_ros.evaluate import EvalOptions, evaluate_bag, segmenter_from_params
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

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
