"""Helpers shared by the backend tests: calibration frames on disk, and two Segmenters compared on scenes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.synthetic import generate_scene


def write_frames(folder: Path, n: int, size: tuple[int, int], first_seed: int = 9000) -> Path:
    """``n`` synthetic scenes (seeds first_seed, first_seed + 1, ...) as PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(generate_scene(first_seed + i, size).image,
                                                               cv2.COLOR_RGB2BGR))
    return folder


def compare_on_scenes(reference, other, seeds: range, size: tuple[int, int]) -> tuple[float, float, float]:
    """(mean share of pixels whose labels agree, reference mIoU, other mIoU) of two Segmenters on scenes."""
    cms = [ConfusionMatrix(11), ConfusionMatrix(11)]
    agree = []
    for seed in seeds:
        sc = generate_scene(seed, size)
        a, b = reference.segment(sc.image).labels, other.segment(sc.image).labels
        cms[0].update(a, sc.labels)
        cms[1].update(b, sc.labels)
        agree.append((a == b).mean())
    return float(np.mean(agree)), cms[0].miou(), cms[1].miou()
