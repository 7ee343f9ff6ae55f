"""PyTorch eager backend: CPU fp32, CUDA fp32/fp16, channels-last memory layout."""

from __future__ import annotations

import torch
from torch import nn

from seg_ros.errors import ConfigError
from seg_ros.runtime.base import Backend


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "fp32"):
        if precision == "int8":
            raise ConfigError(
                "precision int8 needs the onnxruntime or tensorrt backend; the torch backend runs fp32 or fp16."
            )
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA device; use fp32 on the CPU.")
        self.device = device
        self.precision = precision
        dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to(device=device, dtype=dtype, memory_format=torch.channels_last)
        self._dtype = dtype

    @torch.inference_mode()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(dtype=self._dtype, memory_format=torch.channels_last))
