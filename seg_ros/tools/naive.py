"""The naive baseline of ``seg-ros bench speed``: the straightforward pipeline, timed beside the Segmenter."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import torch

from seg_ros.models.modelfile import load_model, resolve_model
from seg_ros.pipeline import format_resolution
from seg_ros.tools.benchrow import BenchRow
from seg_ros.tools.timing import peaks, percentiles, reset_peaks, synchronizer


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
    """Time ``naive`` on ``frame``: a model row (forward pass) and an e2e row (every output), as the Segmenter's."""
    res = format_resolution(naive.resolution)
    common = dict(backend="naive", device=str(naive.device), precision="fp32", resolution=res,
                  note="torch eager NCHW + OpenCV resize + numpy argmax/softmax/colour")
    sync = synchronizer(naive.device)
    x = naive.preprocess(frame)
    reset_peaks(naive.device)
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
    fps, p50, p99 = percentiles(samples)
    host, gpu = peaks(naive.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                     **common)]
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        naive.segment(frame)
        samples.append(time.perf_counter() - t0)
    fps, p50, p99 = percentiles(samples)
    host, gpu = peaks(naive.device)
    rows.append(BenchRow("e2e", frames=frames, fps=fps, p50_ms=p50, p99_ms=p99, peak_host_mb=host, peak_gpu_mb=gpu,
                         vs_naive=1.0, **common))
    return rows


__all__ = ["NaivePipeline", "bench_naive"]
