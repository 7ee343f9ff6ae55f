"""The LiteSeg training augmentation and the dataset that applies it reproducibly."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from torch.utils.data import Dataset


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
        """(H, W, 3) uint8 image and (H, W) uint8 labels → the (crop H, crop W) augmented pair."""
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


class AugmentedDataset(Dataset):
    """``source``'s (image, labels) pairs through ``augment``; the random stream depends only on
    (seed, epoch, index), so a run is reproducible whatever the data-loading order and worker count.

    Set :attr:`epoch` (and, for fresh synthetic scenes, :attr:`source`) before each epoch.
    """

    def __init__(self, source, augment: Augment, seed: int):
        self.source, self.augment, self.seed, self.epoch = source, augment, seed, 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return self.augment(*self.source[i], rng)
