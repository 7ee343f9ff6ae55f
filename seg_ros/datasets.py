"""Dataset readers and training augmentation.

A *source* is a sized, indexable collection of ``(image, labels)`` pairs:
``image`` (H, W, 3) uint8 RGB and ``labels`` (H, W) uint8 class ids (the label
set's ignore id marks void). Sources: :class:`FolderDataset` (the CamVid
layout ``<root>/<split>/images/NAME.{jpg,png}`` + ``<root>/<split>/labels/NAME.png``)
and :class:`SyntheticDataset` (procedural scenes, see :mod:`seg_ros.synthetic`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_ros.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; raises InputError if it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}: missing, unreadable or not an image.")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel 8-bit label image as (H, W) uint8; raises InputError otherwise."""
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise InputError(f"cannot read label image {path}: missing, unreadable or not an image.")
    if lab.ndim != 2 or lab.dtype != np.uint8:
        raise InputError(f"label image {path} must be single-channel 8-bit, not {lab.dtype} with shape {lab.shape}.")
    return lab


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) RGB or (H, W) mono uint8 array; the format follows the file suffix."""
    arr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), arr):
        raise InputError(f"cannot write image {path}.")


class FolderDataset:
    """Image/label pairs in the CamVid layout: ``<root>/<split>/images`` and ``<root>/<split>/labels``.

    Pairs are matched by file stem and listed in name order (time order for CamVid).
    """

    def __init__(self, root: str | os.PathLike, split: str):
        self.root = Path(root)
        img_dir, lab_dir = self.root / split / "images", self.root / split / "labels"
        if not img_dir.is_dir():
            raise InputError(f"dataset folder {img_dir} does not exist; expected <root>/<split>/images and labels.")
        if not lab_dir.is_dir():
            raise InputError(f"dataset folder {lab_dir} does not exist; expected <root>/<split>/images and labels.")
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        labels = {p.stem: p for p in lab_dir.iterdir() if p.suffix.lower() == ".png"}
        missing = [p.name for p in images if p.stem not in labels]
        if missing:
            raise InputError(f"{len(missing)} images in {img_dir} have no label PNG in {lab_dir} (e.g. {missing[0]}).")
        if not images:
            raise InputError(f"dataset folder {img_dir} holds no images.")
        self.pairs = [(p, labels[p.stem]) for p in images]
        self.name = f"{self.root.name}/{split}"

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img_path, lab_path = self.pairs[i]
        img, lab = read_image(img_path), read_labels(lab_path)
        if img.shape[:2] != lab.shape:
            raise InputError(f"label {lab_path.name} is {lab.shape[1]}x{lab.shape[0]} but image is "
                             f"{img.shape[1]}x{img.shape[0]}.")
        return img, lab


class SyntheticDataset:
    """``count`` procedural scenes with seeds ``first_seed .. first_seed + count - 1`` at ``size`` (H, W)."""

    def __init__(self, first_seed: int, count: int, size: tuple[int, int] = (360, 640)):
        self.first_seed, self.count, self.size = first_seed, count, tuple(size)
        self.name = f"synthetic[{first_seed}:{first_seed + count}]@{size[0]}x{size[1]}"

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        from seg_ros.synthetic import generate_scene

        if not 0 <= i < self.count:
            raise IndexError(i)
        s = generate_scene(self.first_seed + i, self.size)
        return s.image, s.labels


@dataclass(frozen=True)
class Augment:
    """The LiteSeg training augmentation: random scale, pad-and-crop to ``crop`` (H, W), horizontal flip.

    Images are scaled bilinearly, labels with nearest neighbour; padding is black for the
    image and ``ignore_id`` for the labels, so padded pixels never count in the loss.
    """

    crop: tuple[int, int]
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    ignore_id: int = 255

    def __call__(
        self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        ch, cw = self.crop
        s = rng.uniform(*self.scale)
        h, w = labels.shape
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        if (nh, nw) != (h, w):
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
            labels = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
        ph, pw = max(ch - nh, 0), max(cw - nw, 0)
        if ph or pw:
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            labels = cv2.copyMakeBorder(labels, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=self.ignore_id)
        y = int(rng.integers(0, labels.shape[0] - ch + 1))
        x = int(rng.integers(0, labels.shape[1] - cw + 1))
        image, labels = image[y:y + ch, x:x + cw], labels[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(labels)
