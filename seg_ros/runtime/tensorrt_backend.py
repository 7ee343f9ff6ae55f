"""TensorRT backend (TensorRT 10 Python API): engines from the ONNX file, cached by fingerprint.

An engine is built per input shape (N, 3, H, W) with one optimisation profile (batch 1 … ``max_batch``,
H×W fixed to the pipeline's resolution) in fp32, fp16 (fp16 kernels allowed) or int8 (entropy calibration
on frames of a bag or an image folder, with a calibration cache). It runs on device buffers: the input is
the pipeline's contiguous float32 tensor on the GPU, the output a reused torch tensor, both bound by their
``data_ptr`` and executed with ``execute_async_v3`` on a CUDA stream ordered after torch's current stream.
Engines live in :class:`~seg_ros.runtime.engine_cache.EngineCache`; ``seg-ros export --tensorrt`` builds
them ahead of time so a robot never builds at start-up.

Everything up to the TensorRT calls (fingerprints, the cache, shape decisions, calibration batches) is
plain Python and tested without TensorRT; the calls themselves are exercised where ``tensorrt`` imports
and a CUDA GPU exists.
"""

from __future__ import annotations

import logging
import time

import torch

from seg_ros.core.cache_entry import CacheEntry
from seg_ros.core.errors import ConfigError, SegRosError
from seg_ros.runtime.base import Backend, BackendUnavailableError, ModelSource, Refusal, RuntimeOptions
from seg_ros.runtime.calibration import BatchFeeder, CalibrationSet
from seg_ros.runtime.engine_cache import EngineCache, EngineFingerprint
from seg_ros.runtime.onnx_model import OnnxModel, OnnxModelError

log = logging.getLogger("seg_ros.runtime")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as e:
        raise BackendUnavailableError("the tensorrt backend needs TensorRT 10 "
                                      "(pip install 'seg_ros[tensorrt]' on a machine with an NVIDIA GPU).") from e
    return tensorrt


def tensorrt_status() -> tuple[bool, str]:
    """(usable, why): TensorRT imports and a CUDA GPU exists."""
    return TensorRTBackend.can_run(torch.device("cuda"), "fp32", False)


def gpu_identity(device: torch.device) -> tuple[str, str]:
    """(GPU name, compute capability ``major.minor``) of a CUDA device."""
    idx = device.index or 0
    major, minor = torch.cuda.get_device_capability(idx)
    return torch.cuda.get_device_name(idx), f"{major}.{minor}"


def make_fingerprint(model: OnnxModel, tensorrt_version: str, gpu: tuple[str, str], precision: str,
                     shape: tuple[int, int, int, int], calibration: CalibrationSet | None) -> EngineFingerprint:
    return EngineFingerprint(onnx_sha256=model.sha256, tensorrt_version=tensorrt_version, gpu_name=gpu[0],
                             compute_capability=gpu[1], precision=precision, input_shape=tuple(shape),
                             calibration_sha256=calibration.sha256 if calibration is not None else "",
                             model_stem=model.path.stem)


def profile_shape(x_shape: tuple[int, ...], max_batch: int) -> tuple[int, int, int, int]:
    """The engine shape (max_batch, 3, H, W) that serves an input of ``x_shape``."""
    n, c, h, w = x_shape
    if n > max_batch:
        raise ConfigError(f"a batch of {n} frames exceeds the TensorRT engine's maximum batch {max_batch}; "
                          "raise runtime.max_batch.")
    return (max_batch, c, h, w)


def decide_shape(x_shape: tuple[int, ...], built: set[tuple[int, int, int, int]], max_batch: int, policy: str,
                 fixed_size: tuple[int, int] | None) -> tuple[tuple[int, int, int, int], bool]:
    """Which engine serves ``x_shape``: (its profile shape, whether it must be built or loaded first).

    A shape no engine was built for is an error with ``policy == "error"`` once an engine exists, and
    always for an ONNX file fixed to another size.
    """
    shape = profile_shape(x_shape, max_batch)
    if fixed_size is not None and tuple(shape[2:]) != tuple(fixed_size):
        raise ConfigError(f"the ONNX model takes only {fixed_size[0]}x{fixed_size[1]} inputs but the pipeline feeds "
                          f"{shape[2]}x{shape[3]}; set resolution to {fixed_size[0]}x{fixed_size[1]} with "
                          "keep_aspect false.")
    if shape in built:
        return shape, False
    if built and policy == "error":
        have = ", ".join(f"{s[2]}x{s[3]}" for s in sorted(built))
        raise ConfigError(f"the TensorRT engine was built for {have}, not {shape[2]}x{shape[3]}; set the resolution "
                          "to match (and keep_aspect false) or set runtime.on_new_shape to rebuild.")
    return shape, True


