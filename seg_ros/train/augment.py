"""The LiteSeg training augmentation (geometric, optionally photometric) and the dataset that applies it
reproducibly."""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, field
from statistics import NormalDist

import cv2
import numpy as np
from torch.utils.data import Dataset

LUMA_RGB = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights of R, G, B: the grey that contrast centres on and saturation blends towards."""


@dataclass(frozen=True)
class PhotometricParams:
    """One drawn colour jitter; every default leaves the image as it is.

    ``brightness``, ``contrast`` and ``saturation`` are factors, ``hue`` a rotation in degrees about the grey
    axis of RGB space, ``gamma`` the exponent of the curve 255·(v/255)^gamma on the input levels,
    ``blur_sigma`` and ``noise_sigma`` standard deviations in pixels and grey levels (0: off).
    """

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    gamma: float = 1.0
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0


@dataclass(frozen=True)
class PhotometricJitter:
    """The ranges of the training colour jitter, for models that must hold up under other light and times of day.

    Each of brightness U(0.75, 1.25) (a factor on every channel), contrast U(0.75, 1.25) (a factor around
    the image's mean luma grey), saturation U(0.7, 1.3) (a blend with each pixel's luma grey), hue
    U(−8, +8) degrees and gamma U(0.7, 1.5) is applied with probability ``p_colour`` = 0.5; then a Gaussian
    blur of sigma U(0.3, 1.2) pixels with probability ``p_blur`` = 0.2 and additive Gaussian noise of sigma
    U(1, 6) grey levels per channel with probability ``p_noise`` = 0.3.
    """

    brightness: tuple[float, float] = (0.75, 1.25)
    contrast: tuple[float, float] = (0.75, 1.25)
    saturation: tuple[float, float] = (0.7, 1.3)
    hue: tuple[float, float] = (-8.0, 8.0)
    gamma: tuple[float, float] = (0.7, 1.5)
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_sigma: tuple[float, float] = (1.0, 6.0)
    p_colour: float = 0.5
    p_blur: float = 0.2
    p_noise: float = 0.3

    def sample(self, rng: np.random.Generator) -> PhotometricParams:
        """Draw one jitter: 7 decisions, then 7 values (brightness, contrast, saturation, hue, gamma, blur,
        noise), always all 14 so the stream's length does not depend on the decisions."""
        ranges = (self.brightness, self.contrast, self.saturation, self.hue, self.gamma, self.blur_sigma,
                  self.noise_sigma)
        on = rng.random(7) < np.array([self.p_colour] * 5 + [self.p_blur, self.p_noise])
        values = rng.uniform(*np.array(ranges).T)
        identity = astuple(PhotometricParams())
        return PhotometricParams(*(float(v) if o else d for o, v, d in zip(on, values, identity)))

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8 RGB image → a jittered copy drawn from ``rng`` (the noise comes from it too)."""
        return photometric(image, self.sample(rng), rng)


def colour_matrix(p: PhotometricParams, mean_grey: float) -> np.ndarray:
    """The (3, 4) affine RGB map of brightness, then contrast around ``mean_grey`` (the mean luma the
    brightness step sees), then saturation, then hue: out = M[:, :3] @ rgb + M[:, 3]. Grey stays grey."""
    luma = np.array(LUMA_RGB)
    eye = np.eye(3)
    sat = p.saturation * eye + (1.0 - p.saturation) * np.outer(np.ones(3), luma)
    # Rodrigues rotation about (1, 1, 1)/√3: turns the hue and keeps every grey exactly
    k = np.full(3, 1.0 / math.sqrt(3.0))
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    t = math.radians(p.hue)
    hue = math.cos(t) * eye + (1.0 - math.cos(t)) * np.outer(k, k) + math.sin(t) * cross
    colour = hue @ sat
    offset = colour @ np.full(3, (1.0 - p.contrast) * p.brightness * mean_grey)
    return np.hstack([colour * (p.contrast * p.brightness), offset[:, None]])


def _half_normal_levels() -> np.ndarray:
    z = np.array([NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)])
    return (z * math.sqrt(0.5) / z.std()).astype(np.float32)


HALF_NORMAL_LEVELS = _half_normal_levels()
"""The 256 equiprobable quantiles of N(0, ½), (256,) float32, scaled to variance exactly ½. Two of them, picked
by uniform bytes, add up to a normal sample (|z| ≤ 4.1, CDF within 0.2 % of N(0, 1)'s) through two
``cv2.LUT`` look-ups: a few times faster than numpy's float32 normal generator on a whole image."""


def photometric(image: np.ndarray, p: PhotometricParams, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply the jitter ``p`` to an (H, W, 3) uint8 RGB image → a new (H, W, 3) uint8 image.

    In float32, rounded and clipped once at the end: the gamma curve as a float lookup of the input levels,
    then brightness, contrast, saturation and hue as one affine colour map, then blur, then noise
    (``noise_sigma`` > 0 draws 2 bytes per value from ``rng``).
    """
    if p == PhotometricParams():
        return image.copy()
    if p.gamma != 1.0:
        out = cv2.LUT(image, (255.0 * (np.arange(256) / 255.0) ** p.gamma).astype(np.float32))
    else:
        out = image.astype(np.float32)
    # in place where OpenCV allows it: fresh image-sized buffers cost page faults that outweigh the arithmetic
    if (p.brightness, p.contrast, p.saturation, p.hue) != (1.0, 1.0, 1.0, 0.0):
        mean_grey = float(np.dot(cv2.mean(out)[:3], LUMA_RGB))
        cv2.transform(out, colour_matrix(p, mean_grey).astype(np.float32), dst=out)
    if p.blur_sigma > 0:
        cv2.GaussianBlur(out, (0, 0), p.blur_sigma, dst=out)
    if p.noise_sigma > 0:
        if rng is None:
            raise ValueError("noise needs a random generator")
        pick = rng.integers(0, 256, (2, *out.shape), dtype=np.uint8)
        levels = HALF_NORMAL_LEVELS * np.float32(p.noise_sigma)
        noise = cv2.LUT(pick[0], levels)
        out += noise
        out += cv2.LUT(pick[1], levels, dst=noise)
    return np.clip(np.rint(out, out=out), 0.0, 255.0, out=out).astype(np.uint8)


@dataclass(frozen=True)
class Augment:
    """The LiteSeg training augmentation: random scale, pad-and-crop to ``crop`` (H, W), horizontal flip,
    and with ``photometric`` a colour jitter of the image only (:class:`PhotometricJitter`, drawn after the
    geometric steps; without it the random stream is exactly the geometric one).

    Images are scaled bilinearly, labels with nearest neighbour; padding is black for the
    image and ``ignore_id`` for the labels, so padded pixels never count in the loss.

    ``rare_classes`` (label ids) make a share ``rare_crop_p`` of the crops class-aware: when the scaled labels
    hold any of those classes, one of the present ones is drawn uniformly, then one of its pixels, and the crop
    is placed at random among the windows that contain that pixel. Thin and rare classes (poles, signs,
    cyclists) then reach the loss in far more batches than their share of the pixels. Without ``rare_classes``
    nothing extra is drawn, so the random stream is the plain one.
    """

    crop: tuple[int, int]
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    ignore_id: int = 255
    photometric: bool = False
    jitter: PhotometricJitter = field(default_factory=PhotometricJitter)
    rare_classes: tuple[int, ...] = ()
    rare_crop_p: float = 0.5

    def __call__(
        self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) uint8 labels → the (crop H, crop W) augmented pair."""
        image, labels = self.geometric(image, labels, rng)
        return (self.jitter(image, rng) if self.photometric else image), labels

    def geometric(
        self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """The scale, pad-and-crop and flip steps alone: the (crop H, crop W) pair, C-contiguous."""
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
        y, x = self._crop_origin(labels, rng)
        image, labels = image[y:y + ch, x:x + cw], labels[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(labels)

    def _crop_origin(self, labels: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        """The (y, x) of the crop's top-left corner in the scaled, padded ``labels``."""
        ch, cw = self.crop
        h, w = labels.shape
        if self.rare_classes and rng.random() < self.rare_crop_p:
            present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[list(self.rare_classes)])
            if present.size:
                cls = self.rare_classes[int(present[rng.integers(present.size)])]
                ys, xs = np.nonzero(labels == cls)
                k = int(rng.integers(ys.size))
                py, px = int(ys[k]), int(xs[k])
                # windows containing (py, px): top-left y in [py - ch + 1, py], clipped to the frame
                y = int(rng.integers(max(0, py - ch + 1), min(py, h - ch) + 1))
                x = int(rng.integers(max(0, px - cw + 1), min(px, w - cw) + 1))
                return y, x
        return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))


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
