"""Inference backends behind one interface.

A backend takes a normalised float batch (N, 3, h, w) on its device and
returns logits (N, C, h, w) on the same device. The Segmenter does everything
around it (resize, normalise, upsample, argmax, colour), so a new backend only
implements :meth:`Backend.infer` and registers a factory in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seg_ros.errors import ConfigError
from seg_ros.runtime.base import Backend, resolve_device
from seg_ros.runtime.torch_backend import TorchBackend

PRECISIONS = ("fp32", "fp16", "int8")

BACKENDS: dict[str, Callable[[nn.Module, torch.device, str], Backend]] = {
    "torch": TorchBackend,
}


def create_backend(name: str, model: nn.Module, device: torch.device, precision: str) -> Backend:
    """Wrap ``model`` in backend ``name`` (``auto`` picks the best one available)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if name == "auto":
        name = "torch"
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}.")
    return BACKENDS[name](model, device, precision)


__all__ = ["BACKENDS", "PRECISIONS", "Backend", "TorchBackend", "create_backend", "resolve_device"]
