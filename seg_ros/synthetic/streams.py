"""Named random streams of a street: one independent stream of uniform numbers per generator loop.

Each stream is a child of the seed's ``np.random.SeedSequence``. Independent streams make a longer
street (a longer drive) hold exactly the same objects as a shorter one over their common stretch:
generating more of one kind of object never shifts the numbers of another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np

T = TypeVar("T")


class Draw:
    """A stream of uniform numbers in [0, 1), drawn from a generator in blocks.

    Far cheaper than many small generator calls. ``sub(n)`` hands out the next n numbers as a
    separate stream, so an object always consumes exactly n numbers of its parent stream whatever
    it does with them (objects may stop early); numbers needed beyond a stream's block come from a
    generator seeded by the stream's own first number.

    Attributes:
        values: the numbers of the current block.
        pos: index in ``values`` of the next number to hand out.
    """

    __slots__ = ("values", "pos", "_extra")

    def __init__(self, g: np.random.Generator | None, n: int = 40, values: list[float] | None = None) -> None:
        self.values = g.random(n).tolist() if values is None else values
        self.pos = 0
        self._extra: np.random.Generator | None = None

    def _more(self, k: int) -> None:
        if self.pos + k <= len(self.values):
            return
        if self._extra is None:
            self._extra = np.random.default_rng(int(self.values[0] * 2**53))
        self.values = self.values[self.pos:] + self._extra.random(max(64, k)).tolist()
        self.pos = 0

    def sub(self, n: int) -> Draw:
        """The next ``n`` numbers as a stream of their own."""
        i = self.pos
        if i + n > len(self.values):
            self._more(n)
            i = self.pos
        self.pos = i + n
        return Draw(None, n, self.values[i:i + n])

    def r(self) -> float:
        """The next number, in [0, 1)."""
        i = self.pos
        if i >= len(self.values):
            self._more(1)
            i = self.pos
        self.pos = i + 1
        return self.values[i]

    def u(self, a: float, b: float) -> float:
        """The next number scaled to [a, b)."""
        i = self.pos
        if i >= len(self.values):
            self._more(1)
            i = self.pos
        self.pos = i + 1
        return a + (b - a) * self.values[i]

    def exp(self, mean: float) -> float:
        """An exponentially distributed number with the given mean."""
        return -mean * math.log(1.0 - self.r())

    def pick(self, seq: Sequence[T]) -> T:
        """A uniformly chosen element of ``seq``."""
        i = self.pos
        if i >= len(self.values):
            self._more(1)
            i = self.pos
        self.pos = i + 1
        return seq[int(self.values[i] * len(seq))]

    def col(self, base: Sequence[float], jitter: float = 12.0, scale: float = 0.1) -> tuple[float, float, float]:
        """``base`` RGB with a random brightness scale (±scale) and per-channel jitter (±jitter).

        Not clipped: colours are clipped to 0..255 when drawn.
        """
        i = self.pos
        if i + 4 > len(self.values):
            self._more(4)
            i = self.pos
        self.pos = i + 4
        v = self.values
        k = 1.0 + scale * (2.0 * v[i] - 1.0)
        return (base[0] * k + jitter * (2.0 * v[i + 1] - 1.0), base[1] * k + jitter * (2.0 * v[i + 2] - 1.0),
                base[2] * k + jitter * (2.0 * v[i + 3] - 1.0))


class SideStreams(NamedTuple):
    """The streams of the objects along one side of the road."""

    buildings: Draw
    back_row: Draw
    trees: Draw
    poles: Draw
    signs: Draw
    fences: Draw
    parked: Draw
    pedestrians: Draw


class LaneStreams(NamedTuple):
    """The streams of the moving cars of one lane: those starting ahead of the camera and those behind it."""

    ahead: Draw
    behind: Draw


MAX_LANES = 4
"""Most driving lanes a street has; each has its own pair of traffic streams."""

# Which child of the seed's SeedSequence feeds which stream. The order is part of every scene: changing it
# changes the scene of every seed.
_CHILD_ORDER = (
    "style", "curve", "junctions", "skyline",
    "left.buildings", "right.buildings", "left.back_row", "right.back_row", "left.trees", "right.trees",
    "left.poles", "right.poles", "left.signs", "right.signs", "lights", "left.fences", "right.fences",
    "left.parked", "right.parked",
    *(f"lane{i}.{part}" for i in range(MAX_LANES) for part in LaneStreams._fields),
    "left.pedestrians", "right.pedestrians", "cyclists", "crossings",
)


@dataclass(frozen=True)
class WorldStreams:
    """All random streams of one street, by what they generate.

    Attributes:
        style: the street's look, road layout and camera (:func:`~seg_ros.synthetic.style.draw_style`).
        curve: the road's curvature.
        junctions: side roads.
        skyline: the far backdrop.
        left, right: objects along the left (d < 0) and right (d > 0) side of the road.
        lights: traffic lights before junctions.
        lanes: moving cars, per lane from the left (``MAX_LANES`` of them; narrower roads use the first ones).
        cyclists: cyclists on the road and the pavements.
        crossings: zebra crossings before junctions.
    """

    style: Draw
    curve: Draw
    junctions: Draw
    skyline: Draw
    left: SideStreams
    right: SideStreams
    lights: Draw
    lanes: tuple[LaneStreams, ...]
    cyclists: Draw
    crossings: Draw

    @classmethod
    def from_seed(cls, seed: int) -> WorldStreams:
        """The streams of ``seed`` (any integer; only its low 64 bits count)."""
        children = np.random.SeedSequence(seed & 0xFFFFFFFFFFFFFFFF).spawn(len(_CHILD_ORDER))
        named = {name: Draw(np.random.default_rng(c), 64) for name, c in zip(_CHILD_ORDER, children)}

        def group(kind: type, prefix: str):  # a NamedTuple of the streams named "prefix.field"
            return kind(*(named[f"{prefix}.{field}"] for field in kind._fields))

        return cls(
            style=named["style"], curve=named["curve"], junctions=named["junctions"], skyline=named["skyline"],
            left=group(SideStreams, "left"), right=group(SideStreams, "right"), lights=named["lights"],
            lanes=tuple(group(LaneStreams, f"lane{i}") for i in range(MAX_LANES)), cyclists=named["cyclists"],
            crossings=named["crossings"],
        )

    def side(self, side: int) -> SideStreams:
        """The streams of the left (``side`` < 0) or the right (``side`` > 0) side of the road."""
        return self.left if side < 0 else self.right
