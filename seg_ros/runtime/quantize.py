"""int8 on the CPU: ONNX Runtime static quantization (QDQ), calibrated on camera frames.

Weights are quantized per output channel (int8, symmetric), activations per tensor (uint8, asymmetric)
from MinMax ranges over the calibration frames. The result is a verified cache entry under
``cache_root/int8`` (see :mod:`seg_ros.core.cache_entry`) keyed by the fp32 ONNX file's SHA-256, the
calibration data hash, the ONNX Runtime version and the recipe; a truncated or altered entry is logged and
quantized again.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from seg_ros.core.cache_entry import CacheEntry, sha256_json
from seg_ros.core.errors import SegRosError
from seg_ros.runtime.base import ModelSource, RuntimeOptions
from seg_ros.runtime.calibration import BatchFeeder, CalibrationSet, load_calibration, read_calibration_frames
from seg_ros.runtime.onnx_model import OnnxModel

log = logging.getLogger("seg_ros.runtime")


class QuantizationError(SegRosError):
    """Static quantization of an ONNX model failed."""


RECIPE = "qdq-u8s8-minmax-pc"
"""QDQ format, uint8 activations, int8 per-channel weights, MinMax calibration (part of the cache key)."""


def int8_entry(model: OnnxModel, calib: CalibrationSet, cache_root: Path) -> CacheEntry:
    """The cache entry of ``model`` quantized on ``calib`` (not read or made here)."""
    import onnxruntime as ort

    source = {"onnx_sha256": model.sha256, "calibration_sha256": calib.sha256, "onnxruntime": ort.__version__,
              "recipe": RECIPE}
    return CacheEntry.beside(cache_root / "int8" / f"{model.path.stem}-{sha256_json(source)[:16]}.onnx", source,
                             "int8 model")


def require_calibration(options: RuntimeOptions) -> None:
    """CalibrationError (one sentence naming the setting) when int8 is asked for without calibration frames."""
    if not options.calibration.strip():
        read_calibration_frames(options.calibration)


def calibrated_int8(model: OnnxModel, source: ModelSource, options: RuntimeOptions) -> Path:
    """``model`` quantized on ``options.calibration``'s frames at the pipeline's input size (from the cache, or made
    now): the QDQ int8 model the onnxruntime and openvino backends run."""
    require_calibration(options)
    meta = source.meta
    calib = load_calibration(options.calibration, source.input_size, meta.mean, meta.std,
                             options.calibration_frames, options.calibration_topic)
    return quantize_int8(model, calib, options.cache_root())


def quantize_int8(model: OnnxModel, calib: CalibrationSet, cache_root: Path) -> Path:
    """The QDQ int8 version of ``model`` calibrated on ``calib``, from the cache or made now."""
    path, _ = int8_entry(model, calib, cache_root).get_or_build(lambda out: _quantize(model, calib, out))
    return path


def _quantize(model: OnnxModel, calib: CalibrationSet, out: Path) -> None:
    """Write the QDQ int8 model of ``model`` calibrated on ``calib`` to ``out``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeder = BatchFeeder(calib.data, 1)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeder)

        def get_next(self):
            b = next(self._it, None)
            return None if b is None else {model.input_name: b}

        def rewind(self):
            self._it = iter(feeder)

    t0 = time.perf_counter()
    log.info("quantizing %s to int8 on %d calibration frames from %s", model.path.name, len(calib.data),
             calib.source)
    with tempfile.TemporaryDirectory(prefix="seg-ros-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(model.path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"CalibTensorRangeSymmetric": False})
        except SegRosError:
            raise
        except Exception as e:
            why = (str(e).splitlines() or [type(e).__name__])[0]
            raise QuantizationError(f"int8 quantization of {model.path} failed ({why}).") from e
    log.info("int8 model of %s made in %.1f s", model.path.name, time.perf_counter() - t0)
