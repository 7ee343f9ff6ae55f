"""Dataset readers: image files, indexable training sets and frame sequences for replay.

A *dataset* is a sized, indexable collection of ``(image, labels)`` pairs:
``image`` (H, W, 3) uint8 RGB and ``labels`` (H, W) uint8 class ids (the label
set's ignore id marks void). Datasets: :class:`FolderDataset` (the CamVid
layout ``<root>/<split>/images/NAME.{jpg,png}`` + ``<root>/<split>/labels/NAME.png``)
and :class:`SyntheticDataset` (procedural scenes, see :mod:`seg_ros.synthetic`).
Training augments them (:mod:`seg_ros.train.augment`).

For replay (``seg-ros bag-from-dataset``) a *frame source* (:class:`FrameSource`) is a
sized iterable of :class:`SourceFrame` in time order, with a ``name`` and a ``label_set``:
:class:`CamVidSource`, :class:`CityscapesSource` (labelIds mapped to trainIds),
:class:`ImageFolderSource` (labels optional per frame) and :class:`SyntheticDriveSource`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from seg_ros.core.errors import InputError
from seg_ros.core.labels import LabelSet
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, check_frame_size
from seg_ros.core.paths import read_text_file, require_dir, require_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


_JPEG_EOI = b"\xff\xd9"


def check_image_file(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise InputError unless ``path`` is a regular image file whose header declares at most ``max_pixels``.

    Only the header is read (Pillow identifies the format and size without decoding), so a decompression
    bomb costs nothing. A JPEG must also be complete: libjpeg decodes a truncated one with only a warning
    and grey rows, so a file that does not end with the end-of-image marker is fully loaded by Pillow,
    which raises on truncation (and accepts data appended after a complete image).
    """
    from PIL import Image, UnidentifiedImageError

    p = require_file(path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget below decides
            with Image.open(p) as im:
                width, height = im.size
                check_frame_size(height, width, max_pixels, what=f"image {p}")
                if im.format == "JPEG" and not _ends_with_eoi(p):
                    im.load()
    except Image.DecompressionBombError:
        raise InputError(f"image {p} declares more pixels than the pixel budget of {max_pixels:,}; "
                         "raise --max-pixels if this size is real.") from None
    except UnidentifiedImageError:
        raise InputError(f"cannot read image {p}: not an image file.") from None
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for truncated or corrupt data
        raise InputError(f"image {p} is truncated or corrupt ({str(e).strip() or type(e).__name__}).") from None


def _ends_with_eoi(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - 64, 0))
        return f.read().rstrip(b"\x00\r\n\t ").endswith(_JPEG_EOI)


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; InputError if it is not a complete image within ``max_pixels``."""
    check_image_file(path, max_pixels)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}: unreadable or not an image.")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_labels(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a single-channel 8-bit label image (at most ``max_pixels``) as (H, W) uint8; InputError otherwise."""
    check_image_file(path, max_pixels)
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

    def __init__(self, root: str | os.PathLike, split: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.root, self.max_pixels = Path(root), max_pixels
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
        img, lab = read_image(img_path, self.max_pixels), read_labels(lab_path, self.max_pixels)
        if img.shape[:2] != lab.shape:
            raise InputError(f"label {lab_path.name} is {lab.shape[1]}x{lab.shape[0]} but image is "
                             f"{img.shape[1]}x{img.shape[0]}.")
        return img, lab

    def labels(self, i: int) -> np.ndarray:
        """Only the (H, W) uint8 label map of pair ``i`` (no image decoding)."""
        return read_labels(self.pairs[i][1], self.max_pixels)


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

    def labels(self, i: int) -> np.ndarray:
        """The (H, W) uint8 label map of scene ``i``."""
        return self[i][1]


# -- frame sources for replay (seg-ros bag-from-dataset) -----------------------------------------------------------

@dataclass
class SourceFrame:
    """One frame of a sequence: ``image`` (H, W, 3) uint8 RGB, ``labels`` (H, W) uint8 ids or None (unlabelled).

    ``intrinsics``: (fx, fy, cx, cy) in pixels when the dataset ships a calibration, else None.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    intrinsics: tuple[float, float, float, float] | None = None


def sequence_of(frame_name: str) -> str | None:
    """The sequence a dataset frame belongs to, from its name: the part before the first ``_`` (CamVid
    ``0016E5_07959`` → ``0016E5``, Cityscapes ``frankfurt_000000_000294`` → ``frankfurt``); None for a name
    without one (a synthetic drive's ``000012``)."""
    head, sep, _ = frame_name.partition("_")
    return head if sep and head else None


@runtime_checkable
class FrameSource(Protocol):
    """A sequence of frames for replay: ``len()`` frames, iterated in time order as :class:`SourceFrame`.

    ``name`` describes the source (recorded in a bag's metadata); ``label_set`` is the one its labels use.
    Iterating again starts again from the first frame.
    """

    name: str
    label_set: LabelSet

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[SourceFrame]: ...


def check_label_ids(labels: np.ndarray, label_set: LabelSet, what: str) -> None:
    """Raise InputError if ``labels`` holds an id that is neither a class of ``label_set`` nor its ignore id."""
    n = label_set.num_classes
    bad = labels >= n
    if bad.any():
        ids = np.unique(labels[bad])
        ids = ids[ids != label_set.ignore_id]
        if ids.size:
            raise InputError(f"{what} holds label ids {ids[:5].tolist()} outside the {label_set.name} label set "
                             f"(classes 0..{n - 1}, ignore id {label_set.ignore_id}).")


class CamVidSource:
    """A CamVid-layout split (``<root>/<split>/images`` + ``labels``) as frames in name order (= time order)."""

    def __init__(self, root: str | os.PathLike, split: str, label_set: LabelSet | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        from seg_ros.core.labels import CAMVID

        self.dataset = FolderDataset(root, split, max_pixels)
        self.label_set = label_set or CAMVID
        self.name = self.dataset.name

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[SourceFrame]:
        for i, (img_path, lab_path) in enumerate(self.dataset.pairs):
            image, labels = self.dataset[i]
            check_label_ids(labels, self.label_set, f"label image {lab_path}")
            yield SourceFrame(img_path.stem, image, labels)


class CityscapesSource:
    """A Cityscapes tree: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine/<split>/<city>/
    *_gtFine_labelIds.png`` mapped to the 19 trainIds (255 = ignore).

    Frames come city by city (cities in name order), in name order within a city (= time order for the
    ``*_leftImg8bit_sequence`` style names). A frame without its ``gtFine`` file is kept without labels.
    A ``camera/<split>/<city>/*_camera.json`` next to it supplies the intrinsics when present.
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", cities: Sequence[str] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        from seg_ros.core.labels import CITYSCAPES

        self.root, self.max_pixels = Path(root), max_pixels
        self.label_set = CITYSCAPES
        img_root = self.root / "leftImg8bit" / split
        if not img_root.is_dir():
            raise InputError(f"Cityscapes folder {img_root} does not exist; "
                             "expected <root>/leftImg8bit/<split>/<city>.")
        city_dirs = sorted(p for p in img_root.iterdir() if p.is_dir())
        if cities:
            missing = sorted(set(cities) - {p.name for p in city_dirs})
            if missing:
                raise InputError(f"Cityscapes split {split} in {self.root} has no city {missing[0]!r}; it has "
                                 f"{', '.join(p.name for p in city_dirs) or 'none'}.")
            city_dirs = [p for p in city_dirs if p.name in cities]
        self.items: list[tuple[Path, Path, Path]] = []  # image, labelIds, camera json
        for city in city_dirs:
            for img in sorted(city.glob("*_leftImg8bit.png")):
                prefix = img.name[: -len("_leftImg8bit.png")]
                gt = self.root / "gtFine" / split / city.name / f"{prefix}_gtFine_labelIds.png"
                cam = self.root / "camera" / split / city.name / f"{prefix}_camera.json"
                self.items.append((img, gt, cam))
        if not self.items:
            raise InputError(f"Cityscapes folder {img_root} holds no *_leftImg8bit.png images.")
        self.name = f"cityscapes/{split}"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[SourceFrame]:
        from seg_ros.core.labels import CITYSCAPES_LABEL_TO_TRAIN

        for img_path, gt_path, cam_path in self.items:
            image = read_image(img_path, self.max_pixels)
            labels = None
            if gt_path.exists():
                ids = read_labels(gt_path, self.max_pixels)
                if ids.shape != image.shape[:2]:
                    raise InputError(f"label image {gt_path.name} is {ids.shape[1]}x{ids.shape[0]} but its image is "
                                     f"{image.shape[1]}x{image.shape[0]}.")
                labels = CITYSCAPES_LABEL_TO_TRAIN[ids]
            yield SourceFrame(img_path.name[: -len("_leftImg8bit.png")], image, labels, _cityscapes_camera(cam_path))


def _cityscapes_camera(path: Path) -> tuple[float, float, float, float] | None:
    if not path.is_file():
        return None
    try:
        k = json.loads(read_text_file(path, "camera file"))["intrinsic"]
        return float(k["fx"]), float(k["fy"]), float(k["u0"]), float(k["v0"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"camera file {path} is not a Cityscapes camera JSON with intrinsic fx, fy, u0, v0 "
                         f"({e!r}).") from e


class ImageFolderSource:
    """Images of a folder in name order; labels, if a label folder is given, are ``<labels>/<stem>.png``.

    Images without a label file are kept without labels (scored as missing ground truth later).
    """

    def __init__(self, images: str | os.PathLike, labels: str | os.PathLike | None = None,
                 label_set: LabelSet | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        from seg_ros.core.labels import CAMVID

        self.images_dir, self.max_pixels = Path(images), max_pixels
        self.labels_dir = Path(labels) if labels is not None else None
        self.label_set = label_set or CAMVID
        require_dir(self.images_dir, "image folder")
        if self.labels_dir is not None and not self.labels_dir.is_dir():
            raise InputError(f"label folder {self.labels_dir} does not exist.")
        self.images = sorted(p for p in self.images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.images:
            raise InputError(f"image folder {self.images_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        self.name = self.images_dir.name

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[SourceFrame]:
        for p in self.images:
            image = read_image(p, self.max_pixels)
            labels = None
            lab_path = self.labels_dir / f"{p.stem}.png" if self.labels_dir is not None else None
            if lab_path is not None and lab_path.exists():
                labels = read_labels(lab_path, self.max_pixels)
                if labels.shape != image.shape[:2]:
                    raise InputError(f"label image {lab_path.name} is {labels.shape[1]}x{labels.shape[0]} but "
                                     f"image {p.name} is {image.shape[1]}x{image.shape[0]}.")
                check_label_ids(labels, self.label_set, f"label image {lab_path}")
            yield SourceFrame(p.stem, image, labels)


MAX_SYNTHETIC_FRAMES = 1_000_000
"""The longest synthetic drive: 28 hours of frames at 10 fps."""


class SyntheticDriveSource:
    """A synthetic drive (:func:`seg_ros.synthetic.generate_drive`): ``count`` coherent frames of size (H, W)."""

    def __init__(self, seed: int, count: int, size: tuple[int, int] = (360, 640),
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        from seg_ros.core.labels import CAMVID

        if not 1 <= count <= MAX_SYNTHETIC_FRAMES:
            raise InputError(f"a synthetic drive has 1 to {MAX_SYNTHETIC_FRAMES:,} frames, not {count:,}.")
        check_frame_size(size[0], size[1], max_pixels, what="the synthetic frame size")
        self.seed, self.count, self.size = int(seed), int(count), tuple(size)
        self.label_set = CAMVID
        self.name = f"synthetic drive seed {seed}, {count} frames at {size[0]}x{size[1]}"

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[SourceFrame]:
        from seg_ros.synthetic import generate_drive

        for i, scene in enumerate(generate_drive(self.seed, self.count, self.size)):  # type: ignore[arg-type]
            yield SourceFrame(f"{i:06d}", scene.image, scene.labels)