class CalibrationFeed:
    """What TensorRT's entropy calibrator asks for: fixed-size device batches and a calibration table cache.

    ``next_pointers()`` copies the next host batch into one reused device tensor and returns its address
    (a list with one int, as ``get_batch`` wants), or None when the frames are used up. The table lives in a
    verified cache entry: one that fails verification is logged and removed, and TensorRT calibrates anew.
    """

    def __init__(self, calib: CalibrationSet, batch: int, device: torch.device, cache: CacheEntry):
        self.feeder = BatchFeeder(calib.data, batch)
        self.device = device
        self.cache = cache
        self.batch = batch
        self._buf = torch.empty(tuple((batch, *calib.data.shape[1:])), dtype=torch.float32, device=device)
        self.fed = 0

    def next_pointers(self) -> list[int] | None:
        b = self.feeder.next()
        if b is None:
            return None
        self._buf.copy_(torch.from_numpy(b))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.fed += 1
        return [int(self._buf.data_ptr())]

    @property
    def current(self) -> torch.Tensor:
        return self._buf

    # These run inside TensorRT's calibrator callbacks, where an exception cannot reach the caller: the table
    # only saves calibration time, so a cache that cannot be used is logged and calibration goes on without it.
    def read_cache(self) -> bytes | None:
        try:
            return self.cache.load_bytes() or None
        except SegRosError as e:
            log.warning("%s; calibrating without the cached table.", str(e).rstrip("."))
            return None

    def write_cache(self, data: bytes | memoryview) -> None:
        try:
            self.cache.store_bytes(bytes(data))
        except SegRosError as e:
            log.warning("%s; the calibration table is not cached.", str(e).rstrip("."))


def _make_calibrator(trt, feed: CalibrationFeed):
    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return feed.batch

        def get_batch(self, names):
            return feed.next_pointers()

        def read_calibration_cache(self):
            return feed.read_cache()

        def write_calibration_cache(self, cache):
            feed.write_cache(cache)

    return _EntropyCalibrator()


