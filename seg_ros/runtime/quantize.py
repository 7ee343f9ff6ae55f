"""int8 on the CPU: ONNX Runtime static quantization (QDQ), calibrated on camera frames.

Weights are quantized per output channel (int8, symmetric), activations per tensor (uint8, asymmetric)
from MinMax ranges over the calibration frames. The result is cached under ``cache_root/int8`` keyed by
the fp32 ONNX file's SHA-256, the calibration data hash and the ONNX Runtime version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path

from seg_ros.errors import SegRosError
from seg_ros.outputs import atomic_path
from seg_ros.runtime.calibration import BatchFeeder, CalibrationSet
from seg_ros.runtime.onnx_model import OnnxModel

log = logging.getLogger("seg_ros.runtime")


class QuantizationError(SegRosError):
    """Static quantization of an ONNX model failed."""


def quantized_path(model: OnnxModel, calib: CalibrationSet, cache_root: Path) -> Path:
    import onnxruntime as ort

    key = hashlib.sha256(json.dumps([model.sha256, calib.sha256, ort.__version__, "qdq-u8s8-minmax-pc"])
                         .encode()).hexdigest()[:16]
    return cache_root / "int8" / f"{model.path.stem}-{key}.onnx"


def quantize_int8(model: OnnxModel, calib: CalibrationSet, cache_root: Path) -> Path:
    """The QDQ int8 version of ``model`` calibrated on ``calib``, from the cache or made now."""
    target = quantized_path(model, calib, cache_root)
    if target.is_file():
        return target
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
            with atomic_path(target) as out:
                quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                                calibrate_method=CalibrationMethod.MinMax,
                                extra_options={"CalibTensorRangeSymmetric": False})
        except SegRosError:
            raise
        except Exception as e:
            raise QuantizationError(f"int8 quantization of {model.path} failed ({str(e).splitlines()[0]}).") from e
    log.info("int8 model written to %s in %.1f s", target, time.perf_counter() - t0)
    return target
