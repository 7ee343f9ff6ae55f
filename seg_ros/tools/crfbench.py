"""``seg-ros bench --crf``: speed of the exact and fast dense CRF, and what the CRF is worth in mIoU.

Speed (:func:`bench_crf_speed`): the CRF stage alone on one frame, logits in,
marginals out, the exact CRF (pydensecrf2, CPU) against the fast one on each
device, at the same size, class count, iterations and kernel settings. The
frame is a synthetic street scene; its logits are built from the scene's
labels (:func:`synthetic_logits`: soft, noisy, every class present), so the
lattice sees a real image and the mean field real work.

Accuracy (:func:`crf_accuracy`): a model's mIoU over frames with ground truth
(synthetic scenes, or a CamVid-layout split) without the CRF, with the exact
CRF and with the fast one (optionally also gated by confidence), each CRF run
on the same network output; plus the share of pixels where the fast CRF's
labels equal the exact CRF's, and the CRF's milliseconds per frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.crf import CRFConfig, DenseCRF, exact_available, grid_name, uncertain_region
from seg_ros.pipeline import Segmenter, format_resolution
from seg_ros.synthetic import generate_scene


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
                    downsample: Iterable[int] = (0, 1)) -> list[dict]:
    """Milliseconds per frame of the CRF stage; one row per method × device × grid step × confidence threshold.

    The fast CRF runs at each ``crf.downsample`` of ``downsample`` (0 = auto; steps that resolve alike run
    once) without a confidence gate, and at the auto step with each non-zero threshold of ``thresholds``.
    Rows: ``method``, ``device``, ``resolution``, ``classes``, ``iterations``, ``grid_step`` (1 = full
    resolution), ``confidence_threshold``, ``frames``, ``p50_ms``, ``mean_ms`` (wall clock), ``cpu_ms``
    (median process CPU time, all threads: what contention from other processes does not inflate),
    ``refined_pct`` (share of pixels updated) and, for fast rows when the exact CRF ran, ``speedup`` (exact
    p50 / this p50), ``cpu_speedup`` (the same in CPU time) and ``agreement_pct`` (labels equal to the
    exact CRF's, which is never gated).
    """
    scene = generate_scene(7, size)
    logits = torch.from_numpy(synthetic_logits(scene.labels, classes))[None]
    frame = scene.image[None]
    base = CRFConfig(iterations=iterations)
    rows: list[dict] = []
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
        rows.append({"method": "exact", "device": "cpu", **common, "grid_step": 1, "confidence_threshold": 0.0,
                     "frames": exact_frames, "p50_ms": exact_ms, "mean_ms": float(np.mean(samples)),
                     "cpu_ms": float(np.median(cpu)), "refined_pct": 100.0, "speedup": 1.0, "cpu_speedup": 1.0,
                     "agreement_pct": 100.0})
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
            row = {"method": "fast", "device": str(dev), **common, "grid_step": cfg.grid_step(*size),
                   "confidence_threshold": float(thr),
                   "frames": frames, "p50_ms": p50, "mean_ms": float(np.mean(samples)),
                   "cpu_ms": float(np.median(cpu)), "refined_pct": refined}
            if exact_ms is not None:
                row["speedup"] = exact_ms / p50
                row["cpu_speedup"] = rows[0]["cpu_ms"] / max(row["cpu_ms"], 1e-6)
                row["agreement_pct"] = 100.0 * float((out[-1].argmax(dim=1).cpu() == exact_labels).float().mean())
            rows.append(row)
    return rows


def format_speed_table(rows: list[dict]) -> str:
    """Markdown table of :func:`bench_crf_speed` rows."""
    lines = ["| method | device | resolution | classes | iterations | grid | confidence gate | refined | p50 ms "
             "| CPU ms | speed-up vs exact (wall / CPU) | labels = exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        grid = grid_name(r["grid_step"])
        gate = f"< {r['confidence_threshold']:g}" if r["confidence_threshold"] > 0 else "off"
        sp = f"{r['speedup']:.1f}× / {r['cpu_speedup']:.1f}×" if "cpu_speedup" in r else "n/a"
        ag = f"{r['agreement_pct']:.2f}%" if "agreement_pct" in r else "n/a"
        lines.append(f"| {r['method']} | {r['device']} | {r['resolution']} | {r['classes']} | {r['iterations']} "
                     f"| {grid} | {gate} | {r['refined_pct']:.0f}% | {r['p50_ms']:.1f} | {r['cpu_ms']:.1f} | {sp} "
                     f"| {ag} |")
    return "\n".join(lines)


# -- accuracy --------------------------------------------------------------------------------------------------------

def network_logits(seg: Segmenter, frame: np.ndarray) -> torch.Tensor:
    """(1, C, H, W) logits of ``seg``'s network for one (H, W, 3) frame, upsampled to the frame's size."""
    h, w = frame.shape[:2]
    x = seg._preprocess(seg._upload(frame[None]), *seg.inference_size(h, w))
    with torch.inference_mode():
        logits = seg.backend.infer(x)
    if logits.shape[-2:] != (h, w):
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.float()


def crf_accuracy(seg: Segmenter, frames: Iterable[tuple[np.ndarray, np.ndarray]], variants: dict[str, CRFConfig],
                 reference: str | None = "exact") -> dict:
    """mIoU of ``seg`` without the CRF and with each CRF variant, on (image, labels) pairs.

    Args:
        seg: the network (its own CRF setting is not used).
        frames: (H, W, 3) uint8 RGB images with (H, W) uint8 ground truth (the label set's ignore id skipped).
        variants: name → CRF settings, run on the same logits.
        reference: the variant that the others' labels (and the network's own) are compared with
            (``agreement_pct``), if present.

    Returns:
        ``{"frames", "variants": {name: {"miou", "gain", "ms_per_frame", "agreement_pct"?, "iou"}}}``
        with name ``none`` for the network alone; mIoU in percent.
    """
    ls = seg.label_set
    stages = {name: DenseCRF(cfg, seg.device) for name, cfg in variants.items()}
    cms = {name: ConfusionMatrix(ls.num_classes, ls.ignore_id) for name in ("none", *stages)}
    ms: dict[str, list[float]] = {name: [] for name in stages}
    agree: dict[str, list[float]] = {name: [] for name in ("none", *stages)}
    n = 0
    for image, labels in frames:
        logits = network_logits(seg, image)
        pred = {"none": logits.argmax(dim=1)[0]}
        src = torch.from_numpy(image[None]).to(seg.device)
        for name, crf in stages.items():
            t0 = time.perf_counter()
            q = crf(logits, src)
            if seg.device.type == "cuda":
                torch.cuda.synchronize(seg.device)
            ms[name].append((time.perf_counter() - t0) * 1000.0)
            pred[name] = q.argmax(dim=1)[0]
        for name, p in pred.items():
            cms[name].update(p.to(torch.uint8).cpu().numpy(), labels)
        if reference in pred:
            for name in agree:
                agree[name].append(float((pred[name] == pred[reference]).float().mean()))
        n += 1
    base = cms["none"].miou() * 100.0
    out: dict = {"frames": n, "variants": {}}
    for name, cm in cms.items():
        miou = cm.miou() * 100.0
        row = {"miou": miou, "gain": miou - base, "iou": [None if np.isnan(v) else float(v) for v in cm.iou()]}
        if name in stages:
            row["ms_per_frame"] = float(np.mean(ms[name])) if ms[name] else 0.0
        if agree[name]:
            row["agreement_pct"] = 100.0 * float(np.mean(agree[name]))
        out["variants"][name] = row
    return out


def format_accuracy_table(result: dict, title: str = "") -> str:
    """Markdown table of :func:`crf_accuracy`'s result."""
    lines = [f"| {title or 'variant'} | mIoU % | gain (points) | labels = exact | CRF ms/frame |",
             "|---|---|---|---|---|"]
    for name, r in result["variants"].items():
        ag = f"{r['agreement_pct']:.2f}%" if "agreement_pct" in r else ""
        ms = f"{r['ms_per_frame']:.0f}" if "ms_per_frame" in r else "0"
        lines.append(f"| {name} | {r['miou']:.2f} | {r['gain']:+.2f} | {ag} | {ms} |")
    return "\n".join(lines)


__all__ = ["bench_crf_speed", "crf_accuracy", "format_accuracy_table", "format_speed_table", "network_logits",
           "synthetic_logits"]