_TRT_TO_TORCH = {"FLOAT": torch.float32, "HALF": torch.float16, "INT32": torch.int32, "INT64": torch.int64,
                 "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}


class _Engine:
    """One deserialized engine with its execution context and bound output buffer."""

    def __init__(self, trt, runtime, plan: bytes, shape: tuple[int, int, int, int], model: OnnxModel,
                 device: torch.device):
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise RuntimeError("deserialize_cuda_engine returned None")
        self.context = self.engine.create_execution_context()
        self.shape = shape
        self.model = model
        self.device = device
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = model.input_name
        self.output_name = model.output_name
        if self.input_name not in names or self.output_name not in names:
            raise RuntimeError(f"engine tensors {names} lack {self.input_name!r} / {self.output_name!r}")
        self._outputs: dict[tuple[int, ...], torch.Tensor] = {}
        self._trt = trt

    def run(self, x: torch.Tensor, stream: torch.cuda.Stream) -> torch.Tensor:
        key = tuple(x.shape)
        out = self._outputs.get(key)
        ctx = self.context
        ctx.set_input_shape(self.input_name, key)
        if out is None:
            oshape = tuple(ctx.get_tensor_shape(self.output_name))
            dtype = _TRT_TO_TORCH[self.engine.get_tensor_dtype(self.output_name).name]
            out = self._outputs[key] = torch.empty(oshape, dtype=dtype, device=self.device)
        ctx.set_tensor_address(self.input_name, int(x.data_ptr()))
        ctx.set_tensor_address(self.output_name, int(out.data_ptr()))
        current = torch.cuda.current_stream(self.device)
        stream.wait_stream(current)  # the input was written on torch's stream
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        current.wait_stream(stream)  # torch's next kernels read the output after TensorRT wrote it
        x.record_stream(stream)
        return out


class TensorRTBackend(Backend):
    name = "tensorrt"
    precisions = ("fp32", "fp16", "int8")
    auto_rank = 0
    channels_last = False

    @classmethod
    def refusal(cls, device: torch.device, precision: str, is_onnx: bool,
                model_name: str = "the model") -> Refusal | None:
        if device.type != "cuda":
            return Refusal(f"TensorRT needs a CUDA device, not {device}", BackendUnavailableError(
                f"the tensorrt backend needs a CUDA device, not {device}."))
        try:
            trt = import_tensorrt()
        except BackendUnavailableError as e:
            return Refusal("TensorRT is not installed", e)
        if not torch.cuda.is_available():
            return Refusal(f"TensorRT {trt.__version__} is installed but no CUDA GPU is available",
                           BackendUnavailableError("the tensorrt backend needs a CUDA GPU; none is available."))
        return cls.precision_refusal(precision)

    @classmethod
    def advantage(cls, device: torch.device) -> str:
        return f"TensorRT {import_tensorrt().__version__} and a CUDA GPU are available"

    def __init__(self, source: ModelSource, device: torch.device, precision: str = "fp32",
                 options: RuntimeOptions | None = None):
        self.options = options = options or RuntimeOptions()
        self.require(device, precision, source.is_onnx, source.path.name)
        self.trt = trt = import_tensorrt()
        if precision == "int8" and not options.calibration.strip():
            from seg_ros.runtime.calibration import read_calibration_frames

            read_calibration_frames(options.calibration)  # raises: int8 needs calibration frames
        self.device, self.precision = device, precision
        self.source = source
        self.model: OnnxModel = source.onnx_file(options)
        self.output_kind = self.model.output_kind
        self.cache = EngineCache(options.cache_root() / "tensorrt")
        self.calibration: CalibrationSet | None = None
        self._gpu = gpu_identity(device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engines: dict[tuple[int, int, int, int], _Engine] = {}
        self._stream = torch.cuda.Stream(device)
        h, w = source.input_size
        self._prepare((self.options.max_batch, 3, h, w))

    # -- engines ---------------------------------------------------------------------------------------------

    def fingerprint(self, shape: tuple[int, int, int, int]) -> EngineFingerprint:
        if self.precision == "int8" and (self.calibration is None or self.calibration.size != shape[2:]):
            from seg_ros.runtime.calibration import load_calibration

            meta = self.source.meta
            self.calibration = load_calibration(self.options.calibration, shape[2:], meta.mean, meta.std,
                                                self.options.calibration_frames, self.options.calibration_topic)
        calib = self.calibration if self.precision == "int8" else None
        return make_fingerprint(self.model, self.trt.__version__, self._gpu, self.precision, shape, calib)

    def _prepare(self, shape: tuple[int, int, int, int]) -> _Engine:
        fp = self.fingerprint(shape)
        with torch.cuda.device(self.device):
            plan, built = self.cache.get_or_build(fp, lambda: self.build_plan(fp))
            try:
                eng = _Engine(self.trt, self._runtime, plan, shape, self.model, self.device)
            except RuntimeError as e:
                if built:
                    raise OnnxModelError(f"TensorRT cannot run the engine it just built for {self.model.path} "
                                         f"({e}).") from e
                self.cache.invalidate(fp, f"TensorRT cannot deserialize it ({e})")
                plan, _ = self.cache.get_or_build(fp, lambda: self.build_plan(fp))
                eng = _Engine(self.trt, self._runtime, plan, shape, self.model, self.device)
        self._engines[shape] = eng
        return eng

    def build_plan(self, fp: EngineFingerprint) -> bytes:
        """Parse the ONNX file and build a serialized engine for ``fp`` (minutes on large models)."""
        trt = self.trt
        shape = fp.input_shape
        log.warning("building a TensorRT %s engine for %s at %s (this takes a while; "
                    "`seg-ros export --tensorrt` builds it ahead of time)", fp.precision, self.model.path.name,
                    "x".join(map(str, shape)))
        t0 = time.perf_counter()
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(self.model.path)):
            errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
            raise OnnxModelError(f"TensorRT cannot parse {self.model.path}: {errors[:300]}.")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.options.workspace_mib << 20)
        profile = builder.create_optimization_profile()
        lo = (1, *shape[1:])
        profile.set_shape(self.model.input_name, lo, shape, shape)
        config.add_optimization_profile(profile)
        if fp.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if fp.precision == "int8":
            assert self.calibration is not None
            config.set_flag(trt.BuilderFlag.INT8)
            feed = CalibrationFeed(self.calibration, shape[0], self.device, self.cache.calibration_cache(fp))
            config.int8_calibrator = _make_calibrator(trt, feed)
            config.set_calibration_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise OnnxModelError(f"TensorRT could not build a {fp.precision} engine for {self.model.path} at "
                                 f"{'x'.join(map(str, shape))} (see the TensorRT log above).")
        log.warning("TensorRT engine built in %.1f s", time.perf_counter() - t0)
        return bytes(plan)

    # -- inference ---------------------------------------------------------------------------------------------

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        shape, new = decide_shape(tuple(x.shape), set(self._engines), self.options.max_batch,
                                  self.options.on_new_shape, self.model.fixed_size)
        eng = self._prepare(shape) if new else self._engines[shape]
        x = x.detach().to(device=self.device, dtype=torch.float32).contiguous()
        return eng.run(x, self._stream)

    def describe(self) -> str:
        return super().describe() + f" (TensorRT {self.trt.__version__}, {self._gpu[0]})"

