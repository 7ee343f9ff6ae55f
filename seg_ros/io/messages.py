"""sensor_msgs Image / CompressedImage ↔ numpy, without ROS and without cv_bridge.

Duck-typed: any object with the message's fields works — rclpy messages on the
robot, ``rosbags`` message classes offline. Pure numpy / OpenCV, so it runs
beside any numpy (cv_bridge breaks beside a pip numpy 2).

Decoding returns (H, W, 3) uint8 RGB, the library's one image format; every
malformed message raises :class:`MessageError` with one sentence naming the
problem (the node logs it, counts it and drops the frame). Sizes are checked
against the pixel budget (:mod:`seg_ros.core.limits`) as declared, before anything
is allocated: a raw Image's height and width, a CompressedImage's JPEG/PNG
header (read by Pillow without decoding).
"""

from __future__ import annotations

import array
import io
import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin

from seg_ros.core.errors import InputError, clip
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, check_frame_size


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
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of a whole PNG


def _unsupported(encoding: str) -> MessageError:
    return MessageError(f"image encoding {clip(repr(encoding))} is not supported; "
                        f"use one of {', '.join(SUPPORTED_ENCODINGS)}.")


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


def _check_size(height: int, width: int, max_pixels: int, what: str) -> None:
    """:func:`seg_ros.core.limits.check_frame_size` raising :class:`MessageError` (bag readers name the frame)."""
    try:
        check_frame_size(height, width, max_pixels, what=what)
    except InputError as e:
        raise MessageError(str(e)) from None


def image_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into an (H, W, 3) uint8 RGB array.

    Honours ``step`` (row padding) and ``is_bigendian`` (mono16). mono16 is scaled to 8 bits by its top byte.
    The declared height × width must lie within ``max_pixels`` (checked before the data is touched).
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    if h <= 0 or w <= 0:
        raise MessageError(f"image is empty ({w}x{h}).")
    layout = _LAYOUT.get(enc)
    if layout is None:
        raise _unsupported(enc)
    _check_size(h, w, max_pixels, f"image ({enc})")
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
        # contiguous first: numpy < 1.23 views padded rows as a wider dtype only when they are C-contiguous
        px = np.ascontiguousarray(rows).view(">u2" if msg.is_bigendian else "<u2").reshape(h, w)
        gray = (px >> 8).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    px = rows.reshape(h, w, channels)
    if enc == "rgb8":
        return np.array(px)  # a copy: message buffers may be read-only or reused by the middleware
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


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) into (H, W, 3) uint8 RGB.

    Colour, grey, palette and alpha images decode to RGB (alpha dropped, 16-bit PNG scaled to 8 bits by its
    top byte). The header's size is read first (Pillow, no decoding) and checked against ``max_pixels``;
    other formats, truncated data and data that disagrees with its header raise :class:`MessageError`.
    """
    buf = as_bytes(msg.data)
    fmt = f"format {clip(repr(str(msg.format)), 40)}"
    if buf.size == 0:
        raise MessageError(f"compressed image ({fmt}) has no data.")
    kind, height, width = _compressed_header(buf, fmt)
    _check_size(height, width, max_pixels, f"compressed image ({fmt}, {kind})")
    what = f"compressed image ({fmt}, {kind} of {height}x{width} HxW)"
    tail = buf[-4096:].tobytes()
    if kind == "JPEG" and not tail.rstrip(b"\0").endswith(_JPEG_EOI):  # some cameras pad frames with zeros
        raise MessageError(f"{what} is truncated: its data ends without the JPEG end-of-image marker.")
    if kind == "PNG" and not tail.endswith(_PNG_IEND):
        raise MessageError(f"{what} is truncated: its data does not end with the PNG IEND chunk.")
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as e:  # e.g. OpenCV's own pixel limit
        raise MessageError(f"{what} cannot be decoded ({_first_line(e)}).") from None
    if bgr is None:
        raise MessageError(f"{what} is corrupt: its {buf.size} bytes do not decode.")
    if bgr.shape[:2] not in ((height, width), (width, height)):  # (width, height): EXIF orientation applied
        raise MessageError(f"{what} decodes to {bgr.shape[0]}x{bgr.shape[1]}, not the size its header declares.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _compressed_header(buf: np.ndarray, fmt: str) -> tuple[str, int, int]:
    """``("JPEG" or "PNG", height, width)`` from the header of compressed image data, without decoding it."""
    head = buf[:16].tobytes()
    if head.startswith(_JPEG_MAGIC):
        kind, plugin = "JPEG", JpegImagePlugin.JpegImageFile
    elif head.startswith(_PNG_MAGIC):
        kind, plugin = "PNG", PngImagePlugin.PngImageFile
    else:
        found = _sniff_format(head)
        found = f"{found} data" if found else f"unrecognised data (starting {head[:4].hex(' ')})"
        raise MessageError(f"compressed image ({fmt}) holds {found}; only JPEG and PNG are accepted.")
    try:
        # The plugin class reads only the header: no pixel buffer, and none of Image.open's bomb warnings
        # (the budget is checked by the caller).
        with plugin(io.BytesIO(buf.tobytes())) as im:
            width, height = im.size
    except (SyntaxError, OSError, ValueError, EOFError) as e:
        raise MessageError(f"compressed image ({fmt}) has a corrupt {kind} header ({_first_line(e)}).") from None
    return kind, int(height), int(width)


def _sniff_format(head: bytes) -> str | None:
    """The name of the image format whose signature ``head`` starts with, by Pillow's format table."""
    Image.init()
    for name, (_, accept) in Image.OPEN.items():
        try:
            if accept is not None and accept(head):
                return name
        except Exception:  # noqa: BLE001 - a plugin's signature check on 16 bytes; no match
            continue
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__


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


