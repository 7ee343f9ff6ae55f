"""The Backend interface, runtime options, the model a backend runs, and device selection."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from seg_ros.core.cache_entry import default_cache_dir
from seg_ros.core.errors import ConfigError

if TYPE_CHECKING:
    from seg_ros.models.modelfile import ModelMeta
    from seg_ros.runtime.onnx_model import OnnxModel

SHAPE_POLICIES = ("rebuild", "error")


class BackendUnavailableError(ConfigError):
    """A backend was asked for that this machine cannot run (library missing, no CUDA, no CUDA provider)."""


@dataclass(frozen=True)
class RuntimeOptions:
    """Settings of the accelerated backends (the node's ``runtime.*`` parameters).

    ``threads``: intra-op threads of ONNX Runtime on the CPU, 0 = its default (one per core).
    ``cuda_graphs``: torch backend on CUDA: capture one CUDA graph per input shape and replay it.
    ``calibration``: a bag or an image folder whose frames calibrate ``precision=int8``.
    ``calibration_frames``: at most this many frames are used (evenly spaced over the source).
    ``calibration_topic``: image topic of a calibration bag; empty = its only image topic.
    ``cache_dir``: exported ONNX files, int8 models and TensorRT engines; empty = :func:`default_cache_dir`.
    ``fallback``: a backend that cannot run here falls back to the next one (tensorrt → onnxruntime →
    torch) with a log line instead of raising.
    ``on_new_shape``: a fixed-shape engine given another input shape: ``rebuild`` an engine for it, or
    ``error``.
    ``max_batch``: the largest batch a TensorRT engine's optimisation profile accepts.
    """

    threads: int = 0
    cuda_graphs: bool = False
    calibration: str = ""
    calibration_frames: int = 64
    calibration_topic: str = ""
    cache_dir: str = ""
    fallback: bool = True
    on_new_shape: str = "rebuild"
    max_batch: int = 1

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ConfigError(f"runtime threads must be 0 (automatic) or positive, not {self.threads}.")
        if self.calibration_frames < 1:
            raise ConfigError(f"calibration_frames must be at least 1, not {self.calibration_frames}.")
        if self.on_new_shape not in SHAPE_POLICIES:
            raise ConfigError(f"on_new_shape must be one of {', '.join(SHAPE_POLICIES)}, not {self.on_new_shape!r}.")
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be at least 1, not {self.max_batch}.")

    def cache_root(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


@dataclass
class ModelSource:
    """The network a backend runs: a seg_ros model file (a torch module) or a bring-your-own ONNX file.

    ``input_size``: the pipeline's inference resolution (h, w), which fixed-shape engines are built for.
    """

    path: Path
    meta: ModelMeta
    input_size: tuple[int, int]
    module: nn.Module | None = None
    onnx: OnnxModel | None = None

    @property
    def is_onnx(self) -> bool:
        return self.onnx is not None

    def onnx_file(self, options: RuntimeOptions) -> OnnxModel:
        """The ONNX form of the model: the file itself, or an export of the model file (cached, dynamic H×W)."""
        if self.onnx is not None:
            return self.onnx
        from seg_ros.runtime.export import cached_export

        return cached_export(self.path, options.cache_root())


class Backend(ABC):
    """Runs the network: normalised (N, 3, h, w) float32 on ``device`` → logits (N, C, h', w') on ``device``.

    ``channels_last``: the backend reads a channels-last tensor without a copy (torch); otherwise the
    pipeline hands it a contiguous NCHW tensor. ``output_kind``: ``logits`` (N, C, h', w'), or ``labels``
    (N, h', w') integer class ids for models that end in an argmax. h', w' may differ from h, w (the
    pipeline upsamples). ``note``: why this backend was chosen, when ``auto`` or a fallback chose it.
    """

    name: str
    device: torch.device
    precision: str
    channels_last: bool = True
    output_kind: str = "logits"
    note: str = ""

    @abstractmethod
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a normalised batch; the result may be fp16 when precision is fp16."""

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision})" + (f" [{self.note}]" if self.note else "")


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
