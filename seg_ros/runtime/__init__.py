"""Inference backends behind one interface.

A backend takes a normalised float batch (N, 3, h, w) on its device and
returns logits (N, C, h', w') on the same device (or class ids, for ONNX models
that end in an argmax). The Segmenter does everything around it (resize,
normalise, upsample, argmax, colour), so a new backend only implements
:meth:`Backend.infer` and registers a factory in ``BACKENDS``.

``backend=auto`` picks the first of tensorrt → onnxruntime → torch that can run
the model on the device at the precision, and records why in ``Backend.note``
(shown by ``describe()``, logged once). A backend named explicitly that cannot
run here (library missing, no CUDA, no CUDA provider) falls back the same way
with a warning when ``RuntimeOptions.fallback`` is set, and raises otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from seg_ros.core.cache_entry import CacheDirError
from seg_ros.core.errors import ConfigError
from seg_ros.runtime.base import (
    Backend,
    BackendUnavailableError,
    ModelSource,
    RuntimeOptions,
    default_cache_dir,
    resolve_device,
)
from seg_ros.runtime.ort_backend import OrtBackend
from seg_ros.runtime.tensorrt_backend import TensorRTBackend
from seg_ros.runtime.torch_backend import TorchBackend

log = logging.getLogger("seg_ros.runtime")

PRECISIONS = ("fp32", "fp16", "int8")
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")

BACKENDS: dict[str, Callable[[ModelSource, torch.device, str, RuntimeOptions], Backend]] = {
    "torch": TorchBackend,
    "onnxruntime": OrtBackend,
    "tensorrt": TensorRTBackend,
}


def can_run(name: str, device: torch.device, precision: str, is_onnx: bool) -> tuple[bool, str]:
    """Whether backend ``name`` can run here without building anything: (yes, why) or (no, why not)."""
    if name == "tensorrt":
        from seg_ros.runtime.tensorrt_backend import tensorrt_status

        if device.type != "cuda":
            return False, f"TensorRT needs a CUDA device, not {device}"
        return tensorrt_status()
    if name == "onnxruntime":
        try:
            from seg_ros.runtime.ort_backend import import_onnxruntime

            ort = import_onnxruntime()
        except BackendUnavailableError:
            return False, "onnxruntime is not installed"
        if precision == "fp16":
            return False, "the onnxruntime backend has no fp16"
        if device.type == "cuda":
            if precision == "int8":
                return False, "onnxruntime int8 runs on the CPU only"
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return False, "onnxruntime has no CUDA provider here"
            return True, "ONNX Runtime's CUDA provider is available"
        return True, "ONNX Runtime is the fastest CPU backend"
    if name == "torch":
        if is_onnx:
            return False, "torch cannot run an ONNX file"
        if precision == "int8":
            return False, "torch has no int8"
        if precision == "fp16" and device.type != "cuda":
            return False, "torch fp16 needs CUDA"
        return True, "torch runs every model file"
    return False, f"unknown backend {name!r}"


def choose_backend(device: torch.device, precision: str, is_onnx: bool,
                   exclude: tuple[str, ...] = ()) -> tuple[str, str]:
    """The first of tensorrt → onnxruntime → torch that can run here, and why; ConfigError if none can."""
    reasons = []
    for name in AUTO_ORDER:
        if name in exclude:
            continue
        ok, why = can_run(name, device, precision, is_onnx)
        if ok:
            skipped = "; ".join(reasons)
            return name, f"auto: {why}" + (f" ({skipped})" if skipped else "")
        reasons.append(f"not {name}: {why}")
    raise BackendUnavailableError(f"no backend can run this model at {precision} on {device} "
                                  f"({'; '.join(reasons)}).")


def create_backend(name: str, model: ModelSource | nn.Module, device: torch.device, precision: str,
                   options: RuntimeOptions | None = None) -> Backend:
    """Wrap ``model`` in backend ``name`` (``auto`` picks the best one available, see the module doc)."""
    options = options or RuntimeOptions()
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if name != "auto" and name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}.")
    if isinstance(model, nn.Module):
        if name not in ("torch", "auto"):
            raise ConfigError(f"backend {name} needs a ModelSource (a model file or an ONNX file), not a module.")
        return TorchBackend(model, device, precision, options)
    is_onnx = model.is_onnx
    note = ""
    if name == "auto":
        name, note = choose_backend(device, precision, is_onnx)
        log.info("backend %s chosen for %s on %s (%s)", name, model.path.name, device, note)
    tried: list[str] = []
    while True:
        try:
            backend = BACKENDS[name](model, device, precision, options)
            backend.note = note
            return backend
        except BackendUnavailableError as e:
            tried.append(name)
            if not options.fallback:
                raise
            try:
                alt, why = choose_backend(device, precision, is_onnx, exclude=tuple(tried))
            except BackendUnavailableError:
                raise e from None
            note = f"fallback from {name}: {str(e).rstrip('.')}"
            log.warning("%s; falling back to %s (%s)", str(e).rstrip("."), alt, why)
            name = alt


__all__ = ["AUTO_ORDER", "BACKENDS", "PRECISIONS", "Backend", "BackendUnavailableError", "CacheDirError", "ModelSource",
           "OrtBackend", "RuntimeOptions", "TensorRTBackend", "TorchBackend", "can_run", "choose_backend",
           "create_backend", "default_cache_dir", "resolve_device"]
