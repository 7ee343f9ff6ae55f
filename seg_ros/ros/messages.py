"""sensor_msgs Image / CompressedImage ↔ numpy, without ROS and without cv_bridge.

Duck-typed: any object with the message's fields works — rclpy messages on the
robot, ``rosbags`` message classes offline. Pure numpy / OpenCV, so it runs
beside any numpy (cv_bridge breaks beside a pip numpy 2).

Decoding returns (H, W, 3) uint8 RGB, the library's one image format; every
malformed message raises :class:`MessageError` with one sentence naming the
problem (the node logs it, counts it and drops the frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from seg_ros.errors import InputError


class MessageError(InputError):
    """An image message cannot be decoded (bad encoding, bad layout, corrupt data)."""


# encoding → (channels, bytes per channel)
_LAYOUT: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1),
    "mono8": (1, 1), "8UC1": (1, 1), "mono16": (1, 2), "16UC1": (1, 2),
    "yuv422": (2, 1), "uyvy": (2, 1), "yuv422_yuy2": (2, 1), "yuyv": (2, 1),
    "bayer_rggb8": (1, 1), "bayer_bggr8": (1, 1), "bayer_gbrg8": (1, 1), "bayer_grbg8": (1, 1),
}
# OpenCV names a Bayer pattern by the 2×2 block starting at pixel (1, 1), ROS by the one at (0, 0).
_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
_YUV = {"yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
        "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUT)


def as_bytes(data: Any) -> np.ndarray:
    """A message's ``data`` (bytes, bytearray, array.array, memoryview, list or ndarray) as a 1-D uint8 array.

    No copy for buffer types; a copy for Python lists.
    """
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(memoryview(data).cast("B"), np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)


def image_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/Image into an (H, W, 3) uint8 RGB array.

    Honours ``step`` (row padding) and ``is_bigendian`` (mono16). mono16 is scaled to 8 bits by its top byte.
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    if h <= 0 or w <= 0:
        raise MessageError(f"image is empty ({w}x{h}).")
    layout = _LAYOUT.get(enc)
    if layout is None:
        raise MessageError(f"image encoding {enc!r} is not supported; use one of {', '.join(SUPPORTED_ENCODINGS)}.")
    channels, depth = layout
    row = w * channels * depth
    if step < row:
        raise MessageError(f"image step {step} is smaller than width × bytes per pixel = {row} ({enc}, {w}x{h}).")
    buf = as_bytes(msg.data)
    if buf.size < step * h:
        raise MessageError(f"image data holds {buf.size} bytes, fewer than step × height = {step * h}.")
    if enc in _YUV and w % 2:
        raise MessageError(f"image encoding {enc} needs an even width, not {w}.")
    rows = buf[: step * h].reshape(h, step)[:, :row]
    if depth == 2:
        px = rows.view(">u2" if msg.is_bigendian else "<u2").reshape(h, w)
        gray = (px >> 8).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    px = rows.reshape(h, w, channels)
    if enc == "rgb8":
        return np.ascontiguousarray(px)
    if enc == "bgr8":
        return cv2.cvtColor(px, cv2.COLOR_BGR2RGB)
    if enc == "rgba8":
        return cv2.cvtColor(px, cv2.COLOR_RGBA2RGB)
    if enc == "bgra8":
        return cv2.cvtColor(px, cv2.COLOR_BGRA2RGB)
    if enc in _YUV:
        return cv2.cvtColor(px, _YUV[enc])
    gray = np.ascontiguousarray(px[..., 0])
    if enc in _BAYER:
        return cv2.cvtColor(gray, _BAYER[enc])
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG, colour or grey) into (H, W, 3) uint8 RGB."""
    buf = as_bytes(msg.data)
    if buf.size == 0:
        raise MessageError(f"compressed image (format {msg.format!r}) has no data.")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise MessageError(f"compressed image (format {msg.format!r}, {buf.size} bytes) is corrupt or not JPEG/PNG.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class ImageFields:
    """The fields of a sensor_msgs/Image (without header); ``data`` is a 1-D uint8 array, rows unpadded."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray


def array_to_image_fields(array: np.ndarray, encoding: str | None = None) -> ImageFields:
    """Encode an array as Image fields: (H, W) uint8 → mono8, (H, W, 3) uint8 → rgb8, (H, W) float32 → 32FC1.

    ``encoding`` may be given to check the array against it (e.g. ``bgr8`` for a 3-channel array already in BGR).
    """
    a = np.ascontiguousarray(array)
    if a.ndim == 2 and a.dtype == np.uint8:
        enc, channels = "mono8", 1
    elif a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        enc, channels = "rgb8", 3
    elif a.ndim == 2 and a.dtype == np.float32:
        enc, channels = "32FC1", 1
    else:
        raise MessageError(f"cannot encode an array of shape {a.shape} and dtype {a.dtype} as an image.")
    if encoding is not None:
        if encoding == "bgr8" and enc == "rgb8":
            enc = "bgr8"
        elif encoding != enc:
            raise MessageError(f"an array of shape {a.shape} and dtype {a.dtype} cannot be sent as {encoding}.")
    h, w = a.shape[:2]
    little = a.dtype.byteorder == "<" or (a.dtype.byteorder == "=" and np.little_endian)
    return ImageFields(height=h, width=w, encoding=enc, is_bigendian=0 if a.dtype.itemsize == 1 or little else 1,
                       step=w * channels * a.dtype.itemsize, data=a.reshape(-1).view(np.uint8))


def image_to_array(msg: Any) -> np.ndarray:
    """Decode an Image written by :func:`array_to_image_fields` (mono8, rgb8, 32FC1) back to its array.

    For reading label, colour and confidence images (e.g. ground truth in a bag), where ``image_to_rgb``
    would turn a label image into grey RGB.
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    kinds = {"mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1), "rgb8": (np.dtype(np.uint8), 3),
             "32FC1": (np.dtype(">f4" if msg.is_bigendian else "<f4"), 1)}
    if enc not in kinds:
        raise MessageError(f"image encoding {enc!r} is not a label, colour or confidence encoding "
                           "(mono8, rgb8, 32FC1).")
    dtype, channels = kinds[enc]
    row = w * channels * dtype.itemsize
    if h <= 0 or w <= 0:
        raise MessageError(f"image is empty ({w}x{h}).")
    if step < row:
        raise MessageError(f"image step {step} is smaller than width × bytes per pixel = {row} ({enc}, {w}x{h}).")
    buf = as_bytes(msg.data)
    if buf.size < step * h:
        raise MessageError(f"image data holds {buf.size} bytes, fewer than step × height = {step * h}.")
    rows = np.ascontiguousarray(buf[: step * h].reshape(h, step)[:, :row])
    out = rows.view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    return out.astype(dtype.newbyteorder("="), copy=False)
