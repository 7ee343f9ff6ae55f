"""Calibration frames for int8: read from a bag or an image folder, normalised exactly as the Segmenter does.

Both int8 paths use them: ONNX Runtime's static quantization (a ``CalibrationDataReader``) and TensorRT's
entropy calibrator (``get_batch`` hands device pointers of fixed-size batches). :class:`BatchFeeder` is the
batching both share; :func:`calibration_hash` keys the int8 model and the TensorRT engine on the data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.preprocess import FramePreprocessor
from seg_ros.runtime.base import RuntimeOptions


class CalibrationError(ConfigError):
    """int8 was asked for without usable calibration frames."""


@dataclass(frozen=True)
class CalibrationSet:
    """Normalised calibration batches: ``data`` (N, 3, h, w) float32 NCHW, and where they came from."""

    data: np.ndarray
    source: str
    sha256: str
    """Hash of the raw frames, the size and the normalisation (see :func:`calibration_hash`)."""

    @property
    def size(self) -> tuple[int, int]:
        return int(self.data.shape[2]), int(self.data.shape[3])


def read_calibration_frames(source: str | os.PathLike, limit: int = RuntimeOptions.calibration_frames,
                            topic: str = "") -> list[np.ndarray]:
    """Up to ``limit`` RGB frames (H, W, 3) uint8, evenly spaced over a bag's image topic or an image folder.

    A bag is a folder with ``metadata.yaml`` or a ``.db3`` / ``.mcap`` file; its image topic is ``topic``,
    or its only image topic.
    """
    p = Path(source)
    if not str(source).strip():
        raise CalibrationError("precision int8 needs calibration frames: set runtime.calibration "
                               "(--calibration) to a bag or an image folder of typical camera frames.")
    if not p.exists():
        raise CalibrationError(f"calibration source {p} does not exist; give a bag or an image folder.")
    if (p.is_dir() and (p / "metadata.yaml").is_file()) or p.suffix in (".db3", ".mcap"):
        return _bag_frames(p, limit, topic)
    if p.is_dir():
        from seg_ros.io.datasets import ImageFolderSource, read_image

        try:
            src = ImageFolderSource(p)
        except InputError as e:
            raise CalibrationError(f"calibration source: {e}") from e
        return [read_image(src.images[i]) for i in _spaced(len(src.images), limit)]
    raise CalibrationError(f"calibration source {p} is neither a bag nor an image folder.")


def _bag_frames(p: Path, limit: int, topic: str) -> list[np.ndarray]:
    from seg_ros.io.bags import CUSTOM_IMAGE_TOPIC, BagReader, recorded_cameras

    with BagReader(p) as r:
        if not topic:
            # The camera topic a dataset bag records (its first camera's for several), else the only image topic.
            cameras = recorded_cameras(r.info)
            hinted = r.info.custom.get(CUSTOM_IMAGE_TOPIC) or (cameras[0].image_topic if cameras else "")
            topics = r.info.image_topics()
            if hinted and r.info.topic(hinted) is not None:
                topic = hinted
            elif len(topics) == 1:
                topic = topics[0].name
            else:
                raise CalibrationError(f"calibration bag {p} has {len(topics)} image topics "
                                       f"({r.info.describe_image_topics()}); set runtime.calibration_topic.")
        count = r.require_topic(topic).count
        keep = set(_spaced(count, limit))
        return [m.to_rgb() for i, m in enumerate(r.images(topic)) if i in keep]


def _spaced(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / (k - 1))) for i in range(k)}) if k > 1 else [0]


def normalise(frames: list[np.ndarray], size: tuple[int, int], mean, std) -> np.ndarray:
    """Frames → (N, 3, h, w) float32, exactly the network input the Segmenter makes of them on the CPU
    (:class:`~seg_ros.core.preprocess.FramePreprocessor`, planar)."""
    pre = FramePreprocessor(mean, std, "cpu", channels_last=False)
    out = np.empty((len(frames), 3, *size), np.float32)
    for i, f in enumerate(frames):  # frames may differ in size
        out[i] = pre(f[None], size).numpy()[0]
    return out


def calibration_hash(frames: list[np.ndarray], size: tuple[int, int], mean, std) -> str:
    """SHA-256 of the raw frames (shape and bytes), the target size and the normalisation."""
    h = hashlib.sha256(repr((tuple(size), tuple(float(v) for v in mean), tuple(float(v) for v in std))).encode())
    for f in frames:
        h.update(repr(f.shape).encode())
        h.update(np.ascontiguousarray(f).data)
    return h.hexdigest()


def load_calibration(source: str | os.PathLike, size: tuple[int, int], mean, std,
                     limit: int = RuntimeOptions.calibration_frames, topic: str = "") -> CalibrationSet:
    frames = read_calibration_frames(source, limit, topic)
    if not frames:
        raise CalibrationError(f"calibration source {source} holds no frames.")
    return CalibrationSet(normalise(frames, size, mean, std), str(source), calibration_hash(frames, size, mean, std))


class BatchFeeder:
    """Fixed-size, contiguous float32 batches (batch, 3, h, w) of a calibration set, in order.

    The last partial batch is dropped (an engine profile takes whole batches), unless the set is smaller
    than one batch, which is an error. ``next()`` returns None when the set is exhausted; ``reset()``
    starts over.
    """

    def __init__(self, data: np.ndarray, batch: int = 1):
        if batch < 1:
            raise ValueError("batch must be positive")
        if data.ndim != 4 or data.dtype != np.float32:
            raise ValueError(f"calibration data must be (N, 3, h, w) float32, not {data.shape} {data.dtype}")
        if len(data) < batch:
            raise CalibrationError(f"calibration needs at least {batch} frames for batches of {batch}, "
                                   f"got {len(data)}.")
        self.data, self.batch = data, batch
        self.batches = len(data) // batch
        self._i = 0

    def __len__(self) -> int:
        return self.batches

    def next(self) -> np.ndarray | None:
        if self._i >= self.batches:
            return None
        b = np.ascontiguousarray(self.data[self._i * self.batch:(self._i + 1) * self.batch])
        self._i += 1
        return b

    def reset(self) -> None:
        self._i = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        self.reset()
        while (b := self.next()) is not None:
            yield b
