"""The pixel budget: the largest frame seg_ros will allocate for, checked before any allocation.

A frame's size is checked against the budget as soon as it is *declared* (a
sensor_msgs/Image's height and width, a JPEG/PNG header, an image file, a video
stream, a bag message, a resolution parameter, a model file's input size), so a
lying or hostile input costs a header read, never the memory it claims.
The default covers every common camera up to DCI 4K (4096x2160); the node's
``max_pixels`` parameter and the CLI's ``--max-pixels`` raise or lower it.

The network itself runs at an inference resolution (a parameter or the model
file's input size), bounded here too: sides in ``MIN_SIDE``..``MAX_SIDE`` and at
most ``MAX_INFERENCE_PIXELS``, whatever the frame budget.
"""

from __future__ import annotations

import re

from seg_ros.core.errors import ConfigError, InputError, clip

DEFAULT_MAX_PIXELS = 4096 * 2160
"""Default pixel budget (height × width): DCI 4K, which also covers 4K UHD (3840x2160) and 12 MP at 4:3."""
MAX_PIXELS_LIMIT = 16384 * 16384
"""The largest budget a user may set (the range of ``max_pixels``)."""
MIN_SIDE = 32
"""Smallest inference height or width, in pixels (below it the networks' stride-32 features vanish)."""
MAX_SIDE = 8192
"""Largest inference height or width, in pixels."""
MAX_INFERENCE_PIXELS = DEFAULT_MAX_PIXELS
"""Largest inference resolution (height × width): larger frames are resized down to it, never the network up."""


def check_frame_size(height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS, *, what: str = "image") -> None:
    """Raise :class:`InputError` unless ``height`` × ``width`` is a positive size within ``max_pixels``.

    Args:
        height, width: the declared size in pixels (not yet allocated).
        max_pixels: the budget, in pixels.
        what: names the input in the message, e.g. ``"CompressedImage (jpeg)"`` or a file path.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"{what} declares an empty size {height}x{width}.")
    if height * width > max_pixels:
        raise InputError(
            f"{what} declares {height}x{width} = {height * width:,} pixels, more than the pixel budget of "
            f"{max_pixels:,}; raise max_pixels (node parameter) or --max-pixels (CLI) if this size is real.")


def check_inference_size(height: int, width: int, *, what: str = "resolution") -> None:
    """Raise :class:`ConfigError` unless (``height``, ``width``) is an inference resolution that can run.

    Each side in ``MIN_SIDE``..``MAX_SIDE`` and ``height`` × ``width`` at most ``MAX_INFERENCE_PIXELS``.

    Args:
        height, width: the inference size in pixels.
        what: names the setting in the message, e.g. ``"resolution '8192x8192'"``.
    """
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise ConfigError(f"{what} is out of range; height and width must be {MIN_SIDE}..{MAX_SIDE} pixels, "
                          f"not {height}x{width}.")
    if height * width > MAX_INFERENCE_PIXELS:
        raise ConfigError(f"{what} is {height}x{width} = {height * width:,} pixels, more than the "
                          f"{MAX_INFERENCE_PIXELS:,} a network runs at; choose a smaller one "
                          "(larger frames are resized down to it).")


CRF_MAX_CELL_CLASSES = 1920 * 1080 * 19
"""Largest dense-CRF mean field (grid cells × classes): Cityscapes' 19 classes on a full-resolution 1080p grid.

Its memory grows with both (about 1 KB per cell at 11 classes on the CPU, most of it the lattice and the
per-class messages), so a full-resolution CRF on a 4K frame is refused per frame instead of exhausting memory.
The fast CRF's automatic grid (``crf.downsample`` 0) keeps the mean field small at any frame size.
"""
CRF_MAX_PIXEL_CLASSES = DEFAULT_MAX_PIXELS * 19
"""Largest frame × classes a dense CRF refines: its full-resolution marginals and last update are a few
C × H × W float32 tensors (about 2 GB for 11 classes at 4K on the CPU)."""


def check_crf_size(height: int, width: int, step: int, classes: int, *, what: str, fix: str) -> None:
    """Raise :class:`InputError` if a dense CRF on a ``height`` × ``width`` frame would take too much memory.

    Args:
        height, width: the frame in pixels.
        step: the mean field's grid step (1 = full resolution; the fast CRF's cells are ``step`` pixels wide).
        classes: number of classes.
        what: names the CRF in the message, e.g. ``"the exact dense CRF"``.
        fix: the remedy for a grid that is too fine, e.g. ``"set crf.downsample to 0 (auto)"``.
    """
    gh, gw = -(-height // step), -(-width // step)  # partial cells at the edges count
    if gh * gw * classes > CRF_MAX_CELL_CLASSES:
        raise InputError(f"{what} on a {gh}x{gw} grid × {classes} classes = {gh * gw * classes:,} is more than "
                         f"the {CRF_MAX_CELL_CLASSES:,} it is bounded to (memory); {fix}.")
    if height * width * classes > CRF_MAX_PIXEL_CLASSES:
        raise InputError(f"{what} on a {height}x{width} frame × {classes} classes = {height * width * classes:,} "
                         f"is more than the {CRF_MAX_PIXEL_CLASSES:,} it is bounded to (memory); use smaller frames "
                         "(max_pixels) or a model with fewer classes.")


_RESOLUTION_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_resolution(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (e.g. ``"360x640"``) into ``(height, width)``, an inference size that can run.

    Raises:
        ConfigError: not of the form HxW, or outside :func:`check_inference_size`'s bounds.
    """
    m = _RESOLUTION_RE.match(str(text))
    if not m:
        raise ConfigError(f"resolution {clip(repr(text))} is not of the form HxW, e.g. 360x640.")
    h, w = int(m.group(1)), int(m.group(2))
    check_inference_size(h, w, what=f"resolution {text!r}")
    return h, w


def format_resolution(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
