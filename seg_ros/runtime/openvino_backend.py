"""OpenVINO backend: the network on the CPU through OpenVINO, fp32, bf16 or int8.

The ONNX form of the model (the file itself, or the cached export of a model file) is read by OpenVINO,
reshaped to the batch's static (N, 3, h, w) and compiled for the CPU with the latency hint, one compiled model
per input shape (static shapes let OpenVINO pick its fastest kernels) for the first :data:`MAX_STATIC_SHAPES`
shapes; any further shape (frames of ever new aspect ratios under ``keep_aspect``, hostile or not) runs on one
model compiled with dynamic height, width and batch, so memory and the cache stay bounded.

``bf16`` runs where the CPU has native bfloat16 (AMX or AVX-512 BF16: OpenVINO lists ``BF16`` among its
optimisation capabilities); elsewhere it runs fp32 and says so in one log line. ``int8`` compiles the same
QDQ model the onnxruntime backend runs (static
quantization calibrated on ``runtime.calibration``'s frames, :mod:`seg_ros.runtime.quantize`), which OpenVINO
executes with its int8 kernels (VNNI / AMX where the CPU has them).

Compiled models are cached under ``runtime.cache_dir``/openvino as verified entries
(:mod:`seg_ros.core.cache_entry`) keyed by the ONNX file's SHA-256, the OpenVINO version, the CPU's name and
capabilities, the precision, the input shape and the thread count, so a second start imports the compiled model
instead of compiling it; a stale or damaged entry is logged in one line and rebuilt.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import numpy as np
import torch

from seg_ros.core.cache_entry import CacheEntry, sha256_file, sha256_json
from seg_ros.core.errors import ConfigError
from seg_ros.core.preprocess import POSTPROCESS_BAND_BYTES
from seg_ros.runtime.base import Backend, BackendUnavailableError, ModelSource, Refusal, RuntimeOptions
from seg_ros.runtime.onnx_model import OnnxModel, OnnxModelError

log = logging.getLogger("seg_ros.runtime")

MAX_STATIC_SHAPES = 4
"""Input shapes that get a compiled model of their own; the others share one dynamic-shape model."""
MAX_FUSED_GRAPHS = 4
"""Fused graphs (:mod:`seg_ros.runtime.openvino_graph`, one per inference size, frame size and confidence on/off;
batches run through them a frame at a time) compiled at most; further combinations run the network alone with
the pipeline's own steps around it."""

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
"""seg_ros precision → OpenVINO's ``INFERENCE_PRECISION_HINT`` (int8: the QDQ model's quantized layers run int8,
the rest fp32)."""


def import_openvino():
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailableError("the openvino backend needs the openvino package (pip install openvino).") from e
    return openvino


def cpu_description(core: Any) -> dict[str, Any]:
    """The CPU as OpenVINO sees it: its name and optimisation capabilities (e.g. FP32, BF16, INT8)."""
    return {"name": str(core.get_property("CPU", "FULL_DEVICE_NAME")),
            "capabilities": sorted(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))}


