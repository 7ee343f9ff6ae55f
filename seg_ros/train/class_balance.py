"""Class-balancing loss weights computed from a training set's label maps.

Driving datasets are dominated by road, sky and buildings; poles, signs and cyclists
cover well under 1% of the pixels, so an unweighted loss barely learns them and mIoU
(which weighs every class equally) suffers. Median-frequency balancing (Eigen & Fergus
2015, used by SegNet on CamVid) scales each class's loss by

    w_c = median(f) / f_c,   f_c = pixels of class c / pixels of the frames that contain c

so a class as frequent as the median class weighs 1, rarer classes more, common ones less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from seg_ros.core.errors import ConfigError

KINDS = ("none", "median-frequency")


def class_pixel_counts(labels: Sequence[np.ndarray] | Callable[[int], np.ndarray], count: int,
                       num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class pixel counts over ``count`` label maps and the pixel total of the frames holding each class.

    ``labels`` is a sequence of (H, W) uint8 maps or a function ``i -> map``; ids outside
    ``0 .. num_classes - 1`` (the ignore id) are left out of both counts. Returns two
    (num_classes,) int64 arrays: ``pixels[c]`` and ``frame_pixels[c]``.
    """
    get = labels if callable(labels) else labels.__getitem__
    pixels = np.zeros(num_classes, np.int64)
    frame_pixels = np.zeros(num_classes, np.int64)
    for i in range(count):
        hist = np.bincount(np.asarray(get(i)).ravel(), minlength=256)[:num_classes].astype(np.int64)
        pixels += hist
        frame_pixels[hist > 0] += int(hist.sum())
    return pixels, frame_pixels


def median_frequency_weights(pixels: np.ndarray, frame_pixels: np.ndarray) -> np.ndarray:
    """Median-frequency weights (float32, one per class) from :func:`class_pixel_counts`.

    A class that never occurs gets weight 1 (it contributes no loss either way).
    """
    present = frame_pixels > 0
    if not present.any():
        raise ConfigError("the training labels hold no pixel of any class; cannot compute class weights.")
    freq = np.zeros(len(pixels), np.float64)
    freq[present] = pixels[present] / frame_pixels[present]
    weights = np.ones(len(pixels), np.float64)
    weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


def class_weights(kind: str, labels: Sequence[np.ndarray] | Callable[[int], np.ndarray], count: int,
                  num_classes: int) -> np.ndarray | None:
    """Loss weights of ``kind`` (``none`` or ``median-frequency``) for the label maps; None for ``none``."""
    if kind == "none":
        return None
    if kind != "median-frequency":
        raise ConfigError(f"class weights must be one of {', '.join(KINDS)}, not {kind!r}.")
    return median_frequency_weights(*class_pixel_counts(labels, count, num_classes))
