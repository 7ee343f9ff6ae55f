"""Building the TensorRT engine the node will load, ahead of time (``seg-ros export --tensorrt``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from seg_ros.pipeline import Segmenter
from seg_ros.runtime import RuntimeOptions


def build_tensorrt_engine(model: str, resolution: tuple[int, int] | None, device: str, precision: str,
                          runtime: RuntimeOptions) -> Path:
    """Build (or load and verify) the engine cache entry for ``model``; returns the entry's path.

    Args:
        model: a model file, shipped model name or ``.onnx`` file.
        resolution: the (H, W) input size in pixels the engine is built for; None: the model's input size.
        device: the CUDA device (``auto`` resolves to ``cuda:0`` when CUDA is available).
        precision: ``fp32``, ``fp16`` or ``int8`` (int8 calibrates on ``runtime.calibration``).
        runtime: cache folder, calibration, max batch; fallback to another backend is never taken.
    """
    from seg_ros.runtime.tensorrt_backend import TensorRTBackend, import_tensorrt

    import_tensorrt()
    seg = Segmenter(model, resolution=resolution, keep_aspect=False, device=device, precision=precision,
                    backend="tensorrt", runtime=replace(runtime, fallback=False))
    backend = seg.backend
    assert isinstance(backend, TensorRTBackend)  # no fallback: it is TensorRT or an error was raised
    # The backend builds its first engine at construction, for (max batch, 3, model input size).
    shape = (backend.options.max_batch, 3, *backend.source.input_size)
    return Path(backend.cache.entry(backend.fingerprint(shape)))
