"""Label sets: class names, RGB colours and the ignore id of each dataset.

A :class:`LabelSet` travels inside every model file, so a model always knows
what its class ids mean and how to draw them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_ros.core.errors import SegRosError


class LabelSetError(SegRosError):
    """A label set is malformed or unknown."""


@dataclass(frozen=True)
class LabelSet:
    """Names, colours and ignore id of a set of semantic classes.

    Class ids are ``0 .. num_classes - 1``; ``ignore_id`` (void) lies outside
    that range, is excluded from losses and metrics and is never predicted.
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_id: int = 255
    ignore_color: tuple[int, int, int] = (0, 0, 0)
    _lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) == 0:
            raise LabelSetError(f"label set {self.name!r} has no classes.")
        if len(self.names) != len(self.colors):
            raise LabelSetError(
                f"label set {self.name!r} has {len(self.names)} names but {len(self.colors)} colours."
            )
        if len(self.names) > 255:
            raise LabelSetError(
                f"label set {self.name!r} has {len(self.names)} classes; at most 255 fit in mono8 labels."
            )
        if not len(self.names) <= self.ignore_id <= 255:
            raise LabelSetError(
                f"label set {self.name!r}: ignore id {self.ignore_id} must lie in "
                f"[{len(self.names)}, 255], outside the class ids."
            )
        for c in (*self.colors, self.ignore_color):
            if len(c) != 3 or not all(0 <= int(v) <= 255 for v in c):
                raise LabelSetError(f"label set {self.name!r}: colour {c!r} is not an RGB triple in 0..255.")
        lut = np.zeros((256, 3), np.uint8)
        lut[: len(self.colors)] = np.asarray(self.colors, np.uint8)
        lut[self.ignore_id] = self.ignore_color
        lut.setflags(write=False)
        object.__setattr__(self, "_lut", lut)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def palette(self) -> np.ndarray:
        """256×3 uint8 colour lookup table indexed by label id (read-only)."""
        return self._lut

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """Map an (…, H, W) uint8 label array to (…, H, W, 3) uint8 RGB."""
        return self._lut[labels]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "names": list(self.names),
            "colors": [list(c) for c in self.colors],
            "ignore_id": self.ignore_id,
            "ignore_color": list(self.ignore_color),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelSet:
        try:
            return cls(
                name=str(d["name"]),
                names=tuple(str(n) for n in d["names"]),
                colors=tuple(tuple(int(v) for v in c) for c in d["colors"]),  # type: ignore[misc]
                ignore_id=int(d.get("ignore_id", 255)),
                ignore_color=tuple(int(v) for v in d.get("ignore_color", (0, 0, 0))),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise LabelSetError(f"label set description is malformed ({e!r}).") from e


CAMVID = LabelSet(
    name="camvid",
    names=(
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
        "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
    ),
    colors=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    ignore_id=11,
    ignore_color=(0, 0, 0),
)
"""CamVid in the 11-class SegNet split; void is id 11."""


# Cityscapes labels as defined by cityscapesscripts/helpers/labels.py:
# (name, labelId, trainId, colour). trainId 255 = ignored in evaluation.
_CITYSCAPES_LABELS: tuple[tuple[str, int, int, tuple[int, int, int]], ...] = (
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
)

_train = sorted((t, n, c) for n, _, t, c in _CITYSCAPES_LABELS if t != 255)
CITYSCAPES = LabelSet(
    name="cityscapes",
    names=tuple(n for _, n, _ in _train),
    colors=tuple(c for _, _, c in _train),
    ignore_id=255,
)
"""Cityscapes' 19 evaluated classes as trainIds 0..18; 255 is ignored."""

CITYSCAPES_LABEL_TO_TRAIN = np.full(256, 255, np.uint8)
"""Lookup table: Cityscapes labelId (0..33, as in ``*_labelIds.png``) → trainId."""
CITYSCAPES_TRAIN_TO_LABEL = np.zeros(256, np.uint8)
"""Lookup table: trainId (0..18) → Cityscapes labelId; 255 → 0 (unlabeled)."""
for _name, _lid, _tid, _ in _CITYSCAPES_LABELS:
    CITYSCAPES_LABEL_TO_TRAIN[_lid] = _tid
    if _tid != 255:
        CITYSCAPES_TRAIN_TO_LABEL[_tid] = _lid
for _lut in (CITYSCAPES_LABEL_TO_TRAIN, CITYSCAPES_TRAIN_TO_LABEL):
    _lut.setflags(write=False)
del _train, _name, _lid, _tid, _lut


def _voc_colormap(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC devkit colour map (bit-interleaved class id)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


VOC = LabelSet(
    name="voc",
    names=(
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
        "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
        "train", "tvmonitor",
    ),
    colors=_voc_colormap(21),
    ignore_id=255,
    ignore_color=(224, 224, 192),
)
"""PASCAL VOC 2012: background + 20 object classes; 255 marks object borders (ignored)."""

LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (CAMVID, CITYSCAPES, VOC)}


def get_label_set(name: str) -> LabelSet:
    """Return a built-in label set by name (``camvid``, ``cityscapes``, ``voc``)."""
    try:
        return LABEL_SETS[name.lower()]
    except KeyError:
        raise LabelSetError(f"unknown label set {name!r}; choose one of {', '.join(LABEL_SETS)}.") from None