def image_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an Image written by :func:`array_to_image_fields` (mono8, rgb8, 32FC1) back to its array.

    For reading label, colour and confidence images (e.g. ground truth in a bag), where ``image_to_rgb``
    would turn a label image into grey RGB. The declared height × width must lie within ``max_pixels``.
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    kinds = {"mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1), "rgb8": (np.dtype(np.uint8), 3),
             "32FC1": (np.dtype(">f4" if msg.is_bigendian else "<f4"), 1)}
    if enc not in kinds:
        raise MessageError(f"image encoding {clip(repr(enc))} is not a label, colour or confidence encoding "
                           "(mono8, rgb8, 32FC1).")
    dtype, channels = kinds[enc]
    row = w * channels * dtype.itemsize
    if h <= 0 or w <= 0:
        raise MessageError(f"image is empty ({w}x{h}).")
    _check_size(h, w, max_pixels, f"image ({enc})")
    if step < row:
        raise MessageError(f"image step {step} is smaller than width × bytes per pixel = {row} ({enc}, {w}x{h}).")
    buf = as_bytes(msg.data)
    if buf.size < step * h:
        raise MessageError(f"image data holds {buf.size} bytes, fewer than step × height = {step * h}.")
    rows = np.ascontiguousarray(buf[: step * h].reshape(h, step)[:, :row])
    out = rows.view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    return out.astype(dtype.newbyteorder("="), copy=False)


