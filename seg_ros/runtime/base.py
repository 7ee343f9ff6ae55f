"""The Backend interface, runtime options, the model a backend runs, and device selection."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from seg_ros.core.cache_entry import default_cache_dir
from seg_ros.core.errors import ConfigError
from seg_ros.core.settings import check_fields, setting

if TYPE_CHECKING:
    from seg_ros.models.modelfile import ModelMeta
    from seg_ros.runtime.onnx_model import OnnxModel

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
"""Network precisions; each backend states which it runs where (:meth:`Backend.refusal`)."""
PRECISION_CHOICES = ("auto", *PRECISIONS)
"""What a pipeline can ask for: ``auto`` picks a precision by :mod:`seg_ros.runtime.auto_precision`'s rule."""
SHAPE_POLICIES = ("rebuild", "error")
"""What a fixed-shape engine does with an input shape it was not built for."""


class BackendUnavailableError(ConfigError):
    """A backend was asked for that this machine cannot run (library missing, no CUDA, no CUDA provider)."""


@dataclass(frozen=True)
class Refusal:
    """Why a backend cannot run a model here: ``reason`` in a few words (``backend=auto``'s log line) and
    ``error``, the one sentence its constructor raises (a BackendUnavailableError where another backend may
    run instead, a ConfigError where the setting itself is wrong for it)."""

    reason: str
    error: ConfigError


@dataclass(frozen=True)
class RuntimeOptions:
    """Settings of the accelerated backends (the node's ``runtime.*`` parameters).

    Each field's meaning and range is stated once, in its metadata (see :func:`seg_ros.core.settings.setting`),
    from which the node's parameters, the command-line options and docs/node.md are generated. ``fallback``
    walks the backends in their auto order (``runtime.AUTO_ORDER``).
    """

    threads: int = setting(0, "CPU threads of ONNX Runtime and OpenVINO; 0 = one per core.", range=(0, 256))
    cuda_graphs: bool = setting(False, "torch on CUDA: capture and replay a CUDA graph per input shape.")
    calibration: str = setting("", "int8: a bag or image folder of typical frames to calibrate on.")
    calibration_frames: int = setting(64, "int8: at most this many calibration frames.", range=(1, 1000))
    calibration_topic: str = setting("", "int8: image topic of the calibration bag; empty = the camera topic a "
                                     "dataset bag records, else its only one.")
    cache_dir: str = setting("", "ONNX exports, int8 models, TensorRT engines; empty = ~/.cache/seg_ros.")
    fallback: bool = setting(True, "A backend that cannot run here falls back (logged) instead of failing.")
    on_new_shape: str = setting("rebuild", "TensorRT input size without an engine: rebuild one or error.",
                                choices=SHAPE_POLICIES)
    max_batch: int = setting(1, "Largest batch of a TensorRT engine's optimisation profile.", range=(1, 64))
    workspace_mib: int = setting(2048, "Scratch GPU memory TensorRT may use while building an engine, MiB; smaller "
                                 "on boards that share memory with the CPU (Jetson).", range=(64, 65536))
    fuse_pre_post: bool = setting(True, "OpenVINO: normalise, upsample and take the argmax inside the compiled "
                                  "graph (faster); false = the pipeline's own steps around the network.")

    def __post_init__(self) -> None:
        check_fields(self, "runtime.")

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

    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]
    """The precisions it can run, where its device allows them (see :meth:`refusal`)."""
    auto_rank: ClassVar[int]
    """Place in ``backend=auto``'s order: the lowest rank that can run here is chosen."""
    device: torch.device
    precision: str
    channels_last: bool = True
    output_kind: str = "logits"
    note: str = ""

    @classmethod
    @abstractmethod
    def refusal(cls, device: torch.device, precision: str, is_onnx: bool,
                model_name: str = "the model") -> Refusal | None:
        """Why this backend cannot run a model (an ONNX file or not, named ``model_name`` in messages) on ``device``
        at ``precision``, from what is installed, without building anything; None when it can. The constructor
        raises the refusal's error, so a capability is checked in one place."""

    @classmethod
    @abstractmethod
    def advantage(cls, device: torch.device) -> str:
        """Why ``backend=auto`` picks this backend on ``device`` when it can run there (for the log line)."""

    @classmethod
    def precision_refusal(cls, precision: str) -> Refusal | None:
        """The refusal of a precision this backend never runs, or None."""
        if precision in cls.precisions:
            return None
        return Refusal(f"the {cls.name} backend has no {precision}", ConfigError(
            f"precision {precision} is not available with the {cls.name} backend; it runs "
            f"{', '.join(cls.precisions)}."))

    @classmethod
    def require(cls, device: torch.device, precision: str, is_onnx: bool, model_name: str = "the model") -> None:
        """Raise the refusal's error when this backend cannot run the model here (constructors call it first)."""
        refused = cls.refusal(device, precision, is_onnx, model_name)
        if refused is not None:
            raise refused.error

    @classmethod
    def can_run(cls, device: torch.device, precision: str, is_onnx: bool) -> tuple[bool, str]:
        """(True, why it is a good choice) or (False, why it cannot run here)."""
        refused = cls.refusal(device, precision, is_onnx)
        return (False, refused.reason) if refused is not None else (True, cls.advantage(device))

    @abstractmethod
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a normalised batch; the result may be fp16 when precision is fp16."""

    def segment_resized(self, frames: np.ndarray, size: tuple[int, int], confidence: bool
                        ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The whole step from resized frames to labels inside the runtime, where a backend has it.

        ``frames``: (N, h, w, 3) uint8 RGB at the inference size; ``size``: the original frames' (H, W).
        Returns (N, H, W) uint8 labels and, with ``confidence``, (N, H, W) float32 max softmax, as the pipeline's
        normalise → :meth:`infer` → upsample → argmax would give them; None when this backend has no such
        graph for these inputs (the default), and the pipeline runs those steps itself.
        """
        return None

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