class OpenvinoBackend(Backend):
    name = "openvino"
    precisions = tuple(PRECISION_HINTS)
    auto_rank = 1
    channels_last = False

    @classmethod
    def refusal(cls, device: torch.device, precision: str, is_onnx: bool,
                model_name: str = "the model") -> Refusal | None:
        try:
            import_openvino()
        except BackendUnavailableError as e:
            return Refusal("openvino is not installed", e)
        if device.type != "cpu":
            return Refusal(f"the openvino backend runs on the CPU, not {device}", BackendUnavailableError(
                f"the openvino backend runs on the CPU, not on {device}; use tensorrt, onnxruntime or torch there."))
        return cls.precision_refusal(precision)

    @classmethod
    def advantage(cls, device: torch.device) -> str:
        return "OpenVINO is the fastest CPU runtime"

    def __init__(self, source: ModelSource, device: torch.device, precision: str = "fp32",
                 options: RuntimeOptions | None = None):
        self.require(device, precision, source.is_onnx, source.path.name)
        ov = import_openvino()
        self.options = options = options or RuntimeOptions()
        self.device = device
        self.core = ov.Core()
        self.cpu = cpu_description(self.core)
        if precision == "bf16" and "BF16" not in self.cpu["capabilities"]:
            log.info("bf16 asked for but this CPU (%s) has no native bfloat16 (AMX or AVX-512 BF16); running fp32",
                     self.cpu["name"])
            self.note = "no native bf16 on this CPU: fp32"
            precision = "fp32"
        self.precision = precision
        if precision == "int8":
            from seg_ros.runtime.quantize import require_calibration

            require_calibration(options)  # before any export
        self.model: OnnxModel = source.onnx_file(options)
        self.output_kind = self.model.output_kind
        self.network = self.model.path
        self.network_sha256 = self.model.sha256
        if precision == "int8":
            from seg_ros.runtime.quantize import calibrated_int8

            self.network = calibrated_int8(self.model, source, options)
            self.network_sha256 = sha256_file(self.network)[1]
        self.version = ov.get_version()
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                       "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
        if options.threads:
            self.config["INFERENCE_NUM_THREADS"] = options.threads
        self.mean, self.std = source.meta.mean, source.meta.std
        self._requests: dict[tuple[int, ...], Any] = {}
        self._fused_requests: dict[tuple[Any, ...], Any] = {}
        self.fused_refusal = ""
        """Why the fused graph could not be compiled for this network (then never tried again); empty if it could."""
        self._dynamic_request: Any = None
        self._dynamic_shape = (-1, 3, *(self.model.fixed_size or (-1, -1)))
        self.compile_seconds: dict[tuple[Any, ...], float] = {}
        """Seconds spent compiling (0.0: imported from the cache) per input shape (the fused graphs: per
        :attr:`fused_graphs` key), for reports."""
        h, w = self.model.fixed_size or source.input_size
        self._request((self.model.fixed_batch or 1, 3, h, w))

    def describe(self) -> str:
        return super().describe() + f" (OpenVINO {self.version.split('-')[0]}, {self.cpu['name']})"

    @property
    def compiled_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The (N, 3, h, w) input shapes compiled for so far (static models), in order."""
        return tuple(self._requests)

    @property
    def dynamic_compiled(self) -> bool:
        """Whether a shape beyond the first :data:`MAX_STATIC_SHAPES` made it compile the dynamic-shape model."""
        return self._dynamic_request is not None

    @property
    def fused_graphs(self) -> tuple[tuple[Any, ...], ...]:
        """The fused graphs compiled so far: ((1, h, w, 3) input shape, frame size, confidence) each, in order."""
        return tuple(self._fused_requests)

    def cache_entry(self, shape: tuple[int, ...], fused: dict[str, Any] | None = None) -> CacheEntry:
        """The cache entry of the compiled model for input ``shape`` (not read or made here); ``fused``: the
        fused graph's parameters, None for the network alone."""
        source = {"onnx_sha256": self.network_sha256, "openvino": self.version, "cpu": self.cpu,
                  "precision": self.precision, "input_shape": list(shape), "config": self.config}
        kind = ""
        if fused is not None:
            source["fused"] = fused
            kind = "-fused"
        name = f"{self.network.stem}-{'x'.join(map(str, shape))}{kind}-{sha256_json(source)[:16]}.blob"
        return CacheEntry.beside(self.options.cache_root() / "openvino" / name, source, "OpenVINO compiled model")

    def segment_resized(self, frames: np.ndarray, size: tuple[int, int], confidence: bool
                        ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Labels and confidence from the fused graph (:mod:`seg_ros.runtime.openvino_graph`), or None where it
        does not apply: ``runtime.fuse_pre_post`` off, a model that outputs labels, a batch the ONNX file cannot
        take, upsampled logits over the postprocessing memory bound, or more than :data:`MAX_FUSED_GRAPHS`
        combinations."""
        n, h, w, _ = frames.shape
        if n > 1:  # one frame at a time: as fast per frame on the CPU, and one graph serves any batch size
            parts = [self.segment_resized(frames[i:i + 1], size, confidence) for i in range(n)]
            if any(p is None for p in parts):
                return None
            labels = np.concatenate([p[0] for p in parts])  # type: ignore[index]
            return labels, np.concatenate([p[1] for p in parts]) if confidence else None  # type: ignore[index,misc]
        key = (tuple(frames.shape), tuple(size), bool(confidence))
        req = self._fused_requests.get(key)
        if req is None:
            classes = self.model.meta.label_set.num_classes
            if (not self.options.fuse_pre_post or self.fused_refusal or self.output_kind != "logits"
                    or self.model.fixed_batch not in (None, n)
                    or n * classes * size[0] * size[1] * 4 > POSTPROCESS_BAND_BYTES
                    or len(self._fused_requests) >= MAX_FUSED_GRAPHS):
                return None
            self.model.check_input_shape((n, 3, h, w))
            fused = {"output_size": list(size), "confidence": bool(confidence),
                     "mean": list(self.mean), "std": list(self.std)}
            try:
                req = self._compiled((n, 3, h, w), fused, key).create_infer_request()
            except OnnxModelError as e:
                log.warning("%s; running the pipeline's own steps around the network instead", str(e).rstrip("."))
                self.fused_refusal = str(e)
                return None
            self._fused_requests[key] = req
        req.infer({0: frames}, share_inputs=True)
        # Copies: OpenVINO reuses its output buffers on the next call, and results outlive it (the node's queue).
        labels = req.get_output_tensor(0).data.copy()
        return labels, req.get_output_tensor(1).data.copy() if confidence else None

    def _request(self, shape: tuple[int, ...]) -> Any:
        req = self._requests.get(shape)
        if req is not None:
            return req
        if len(self._requests) < MAX_STATIC_SHAPES:
            req = self._requests[shape] = self._compiled(shape).create_infer_request()
            return req
        if self._dynamic_request is None:
            self._dynamic_request = self._compiled(self._dynamic_shape).create_infer_request()
        return self._dynamic_request

    def _compiled(self, shape: tuple[int, ...], fused: dict[str, Any] | None = None,
                  key: tuple[Any, ...] | None = None) -> Any:
        """The compiled model for ``shape`` (the fused graph with ``fused``'s parameters, else the network alone):
        imported from the cache, or compiled now and stored there."""
        entry = self.cache_entry(shape, fused)
        key = key or shape
        blob = entry.load_bytes()
        if blob is not None:
            try:
                compiled = self.core.import_model(io.BytesIO(blob), "CPU", self.config)
                self.compile_seconds[key] = 0.0
                return compiled
            except RuntimeError as e:
                entry.invalidate(f"OpenVINO cannot import it ({str(e).strip().splitlines()[0][:200]})")
        t0 = time.perf_counter()
        compiled = self._compile(shape, fused)
        self.compile_seconds[key] = time.perf_counter() - t0
        log.info("compiled %s%s for OpenVINO at %s (%s) in %.1f s; cached in %s", self.model.path.name,
                 " with the pipeline's steps" if fused else "", "x".join(map(str, shape)), self.precision,
                 self.compile_seconds[key], entry.content.parent)
        exported = io.BytesIO()
        compiled.export_model(exported)
        entry.store_bytes(exported.getvalue(), build_seconds=round(self.compile_seconds[key], 3))
        return compiled

    def _compile(self, shape: tuple[int, ...], fused: dict[str, Any] | None) -> Any:
        path = self.network
        try:
            net = self.core.read_model(str(path))
            if fused is None:
                net.reshape({self.model.input_name: list(shape)})
            else:
                from seg_ros.runtime.openvino_graph import fused_model

                net = fused_model(net, self.model.input_name, self.model.output_name, shape,
                                  tuple(fused["output_size"]), fused["mean"], fused["std"], fused["confidence"])
            return self.core.compile_model(net, "CPU", self.config)
        except RuntimeError as e:
            raise OnnxModelError(f"OpenVINO cannot compile {path.name} for {'x'.join(map(str, shape))} "
                                 f"({str(e).strip().splitlines()[0][:200]}).") from e

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (or labels) for ``x``; the result is a view of OpenVINO's output buffer for this input shape,
        valid until the next call with the same shape (or, beyond the static shapes, the next call)."""
        self.model.check_input_shape(tuple(x.shape))
        fb = self.model.fixed_batch
        if fb is not None and x.shape[0] != fb:
            if fb != 1:
                raise ConfigError(f"ONNX model {self.model.path.name} takes batches of exactly {fb}, not {x.shape[0]}.")
            return torch.cat([self.infer(x[i:i + 1]).clone() for i in range(x.shape[0])])
        req = self._request(tuple(x.shape))
        req.infer({0: x.detach().contiguous().numpy()}, share_inputs=True)
        return torch.from_numpy(req.get_output_tensor(0).data)
