"""``seg-ros bench crf``: speed of the exact and fast dense CRF (its accuracy half: :mod:`seg_ros.tools.crfaccuracy`).

Speed (:func:`bench_crf_speed`): the CRF stage alone on one frame, logits in,
marginals out, the exact CRF (pydensecrf2, CPU) against the fast one on each
device, at the same size, class count, iterations and kernel settings. The
frame is a synthetic street scene; its logits are built from the scene's
labels (:func:`synthetic_logits`: soft, noisy, every class present), so the
lattice sees a real image and the mean field real work.

Accuracy (:func:`~seg_ros.tools.crfaccuracy.crf_accuracy`, re-exported here): a model's mIoU over
frames with ground truth (synthetic scenes, or a CamVid-layout split) without the CRF, with the exact
CRF and with the fast one (optionally also gated by confidence), each CRF run
on the same network output; plus the share of pixels where the fast CRF's
labels equal the exact CRF's, and the CRF's milliseconds per frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch

from seg_ros.crf import CRFConfig, DenseCRF, exact_available, grid_name, uncertain_region
from seg_ros.pipeline import format_resolution
from seg_ros.synthetic import generate_scene
from seg_ros.tools.crfaccuracy import CRFAccuracy, VariantScore, crf_accuracy, format_accuracy_table, network_logits
from seg_ros.tools.reports import json_fields


@dataclass
class CRFSpeedRow:
    """One timing of the CRF stage: a method on a device at a grid step and confidence gate."""

    method: str
    """``exact`` (pydensecrf2, CPU) or ``fast``."""
    device: str
    resolution: str
    """Frame size ``HxW`` in pixels."""
    classes: int
    iterations: int
    grid_step: int
    """Pixels per lattice cell side (1 = full resolution)."""
    confidence_threshold: float
    """Only pixels below this softmax confidence are refined; 0 = every pixel."""
    frames: int
    p50_ms: float
    """Median wall-clock milliseconds per frame."""
    mean_ms: float
    cpu_ms: float
    """Median process CPU milliseconds per frame, all threads (what contention does not inflate)."""
    refined_pct: float
    """Share of the pixels the CRF updates, percent."""
    speedup: float | None = None
    """Exact p50 / this p50; None when the exact CRF did not run."""
    cpu_speedup: float | None = None
    """The same in CPU time."""
    agreement_pct: float | None = None
    """Pixels whose label equals the exact CRF's, percent."""

    def to_json(self) -> dict[str, Any]:
        return json_fields(self, omit_if_none=("speedup", "cpu_speedup", "agreement_pct"))


