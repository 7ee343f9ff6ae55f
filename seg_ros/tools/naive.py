"""The naive baseline of ``seg-ros bench speed``: what a user would write around the fastest runtime here.

OpenCV resize, numpy normalisation, the runtime called directly (an OpenVINO compiled model or an ONNX Runtime
session on the same fp32 ONNX file the backends use, or torch eager for a model file), ``np.argmax``, a palette
lookup and ``cv2.addWeighted``; the softmax confidence only when asked for. Timed beside the Segmenter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import cv2
import numpy as np
import torch

from seg_ros.models.modelfile import load_model, resolve_model
from seg_ros.pipeline import format_resolution
from seg_ros.runtime.onnx_model import load_onnx_model
from seg_ros.tools.benchrow import BenchRow
from seg_ros.tools.timing import E2E_MODES, peaks, percentiles, reset_peaks, synchronizer, time_calls

ONNX_RUNTIMES = ("openvino", "onnxruntime")
"""The runtimes the naive baseline runs on the fp32 ONNX file."""
RUNTIMES = (*ONNX_RUNTIMES, "torch")
"""The runtimes the naive baseline can be written around."""


class NaivePipeline:
    """The straightforward pipeline around one runtime; same outputs as the Segmenter.

    ``runtime``: ``openvino`` or ``onnxruntime`` (both read ``onnx``, an fp32 ONNX file with the model's
    description) or ``torch`` (eager, from the model file ``model``).
    """

    def __init__(self, model: str | os.PathLike, resolution: tuple[int, int], device: torch.device,
                 alpha: float = 0.5, runtime: str = "torch", onnx: str | os.PathLike | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"no naive baseline around {runtime!r}; choose from {RUNTIMES}")
        if runtime != "torch" and onnx is None:
            raise ValueError(f"the {runtime} baseline needs an ONNX file")
        self.device = device
        self.runtime = runtime
        self.resolution = tuple(resolution)
        self.alpha = alpha
        if runtime == "torch":
            module, meta = load_model(resolve_model(model))
            self.module = module.to(device).eval()
        else:
            onnx_model = load_onnx_model(onnx)
            meta = onnx_model.meta
            self._run = _onnx_runner(runtime, str(onnx_model.path), onnx_model.input_name, self.resolution)
        self.mean = np.asarray(meta.mean, np.float32)
        self.std = np.asarray(meta.std, np.float32)
        self.palette = meta.label_set.palette

    def describe(self) -> str:
        """What the baseline runs, for the row's note."""
        what = {"openvino": "OpenVINO compiled model (f32)", "onnxruntime": "ONNX Runtime session on the fp32 ONNX",
                "torch": "torch eager"}[self.runtime]
        return f"{what} + cv2 resize + numpy normalise/argmax/colour + cv2.addWeighted"

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """(1, 3, h, w) float32 NCHW, normalised, from an H×W×3 uint8 RGB frame."""
        h, w = self.resolution
        img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR) if frame.shape[:2] != (h, w) else frame
        x = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1))[None]

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(1, C, h, w) float32 logits of a preprocessed input."""
        if self.runtime == "torch":
            with torch.no_grad():
                return self.module(torch.from_numpy(x).to(self.device)).cpu().numpy()
        return self._run(x)

    def segment(self, frame: np.ndarray, outputs: Iterable[str] = ("labels", "color", "overlay")
                ) -> dict[str, np.ndarray]:
        """The requested outputs (labels always) of an H×W×3 uint8 RGB frame."""
        logits = self.infer(self.preprocess(frame))[0]
        if logits.shape[1:] != frame.shape[:2]:
            logits = np.stack([cv2.resize(c, (frame.shape[1], frame.shape[0])) for c in logits])
        out = {"labels": logits.argmax(0).astype(np.uint8)}
        if "confidence" in outputs:
            e = np.exp(logits - logits.max(0, keepdims=True))
            out["confidence"] = (e.max(0) / e.sum(0)).astype(np.float32)
        if "color" in outputs or "overlay" in outputs:
            out["color"] = self.palette[out["labels"]]
        if "overlay" in outputs:
            out["overlay"] = cv2.addWeighted(frame, 1 - self.alpha, out["color"], self.alpha, 0.0)
        return out


def _onnx_runner(runtime: str, path: str, input_name: str, size: tuple[int, int]) -> Callable[[np.ndarray],
                                                                                               np.ndarray]:
    if runtime == "openvino":
        import openvino as ov

        core = ov.Core()
        net = core.read_model(path)
        net.reshape({input_name: [1, 3, *size]})
        # OpenVINO's CPU plugin defaults to bf16 where the CPU has it; the baseline is the fp32 network
        compiled = core.compile_model(net, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        return lambda x: compiled(x)[0]
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {input_name: x})[0]


def bench_naive(naive: NaivePipeline, frame: np.ndarray, frames: int = 30, warmup: int = 5) -> list[BenchRow]:
    """Time ``naive`` on ``frame``: a model row (the runtime alone), an e2e row (labels, colour, overlay) and an
    e2e+conf row (the same plus confidence), as the Segmenter's."""
    res = format_resolution(naive.resolution)
    common = dict(backend="naive", device=str(naive.device), precision="fp32", resolution=res,
                  note=naive.describe())
    sync = synchronizer(naive.device)
    x = naive.preprocess(frame)
    reset_peaks(naive.device)
    for _ in range(warmup):
        naive.infer(x)
        naive.segment(frame)
    sync()
    fps, p50, p90, p99 = percentiles(time_calls(lambda: naive.infer(x), frames, sync))
    host, gpu = peaks(naive.device)
    rows = [BenchRow("model", frames=frames, fps=fps, p50_ms=p50, p90_ms=p90, p99_ms=p99, peak_host_mb=host,
                     peak_gpu_mb=gpu, **common)]
    for mode, outputs in E2E_MODES:
        fps, p50, p90, p99 = percentiles(time_calls(lambda outputs=outputs: naive.segment(frame, outputs), frames))
        host, gpu = peaks(naive.device)
        rows.append(BenchRow(mode, frames=frames, fps=fps, p50_ms=p50, p90_ms=p90, p99_ms=p99, peak_host_mb=host,
                             peak_gpu_mb=gpu, vs_naive=1.0, e2e_over_model=p50 / rows[0].p50_ms, **common))
    return rows


__all__ = ["ONNX_RUNTIMES", "RUNTIMES", "NaivePipeline", "bench_naive"]