def encode_rgb(rgb: np.ndarray, encoding: str) -> ImageFields:
    """Encode an (H, W, 3) uint8 RGB frame in any of :data:`SUPPORTED_ENCODINGS` (the inverse of ``image_to_rgb``).

    Grey encodings take the luma; ``mono16`` puts it in the high byte (little-endian); YUV 4:2:2 averages the
    chroma of each pixel pair (needs an even width); Bayer keeps the one colour of each pixel's filter.
    For cameras simulated in tests, the benchmark and dataset-to-bag tools.
    """
    _check_rgb(rgb)
    if encoding not in _LAYOUT:
        raise _unsupported(encoding)
    h, w = rgb.shape[:2]
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "rgba8":
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    elif encoding == "bgra8":
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    elif encoding in ("mono8", "8UC1"):
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding in ("mono16", "16UC1"):
        px = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype("<u2") * 257).view(np.uint8).reshape(h, w * 2)
    elif encoding in _YUV:
        if w % 2:
            raise MessageError(f"image encoding {encoding} needs an even width, not {w}.")
        yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV).astype(np.uint16)
        y = yuv[..., 0].astype(np.uint8)
        u = ((yuv[:, 0::2, 1] + yuv[:, 1::2, 1] + 1) // 2).astype(np.uint8)
        v = ((yuv[:, 0::2, 2] + yuv[:, 1::2, 2] + 1) // 2).astype(np.uint8)
        px = np.empty((h, w * 2), np.uint8)
        if encoding in ("yuv422", "uyvy"):
            px[:, 0::4], px[:, 1::4], px[:, 2::4], px[:, 3::4] = u, y[:, 0::2], v, y[:, 1::2]
        else:
            px[:, 0::4], px[:, 1::4], px[:, 2::4], px[:, 3::4] = y[:, 0::2], u, y[:, 1::2], v
    else:  # Bayer: the 2×2 pattern named by the encoding, starting at pixel (0, 0)
        pattern = encoding[len("bayer_"):-1]
        px = np.empty((h, w), np.uint8)
        for k, ch in enumerate(pattern):
            dy, dx = divmod(k, 2)
            px[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(ch)]
    data = np.ascontiguousarray(px).reshape(-1)
    return ImageFields(height=h, width=w, encoding=encoding, is_bigendian=0, step=data.size // h, data=data)


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageError(f"expected an (H, W, 3) uint8 RGB array, not {getattr(rgb, 'shape', type(rgb))}.")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise MessageError(f"cannot encode an empty image ({rgb.shape[1]}x{rgb.shape[0]}).")


def uint8_sequence(msg_cls: type, data: np.ndarray) -> Any:
    """``data`` (1-D uint8) in the container ``msg_cls``'s ``uint8[]`` field takes, copied once.

    rclpy message classes store ``uint8[]`` as ``array.array('B')`` (anything else is converted element by
    element); ``rosbags`` classes (they have ``__msgtype__``) take a numpy array.
    """
    if hasattr(msg_cls, "__msgtype__"):
        return np.array(data, dtype=np.uint8, copy=True).reshape(-1)
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B"))
    return out


def image_message(msg_cls: type, header: Any, image: np.ndarray | ImageFields, encoding: str | None = None) -> Any:
    """A sensor_msgs/Image of class ``msg_cls`` (rclpy or rosbags) with ``header`` and the pixels of ``image``.

    ``image``: an array for :func:`array_to_image_fields` ((H, W) uint8 → mono8, (H, W, 3) uint8 → rgb8,
    (H, W) float32 → 32FC1) or ready :class:`ImageFields`.
    """
    f = image if isinstance(image, ImageFields) else array_to_image_fields(image, encoding)
    return msg_cls(header=header, height=f.height, width=f.width, encoding=f.encoding,
                   is_bigendian=f.is_bigendian, step=f.step, data=uint8_sequence(msg_cls, f.data))


def confidence_image(confidence: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W) float32 confidence in [0, 1] as sent on ``~/confidence``: ``mono8`` → round(255·c) uint8,
    ``32FC1`` → the float32 values themselves."""
    if encoding == "32FC1":
        return np.ascontiguousarray(confidence, dtype=np.float32)
    if encoding == "mono8":
        return cv2.convertScaleAbs(confidence, alpha=255.0)  # saturating, rounds to nearest
    raise MessageError(f"confidence encoding must be mono8 or 32FC1, not {encoding!r}.")


def label_info_dict(label_set: Any) -> dict[str, Any]:
    """The class map of a :class:`seg_ros.core.labels.LabelSet` as JSON-ready data (ids, names, RGB colours)."""
    return {
        "label_set": label_set.name,
        "classes": [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(zip(label_set.names,
                                                                                           label_set.colors))],
        "ignore_id": label_set.ignore_id,
    }


def label_info_json(label_set: Any) -> str:
    """:func:`label_info_dict` as compact JSON (the ``~/label_info_json`` fallback without vision_msgs)."""
    return json.dumps(label_info_dict(label_set), separators=(",", ":"))


def label_info_message(label_info_cls: type, vision_class_cls: type, header: Any, label_set: Any,
                       threshold: float = 0.0) -> Any:
    """A vision_msgs/LabelInfo (``header``, ``class_map`` of VisionClass(class_id, class_name), ``threshold``).

    The ignore id is not listed: it is never predicted.
    """
    classes = [vision_class_cls(class_id=i, class_name=n) for i, n in enumerate(label_set.names)]
    return label_info_cls(header=header, class_map=classes, threshold=float(threshold))