def synthetic_logits(labels: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """(C, H, W) float32 logits that a plausible network might give for the (H, W) class ids ``labels``.

    Ids are folded into ``num_classes`` (``id % num_classes``); the one-hot map is blurred (soft, slightly
    misplaced boundaries) and low-frequency noise is added to every class, so that every class has some
    probability somewhere and a few percent of the pixels are wrong before the CRF.
    """
    h, w = labels.shape
    rng = np.random.default_rng(seed)
    onehot = np.eye(num_classes, dtype=np.float32)[labels.astype(np.int64) % num_classes]  # (H, W, C)
    sigma = max(h, w) / 150.0
    soft = cv2.GaussianBlur(onehot, (0, 0), sigma).reshape(h, w, num_classes)
    coarse = rng.normal(0.0, 1.0, size=(max(2, h // 32), max(2, w // 32), num_classes)).astype(np.float32)
    noise = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, num_classes)
    logits = 6.0 * soft + 1.2 * noise
    return np.ascontiguousarray(logits.transpose(2, 0, 1))


def _timed(fn, frames: int, warmup: int, sync, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock milliseconds of each of ``frames`` calls; their process CPU milliseconds appended to ``cpu``."""
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        samples.append((time.perf_counter() - t0) * 1000.0)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000.0)
    return samples


def bench_crf_speed(size: tuple[int, int] = (512, 1024), classes: int = 19, iterations: int = 5,
                    devices: Iterable[str] = ("cpu",), frames: int = 5, warmup: int = 1, exact: bool = True,
                    thresholds: Iterable[float] = (0.0, 0.9), exact_frames: int = 2,
                    downsample: Iterable[int] = (0, 1)) -> list[CRFSpeedRow]:
    """Milliseconds per frame of the CRF stage; one row per method × device × grid step × confidence threshold.

    The fast CRF runs at each ``crf.downsample`` of ``downsample`` (0 = auto; steps that resolve alike run
    once) without a confidence gate, and at the auto step with each non-zero threshold of ``thresholds``.
    Fast rows carry ``speedup``, ``cpu_speedup`` and ``agreement_pct`` when the exact CRF (never gated) ran.
    """
    scene = generate_scene(7, size)
    logits = torch.from_numpy(synthetic_logits(scene.labels, classes))[None]
    frame = scene.image[None]
    base = CRFConfig(iterations=iterations)
    rows: list[CRFSpeedRow] = []
    common = {"resolution": format_resolution(size), "classes": classes, "iterations": iterations}
    exact_ms = exact_labels = None
    if exact and exact_available():
        crf = DenseCRF(replace(base, method="exact"), "cpu")
        out: list[torch.Tensor] = []
        cpu: list[float] = []
        # Only the last output is kept (for the labels); each is C×H×W floats.
        samples = _timed(lambda: (out.clear(), out.append(crf(logits, frame))), exact_frames, 0, lambda: None, cpu)
        exact_ms = float(np.median(samples))
        exact_labels = out[-1].argmax(dim=1)
        rows.append(CRFSpeedRow("exact", "cpu", **common, grid_step=1, confidence_threshold=0.0,
                                frames=exact_frames, p50_ms=exact_ms, mean_ms=float(np.mean(samples)),
                                cpu_ms=float(np.median(cpu)), refined_pct=100.0, speedup=1.0, cpu_speedup=1.0,
                                agreement_pct=100.0))
    conf = torch.softmax(logits, dim=1).amax(dim=1)[0]
    for device in devices:
        dev = torch.device(device)
        lg = logits.to(dev)
        fr = torch.from_numpy(frame).to(dev)
        sync = (lambda d=dev: torch.cuda.synchronize(d)) if dev.type == "cuda" else (lambda: None)
        steps = dict.fromkeys(replace(base, downsample=d).grid_step(*size) for d in downsample)
        settings = [replace(base, downsample=s) for s in steps]
        settings += [replace(base, confidence_threshold=float(t)) for t in thresholds if t > 0]
        for cfg in settings:
            cfg = replace(cfg, method="fast")
            thr = cfg.confidence_threshold
            crf = DenseCRF(cfg, dev)
            out, cpu = [], []
            samples = _timed(lambda c=crf, o=out, x=lg, f=fr: (o.clear(), o.append(c(x, f))), frames, warmup, sync,
                             cpu)
            p50 = float(np.median(samples))
            refined = 100.0
            if thr > 0:
                refined = 100.0 * float(uncertain_region(conf, thr, cfg.band).float().mean())
            row = CRFSpeedRow("fast", str(dev), **common, grid_step=cfg.grid_step(*size),
                              confidence_threshold=float(thr), frames=frames, p50_ms=p50,
                              mean_ms=float(np.mean(samples)), cpu_ms=float(np.median(cpu)), refined_pct=refined)
            if exact_ms is not None:
                row.speedup = exact_ms / p50
                row.cpu_speedup = rows[0].cpu_ms / max(row.cpu_ms, 1e-6)
                row.agreement_pct = 100.0 * float((out[-1].argmax(dim=1).cpu() == exact_labels).float().mean())
            rows.append(row)
    return rows


def format_speed_table(rows: list[CRFSpeedRow]) -> str:
    """Markdown table of :func:`bench_crf_speed` rows."""
    lines = ["| method | device | resolution | classes | iterations | grid | confidence gate | refined | p50 ms "
             "| CPU ms | speed-up vs exact (wall / CPU) | labels = exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        grid = grid_name(r.grid_step)
        gate = f"< {r.confidence_threshold:g}" if r.confidence_threshold > 0 else "off"
        timed = r.speedup is not None and r.cpu_speedup is not None
        sp = f"{r.speedup:.1f}× / {r.cpu_speedup:.1f}×" if timed else "n/a"
        ag = f"{r.agreement_pct:.2f}%" if r.agreement_pct is not None else "n/a"
        lines.append(f"| {r.method} | {r.device} | {r.resolution} | {r.classes} | {r.iterations} "
                     f"| {grid} | {gate} | {r.refined_pct:.0f}% | {r.p50_ms:.1f} | {r.cpu_ms:.1f} | {sp} | {ag} |")
    return "\n".join(lines)


__all__ = ["CRFAccuracy", "CRFSpeedRow", "VariantScore", "bench_crf_speed", "crf_accuracy", "format_accuracy_table",
           "format_speed_table", "network_logits", "synthetic_logits"]
