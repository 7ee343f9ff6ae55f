"""ONNX Runtime backend: CPU execution provider by default, CUDA provider on ``cuda:N`` where it exists.

fp32 everywhere; ``int8`` on the CPU through static QDQ quantization calibrated on frames of a bag or an
image folder (``runtime.calibration``, see :mod:`seg_ros.runtime.quantize`). On the CPU the input is a
contiguous NCHW float32 tensor whose memory ONNX Runtime reads directly and the output comes back as a
numpy array wrapped without a copy. On CUDA, input and output stay on the device (I/O binding on the torch
tensors' memory).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from seg_ros.core.errors import ConfigError
from seg_ros.runtime.base import Backend, BackendUnavailableError, ModelSource, Refusal, RuntimeOptions
from seg_ros.runtime.onnx_model import OnnxModel, OnnxModelError

log = logging.getLogger("seg_ros.runtime")

_TORCH_DTYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16, "tensor(int64)": torch.int64,
                 "tensor(int32)": torch.int32, "tensor(uint8)": torch.uint8, "tensor(int8)": torch.int8}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailableError("the onnxruntime backend needs the onnxruntime package "
                                      "(pip install onnxruntime, or onnxruntime-gpu for CUDA).") from e
    return onnxruntime


def ort_cuda_available() -> bool:
    try:
        return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
    except BackendUnavailableError:
        return False


class OrtBackend(Backend):
    name = "onnxruntime"
    precisions = ("fp32", "int8")
    auto_rank = 2
    channels_last = False

    @classmethod
    def refusal(cls, device: torch.device, precision: str, is_onnx: bool,
                model_name: str = "the model") -> Refusal | None:
        try:
            ort = import_onnxruntime()
        except BackendUnavailableError as e:
            return Refusal("onnxruntime is not installed", e)
        if precision == "fp16":
            return Refusal("the onnxruntime backend has no fp16", ConfigError(
                "precision fp16 is not available with the onnxruntime backend; use tensorrt or torch on CUDA, or "
                "fp32 / int8."))
        if device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return Refusal("onnxruntime has no CUDA provider here", BackendUnavailableError(
                f"the onnxruntime backend on {device} needs ONNX Runtime's CUDA provider (pip install "
                f"onnxruntime-gpu); this one has only {', '.join(ort.get_available_providers())}."))
        if precision == "int8" and device.type == "cuda":
            return Refusal("onnxruntime int8 runs on the CPU only", ConfigError(
                "int8 through onnxruntime runs on the CPU; on CUDA use the tensorrt backend for int8."))
        return cls.precision_refusal(precision)

    @classmethod
    def advantage(cls, device: torch.device) -> str:
        if device.type == "cuda":
            return "ONNX Runtime's CUDA provider is available"
        return "ONNX Runtime is the fastest CPU backend"

    def __init__(self, source: ModelSource, device: torch.device, precision: str = "fp32",
                 options: RuntimeOptions | None = None):
        self.require(device, precision, source.is_onnx, source.path.name)
        ort = import_onnxruntime()
        options = options or RuntimeOptions()
        cuda = device.type == "cuda"
        if precision == "int8":
            from seg_ros.runtime.quantize import require_calibration

            require_calibration(options)  # before any export
        self.device, self.precision = device, precision
        self.model: OnnxModel = source.onnx_file(options)
        self.output_kind = self.model.output_kind
        path = self.model.path
        if precision == "int8":
            from seg_ros.runtime.quantize import calibrated_int8

            path = calibrated_int8(self.model, source, options)
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # Idle intra-op threads would otherwise spin after each run and take the CPU from the pipeline's own
        # postprocessing (measured: 15 -> 7 ms at 360x640 on 2 cores, inference unchanged).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = ["CPUExecutionProvider"]
        if cuda:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as e:
            raise OnnxModelError(f"ONNX Runtime cannot load {path} ({str(e).strip().splitlines()[0][:200]}).") from e
        self.threads = options.threads
        self._out_type = _TORCH_DTYPES.get(
            next(o.type for o in self.session.get_outputs() if o.name == self.model.output_name), torch.float32)
        self._cuda_out: dict[tuple[int, ...], torch.Tensor] = {}

    def describe(self) -> str:
        threads = f", {self.threads} threads" if self.threads else ""
        return super().describe() + f" ({self.session.get_providers()[0]}{threads})"

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        self.model.check_input_shape(tuple(x.shape))
        fb = self.model.fixed_batch
        if fb is not None and x.shape[0] != fb:
            if fb != 1:
                raise ConfigError(f"ONNX model {self.model.path.name} takes batches of exactly {fb}, not {x.shape[0]}.")
            return torch.cat([self.infer(x[i:i + 1]) for i in range(x.shape[0])])
        if self.device.type == "cuda":
            return self._infer_cuda(x)
        arr = x.detach().contiguous().numpy()
        out = self.session.run([self.model.output_name], {self.model.input_name: arr})[0]
        return torch.from_numpy(out)

    def _infer_cuda(self, x: torch.Tensor) -> torch.Tensor:
        """Device-to-device: ONNX Runtime reads ``x``'s memory and writes into a reused torch tensor.

        The returned tensor is overwritten by the next call with the same input shape.
        """
        x = x.detach().to(torch.float32).contiguous()
        idx = self.device.index or 0
        torch.cuda.current_stream(self.device).synchronize()  # x was written by torch kernels
        io = self.session.io_binding()
        io.bind_input(self.model.input_name, "cuda", idx, np.float32, list(x.shape), x.data_ptr())
        key = tuple(x.shape)
        out = self._cuda_out.get(key)
        if out is None:  # first call for this shape: let ONNX Runtime allocate, learn the output shape
            io.bind_output(self.model.output_name, "cuda", idx)
            self.session.run_with_iobinding(io)
            first = torch.from_numpy(io.copy_outputs_to_cpu()[0])
            out = self._cuda_out[key] = torch.empty(first.shape, dtype=self._out_type, device=self.device)
            out.copy_(first.to(self._out_type))
            return out
        np_type = torch.empty(0, dtype=out.dtype).numpy().dtype
        io.bind_output(self.model.output_name, "cuda", idx, np_type, list(out.shape), out.data_ptr())
        self.session.run_with_iobinding(io)
        io.synchronize_outputs()
        return out
