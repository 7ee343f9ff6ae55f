"""The Backend interface and device selection."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from seg_ros.errors import ConfigError


class Backend(ABC):
    """Runs the network: normalised (N, 3, h, w) float32 on ``device`` → logits (N, C, h, w) on ``device``."""

    name: str
    device: torch.device
    precision: str

    @abstractmethod
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a normalised batch; the result may be fp16 when precision is fp16."""

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision})"


def resolve_device(spec: str | torch.device) -> torch.device:
    """``auto`` → ``cuda:0`` when CUDA is available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    s = str(spec).strip().lower()
    if s == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        idx_s = s.partition(":")[2] or "0"
        if not idx_s.isdigit():
            raise ConfigError(f"device {spec!r} is not valid; use auto, cpu or cuda:N.")
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} was asked for but CUDA is not available here; use cpu or auto.")
        idx, count = int(idx_s), torch.cuda.device_count()
        if idx >= count:
            raise ConfigError(f"device {spec!r} does not exist; this machine has {count} CUDA device(s).")
        return torch.device("cuda", idx)
    raise ConfigError(f"device {spec!r} is not valid; use auto, cpu or cuda:N.")
