"""PyTorch eager backend: CPU fp32, CUDA fp32/fp16, channels-last memory layout, optional CUDA graphs."""

from __future__ import annotations

import logging

import torch
from torch import nn

from seg_ros.core.errors import ConfigError
from seg_ros.runtime.base import Backend, ModelSource, Refusal, RuntimeOptions

log = logging.getLogger("seg_ros.runtime")

MAX_GRAPHS = 4
"""CUDA graphs kept (one per input shape); the oldest is dropped beyond this."""
WARMUP_ITERS = 3
"""Eager iterations on a side stream before capture (cuDNN algorithm choice, lazy allocations)."""


class TorchBackend(Backend):
    """The network as a torch module on ``device``.

    With ``cuda_graphs`` on a CUDA device, the first call for each input shape warms the network up on a
    side stream, then captures one forward pass into a CUDA graph reading a static input buffer; later calls
    copy the input into that buffer and replay the graph, which removes the per-kernel launch cost. The
    returned logits are then the graph's static output buffer, overwritten by the next call with that shape
    (the Segmenter consumes them before calling again).
    """

    name = "torch"
    precisions = ("fp32", "fp16")
    auto_rank = 3

    @classmethod
    def refusal(cls, device: torch.device, precision: str, is_onnx: bool,
                model_name: str = "the model") -> Refusal | None:
        if is_onnx:
            return Refusal("torch cannot run an ONNX file", ConfigError(
                f"the torch backend cannot run the ONNX file {model_name}; use backend onnxruntime, tensorrt or "
                "auto."))
        if precision == "int8":
            return Refusal("torch has no int8", ConfigError(
                "precision int8 needs the onnxruntime or tensorrt backend; the torch backend runs fp32 or fp16."))
        if precision == "fp16" and device.type != "cuda":
            return Refusal("torch fp16 needs CUDA", ConfigError(
                "precision fp16 needs a CUDA device; use fp32 on the CPU."))
        return cls.precision_refusal(precision)

    @classmethod
    def advantage(cls, device: torch.device) -> str:
        return "torch runs every model file"

    def __init__(self, model: nn.Module | ModelSource, device: torch.device, precision: str = "fp32",
                 options: RuntimeOptions | None = None):
        is_onnx = isinstance(model, ModelSource) and model.module is None
        self.require(device, precision, is_onnx, model.path.name if isinstance(model, ModelSource) else "the model")
        if isinstance(model, ModelSource):
            model = model.module
        options = options or RuntimeOptions()
        self.device = device
        self.precision = precision
        dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to(device=device, dtype=dtype, memory_format=torch.channels_last)
        self._dtype = dtype
        self.cuda_graphs = bool(options.cuda_graphs) and device.type == "cuda"
        if options.cuda_graphs and not self.cuda_graphs:
            log.info("cuda_graphs is ignored on %s (CUDA graphs need a CUDA device)", device)
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def describe(self) -> str:
        return super().describe() + (" with CUDA graphs" if self.cuda_graphs else "")

    @property
    def captured_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Input shapes (N, C, H, W) with a captured CUDA graph, oldest first (at most :data:`MAX_GRAPHS`)."""
        return tuple(self._graphs)

    @torch.inference_mode()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(dtype=self._dtype, memory_format=torch.channels_last)
        if self.cuda_graphs:
            return self._replay(x)
        return self.model(x)

    def _replay(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(x)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out

    def _capture(self, x: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        if len(self._graphs) >= MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))  # oldest shape; its memory pool goes with it
        static_in = torch.empty_like(x, memory_format=torch.channels_last)
        static_in.copy_(x)
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_ITERS):
                self.model(static_in)
        current.wait_stream(side)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.model(static_in)
        torch.cuda.synchronize(self.device)
        entry = (graph, static_in, static_out)
        self._graphs[tuple(x.shape)] = entry
        log.info("captured a CUDA graph for input %s", "x".join(map(str, x.shape)))
        return entry
