"""Inference backends behind one interface.

A backend takes a normalised float batch (N, 3, h, w) on its device and
returns logits (N, C, h', w') on the same device (or class ids, for ONNX models
that end in an argmax). The Segmenter does everything around it (resize,
normalise, upsample, argmax, colour), so a new backend only implements
:meth:`Backend.infer`, states where it can run (:meth:`Backend.refusal`) and its
place in the auto order, and is listed in ``BACKENDS``.

``backend=auto`` picks the first of :data:`AUTO_ORDER` (tensorrt → openvino → onnxruntime → torch) that can
run the model on the device at the precision, and records why in ``Backend.note``
(shown by ``describe()``, logged once). A backend named explicitly that cannot
run here (library missing, no CUDA, no CUDA provider) falls back the same way
with a warning when ``RuntimeOptions.fallback`` is set, and raises otherwise.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from seg_ros.core.cache_entry import CacheDirError
from seg_ros.core.errors import ConfigError
from seg_ros.runtime.base import (
    PRECISION_CHOICES,
    PRECISIONS,
    SHAPE_POLICIES,
    Backend,
    BackendUnavailableError,
    ModelSource,
    Refusal,
    RuntimeOptions,
    default_cache_dir,
    resolve_device,
)
from seg_ros.runtime.openvino_backend import OpenvinoBackend
from seg_ros.runtime.ort_backend import OrtBackend
from seg_ros.runtime.tensorrt_backend import TensorRTBackend
from seg_ros.runtime.torch_backend import TorchBackend

log = logging.getLogger("seg_ros.runtime")

BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (TorchBackend, OrtBackend, OpenvinoBackend, TensorRTBackend)}
"""The backend registry: name → class. A new backend subclasses :class:`Backend` (``name``, ``auto_rank``,
``refusal``, ``advantage``, ``infer``) and is listed here; the rest below and the ``backend`` parameter's
choices follow."""
AUTO_ORDER: tuple[str, ...] = tuple(sorted(BACKENDS, key=lambda name: BACKENDS[name].auto_rank))
"""The order ``backend=auto`` tries them in."""
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)
"""What the ``backend`` setting accepts."""


def can_run(name: str, device: torch.device, precision: str, is_onnx: bool) -> tuple[bool, str]:
    """Whether backend ``name`` can run here without building anything: (yes, why) or (no, why not)."""
    if name not in BACKENDS:
        return False, f"unknown backend {name!r}"
    return BACKENDS[name].can_run(device, precision, is_onnx)


def choose_backend(device: torch.device, precision: str, is_onnx: bool,
                   exclude: tuple[str, ...] = ()) -> tuple[str, str]:
    """The first backend of :data:`AUTO_ORDER` that can run here, and why; ConfigError if none can."""
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
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, not {precision!r}.")
    if precision == "auto":
        fp32 = create_backend(name, model, device, "fp32", options)
        if isinstance(model, nn.Module):  # no model file to check frames against: fp32
            return fp32
        from seg_ros.runtime.auto_precision import choose_precision

        return choose_precision(fp32, model, lambda p: BACKENDS[fp32.name](model, device, p, options), options)
    if name not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(BACKEND_CHOICES)}.")
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
            backend.note = "; ".join(n for n in (note, backend.note) if n)
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


__all__ = ["AUTO_ORDER", "BACKENDS", "BACKEND_CHOICES", "PRECISIONS", "PRECISION_CHOICES", "SHAPE_POLICIES",
           "Backend", "BackendUnavailableError", "CacheDirError", "ModelSource", "OpenvinoBackend", "OrtBackend",
           "Refusal", "RuntimeOptions", "TensorRTBackend", "TorchBackend", "can_run", "choose_backend",
           "create_backend", "default_cache_dir", "resolve_device"]
