"""Procedural forward-facing road scenes with exact per-pixel CamVid-11 labels.

These scenes feed the project's tests, the training of the shipped demo model and the
``seg-ros demo``. They exist so that the whole pipeline can run end to end without a
dataset download. They are **not** a stand-in for real data: a model trained only on them
will not segment real camera footage well.

How a scene is made: the seed gives a small 3-D street (a straight or gently curving road
with lanes, lane marks and parking strips, pavements with kerbs, rows of buildings with
windows and gaps, trees, street lights, signs and traffic lights, fences and hedges, parked
and moving cars, pedestrians and cyclists), and a pinhole camera 1.2–1.6 m above the road
renders it. The road surface is ray-cast per pixel (vectorised); every other object is made
of 3-D polygons and thick 3-D segments, projected and drawn far to near (painter's
algorithm). Colour and class id are drawn in one OpenCV call per polygon into an RGBA
buffer whose fourth channel is the label map, so labels match the drawn shapes exactly and
are never anti-aliased. Image-only effects (texture, shading, shadows, haze, blur, sensor
noise) change colours only. Every pixel gets a class id 0..10; the generator never emits
void (``CAMVID.ignore_id``).

Units: metres in the world, pixels in the image. Road coordinates are ``(d, y, s)``:
``d`` lateral (positive to the right of the road centre line), ``y`` up from the road
surface, ``s`` along the road. A road point's world position is ``(d + c(s), y, s)``,
where ``c`` is the road's lateral offset (zero for a straight road). The focal length is
proportional to the image width, so a larger image shows the same scene in more detail.

Only ``np.random.default_rng`` generators seeded from the seed are used (no global RNG, no
clock), so a seed gives identical arrays on any machine with the same numpy and OpenCV.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import cv2
import numpy as np

from seg_ros.core.labels import CAMVID

__all__ = [
    "BICYCLIST", "BUILDING", "CAR", "FENCE", "MIN_SIZE", "PAVEMENT", "PEDESTRIAN", "POLE", "ROAD", "SIGN", "SKY",
    "TREE", "Scene", "generate_drive", "generate_scene",
]

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
"""CamVid-11 class ids, in the order of ``CAMVID.names``."""

assert CAMVID.names == (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
), "seg_ros.synthetic class ids no longer match CAMVID.names"
assert CAMVID.ignore_id > BICYCLIST and PAVEMENT == ROAD + 1  # the ground pass relies on the latter

MIN_SIZE = 32
"""Smallest accepted image height and width, in pixels."""

_NEAR = 0.12  # near clipping plane, metres in front of the camera
_FAR = 130.0  # small objects farther than this (ground distance, m) are not drawn
_FAR_B = 200.0  # same for buildings
_AHEAD = 205.0  # the world reaches this far beyond the last camera position (m)
_SKYLINE = 230.0  # distance of the far skyline backdrop (m)
_HORIZON = 1000.0  # the road's curve is followed this far ahead (m)
_BEHIND = 15.0  # the world starts this far behind the first camera position (m)
_CULL_PX = 4.0  # objects whose characteristic size projects below this (px at width 480) are skipped
_LOD_PX = 3.0  # level-of-detail switch for details (px at width 480)
_SHIFT = 4  # fixed-point fraction bits for OpenCV polygon drawing
_ONE = 1 << _SHIFT
_LIM = float(1 << 26)  # clamp for projected coordinates, so fixed point stays inside int32
_STREAMS = 32  # independent random streams per world

# record kinds: convex / any polygon, back-face-culled convex polygon, batch of disjoint polygons,
# thick segment(s), batch of disjoint thick segments, ground shadow (image only)
# and a grid of facade windows generated at drawing time
_POLY, _NPOLY, _CULL, _BATCH, _SEG, _SEGB, _SHADOW, _GRID = range(8)
# painter layers, drawn in this order (far to near within a layer)
_L_BACK, _L_FRONT, _L_YARD, _L_FREE = range(4)
_INHERIT = -1  # label of a detail part: that of the previous labelled part of the same object


@dataclass(frozen=True)
class Scene:
    """One rendered frame.

    Attributes:
        image: H×W×3 uint8 RGB image.
        labels: H×W uint8 CamVid-11 class ids 0..10 (:data:`SKY` … :data:`BICYCLIST`); never void.
    """

    image: np.ndarray
    labels: np.ndarray


# --------------------------------------------------------------------------------------------------------------------
# small helpers


def _shade(c, k: float) -> tuple[float, float, float]:
    return (c[0] * k, c[1] * k, c[2] * k)


def _unit(n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    return [(math.cos(phase + 2 * math.pi * i / n), math.sin(phase + 2 * math.pi * i / n)) for i in range(n)]


_U12, _U10, _U8 = _unit(12), _unit(10), _unit(8, math.pi / 8)

# palettes (RGB)
_BUILDING_COLS = (
    (150, 88, 70), (172, 112, 86), (192, 180, 158), (212, 206, 194), (122, 122, 126), (162, 150, 134),
    (96, 80, 70), (202, 172, 128), (140, 150, 160), (182, 142, 112), (226, 218, 200), (110, 96, 88),
)
_CAR_COLS = (
    (232, 232, 234), (184, 186, 192), (38, 38, 42), (92, 94, 100), (165, 30, 32), (32, 62, 132),
    (42, 82, 52), (192, 172, 132), (22, 32, 62), (200, 200, 205), (70, 70, 75), (120, 20, 25),
)
_CLOTH_COLS = (
    (30, 32, 40), (50, 55, 70), (90, 92, 98), (150, 140, 120), (170, 40, 40), (40, 70, 140), (200, 200, 200),
    (60, 80, 50), (110, 70, 50), (20, 20, 22), (180, 150, 60), (120, 60, 110),
)
_SKIN_COLS = ((228, 190, 160), (200, 150, 120), (150, 105, 75), (100, 70, 50))
_HAIR_COLS = ((35, 28, 22), (90, 65, 40), (190, 165, 120), (130, 130, 130), (60, 40, 30))
_POLE_COLS = ((70, 72, 76), (120, 120, 124), (58, 78, 68), (36, 36, 40), (158, 160, 165), (95, 90, 85))
_FENCE_COLS = ((38, 38, 40), (50, 80, 60), (140, 108, 78), (128, 128, 134), (215, 215, 208), (100, 80, 60))
_LEAF_COLS = ((62, 92, 40), (82, 112, 52), (48, 74, 34), (100, 122, 62), (72, 100, 58), (132, 118, 56))


def _box(d0: float, d1: float, y0: float, y1: float, s0: float, s1: float) -> list[list[tuple]]:
    """Faces −d, +d, −s, +s and top of an axis-aligned box, counter-clockwise seen from outside."""
    return [
        [(d0, y0, s0), (d0, y0, s1), (d0, y1, s1), (d0, y1, s0)],
        [(d1, y0, s0), (d1, y1, s0), (d1, y1, s1), (d1, y0, s1)],
        [(d0, y0, s0), (d0, y1, s0), (d1, y1, s0), (d1, y0, s0)],
        [(d0, y0, s1), (d1, y0, s1), (d1, y1, s1), (d0, y1, s1)],
        [(d0, y1, s0), (d0, y1, s1), (d1, y1, s1), (d1, y1, s0)],
    ]


def _frustum(d0: float, d1: float, y0: float, y1: float, s0: float, s1: float,
             ind: float, is0: float, is1: float) -> list[list[tuple]]:
    """Like :func:`_box`, but the top is inset by ``ind`` laterally and by ``is0``/``is1`` at the s ends."""
    e0, e1, t0, t1 = d0 + ind, d1 - ind, s0 + is0, s1 - is1
    return [
        [(d0, y0, s0), (d0, y0, s1), (e0, y1, t1), (e0, y1, t0)],
        [(d1, y0, s0), (e1, y1, t0), (e1, y1, t1), (d1, y0, s1)],
        [(d0, y0, s0), (e0, y1, t0), (e1, y1, t0), (d1, y0, s0)],
        [(d0, y0, s1), (d1, y0, s1), (e1, y1, t1), (e0, y1, t1)],
        [(e0, y1, t0), (e0, y1, t1), (e1, y1, t1), (e1, y1, t0)],
    ]


def _inset(face: list[tuple], k: float, dy: float = 0.0) -> list[tuple]:
    """A polygon scaled by ``k`` about its vertex mean (winding kept) and shifted up by ``dy``."""
    n = len(face)
    cx = sum(p[0] for p in face) / n
    cy = sum(p[1] for p in face) / n
    cz = sum(p[2] for p in face) / n
    return [(cx + (p[0] - cx) * k, cy + (p[1] - cy) * k + dy, cz + (p[2] - cz) * k) for p in face]


def _sub_quad(face: list[tuple], fy: tuple[float, float], fa: tuple[float, float]) -> list[tuple]:
    """Part of a parallelogram face: fractions ``fy`` of its vertical edge and ``fa`` of the other.

    The result keeps the face's winding.
    """
    o, p1, p3 = face[0], face[1], face[3]
    e1 = (p1[0] - o[0], p1[1] - o[1], p1[2] - o[2])
    e3 = (p3[0] - o[0], p3[1] - o[1], p3[2] - o[2])
    (a0, a1), (b0, b1) = (fy, fa) if abs(e1[1]) > abs(e3[1]) else (fa, fy)

    def at(a: float, b: float) -> tuple[float, float, float]:
        return (o[0] + a * e1[0] + b * e3[0], o[1] + a * e1[1] + b * e3[1], o[2] + a * e1[2] + b * e3[2])

    return [at(a0, b0), at(a1, b0), at(a1, b1), at(a0, b1)]


def _sweep(d0: float, d1: float, s0: float, s1: float, t: tuple[float, float]) -> list[tuple[float, float]]:
    """Convex polygon swept by the rectangle [d0, d1] × [s0, s1] moving by ``t`` = (dd, ds) (a shadow)."""
    c = ((d0, s0), (d1, s0), (d1, s1), (d0, s1))
    # edges 0..3 (bottom, right, top, left): does the swept shape take this edge from the moved copy?
    moved = (-t[1] > 0, t[0] > 0, t[1] > 0, -t[0] > 0)
    out = []
    for i in range(4):
        prev, cur = moved[i - 1], moved[i]
        p = c[i]
        if prev != cur:
            out.append((p[0] + t[0], p[1] + t[1]) if prev else p)
        out.append((p[0] + t[0], p[1] + t[1]) if cur else p)
    return out


# --------------------------------------------------------------------------------------------------------------------
# geometry collection


class _Draw:
    """A stream of uniform numbers in [0, 1), drawn from a generator in blocks.

    Far cheaper than many small generator calls. ``sub(n)`` hands out the next n numbers as a
    separate stream, so an object always consumes exactly n numbers of its parent stream whatever
    it does with them (objects may stop early); numbers needed beyond a stream's block come from a
    generator seeded by the stream's own first number.
    """

    __slots__ = ("v", "i", "_g")

    def __init__(self, g: np.random.Generator | None, n: int = 40, v: list[float] | None = None) -> None:
        self.v = g.random(n).tolist() if v is None else v
        self.i = 0
        self._g: np.random.Generator | None = None

    def _more(self, k: int) -> None:
        if self.i + k <= len(self.v):
            return
        if self._g is None:
            self._g = np.random.default_rng(int(self.v[0] * 2**53))
        self.v = self.v[self.i:] + self._g.random(max(64, k)).tolist()
        self.i = 0

    def sub(self, n: int) -> _Draw:
        i = self.i
        if i + n > len(self.v):
            self._more(n)
            i = self.i
        self.i = i + n
        return _Draw(None, n, self.v[i:i + n])

    def r(self) -> float:
        i = self.i
        if i >= len(self.v):
            self._more(1)
            i = self.i
        self.i = i + 1
        return self.v[i]

    def u(self, a: float, b: float) -> float:
        i = self.i
        if i >= len(self.v):
            self._more(1)
            i = self.i
        self.i = i + 1
        return a + (b - a) * self.v[i]

    def exp(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.r())

    def pick(self, seq):
        i = self.i
        if i >= len(self.v):
            self._more(1)
            i = self.i
        self.i = i + 1
        return seq[int(self.v[i] * len(seq))]

    def col(self, base, jitter: float = 12.0, scale: float = 0.1) -> tuple[float, float, float]:
        """``base`` RGB with a random brightness scale (±scale) and per-channel jitter (±jitter).

        Not clipped: colours are clipped to 0..255 when drawn.
        """
        i = self.i
        if i + 4 > len(self.v):
            self._more(4)
            i = self.i
        self.i = i + 4
        v = self.v
        k = 1.0 + scale * (2.0 * v[i] - 1.0)
        return (base[0] * k + jitter * (2.0 * v[i + 1] - 1.0), base[1] * k + jitter * (2.0 * v[i + 2] - 1.0),
                base[2] * k + jitter * (2.0 * v[i + 3] - 1.0))


def _lod_reach(size: float) -> float:
    """Ground distance (m) beyond which a detail of ``size`` metres is never drawn (widest lens)."""
    return size * 0.95 * 480.0 / _LOD_PX + 2.0


class _Builder:
    """Collects objects as drawing records that index one shared vertex buffer (road coordinates).

    Every vertex belongs to exactly one record, and records are stored in vertex order, so
    per-record reductions over the buffer are single ``np.*.reduceat`` calls.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._cur: list = []
        self.nv = 0
        # records: (v0, verts per polygon, polygons or segments, kind, label, rgb, lod, width, min px)
        # lod > 0: drawn only if it projects to >= _LOD_PX; lod < 0: only if smaller
        self.recs: list[tuple] = []
        self.objs: list[tuple] = []
        self.grids: list[tuple] = []
        self._r0 = 0
        self._last = SKY

    def _add(self, pts) -> int:
        i = self.nv
        if isinstance(pts, np.ndarray):
            if self._cur:
                cur = self._cur
                self._chunks.append(np.fromiter(chain.from_iterable(cur), np.float64, 3 * len(cur)).reshape(-1, 3))
                self._cur = []
            a = pts.reshape(-1, 3)
            self._chunks.append(a)
            self.nv += a.shape[0]
        else:
            self._cur.extend(pts)
            self.nv += len(pts)
        return i

    def vertices(self) -> np.ndarray:
        if self._cur:
            cur = self._cur
            self._chunks.append(np.fromiter(chain.from_iterable(cur), np.float64, 3 * len(cur)).reshape(-1, 3))
            self._cur = []
        return np.concatenate(self._chunks) if self._chunks else np.zeros((0, 3))

    def _lab(self, lab: int) -> int:
        if lab == _INHERIT:
            return self._last
        self._last = lab
        return lab

    def poly(self, pts: list, lab: int, rgb, lod: float = 0.0, convex: bool = True) -> None:
        """One planar polygon from a list of (d, y, s) points."""
        self.recs.append((self._add(pts), len(pts), 1, _POLY if convex else _NPOLY, self._lab(lab), rgb, lod, 0.0,
                          0.0))

    def faces(self, polys: list, lab: int, rgb, cull: bool = True, lod: float = 0.0) -> None:
        """k polygons of n (d, y, s) points each, one record each (``rgb``: one colour or a list of k).

        ``cull``: skip a polygon seen from behind (its points run counter-clockwise seen from the front).
        """
        k, n = len(polys), len(polys[0])
        v0 = self._add([p for q in polys for p in q])
        lab = self._lab(lab)
        kind = _CULL if cull else _POLY
        many = isinstance(rgb, list)
        self.recs.extend((v0 + i * n, n, 1, kind, lab, rgb[i] if many else rgb, lod, 0.0, 0.0) for i in range(k))

    def batch(self, polys, lab: int, rgb, lod: float = 0.0) -> None:
        """k polygons of n points ((k, n, 3) array or list of lists) that never overlap; one call, one colour."""
        k = len(polys)
        if k:
            n = len(polys[0])
            v0 = self._add(polys if isinstance(polys, np.ndarray) else [p for q in polys for p in q])
            self.recs.append((v0, n, k, _BATCH, self._lab(lab), rgb, lod, 0.0, 0.0))

    def seg(self, a, b, width: float, lab: int, rgb, minpx: float = 1.0, lod: float = 0.0,
            disjoint: bool = False) -> None:
        """Thick segments from points ``a`` to ``b`` (lists of (d, y, s)), ``width`` metres.

        Drawn at least ``minpx`` pixels wide (at width 480) at any distance. ``disjoint`` segments
        never overlap and are drawn in one call.
        """
        k = len(a)
        if k == 0:
            return
        v0 = self._add([p for ab in zip(a, b) for p in ab])
        lab = self._lab(lab)
        if disjoint:
            self.recs.append((v0, 2, k, _SEGB, lab, rgb, lod, width, minpx))
        else:
            self.recs.extend((v0 + 2 * i, 2, 1, _SEG, lab, rgb, lod, width, minpx) for i in range(k))

    def grid(self, corners: list, params: tuple, lod: float) -> None:
        """A facade's window grid: ``corners`` bound it (4 points); ``params`` see _window_grid."""
        self.grids.append(params)
        self.recs.append((self._add(corners), 4, 1, _GRID, self._lab(BUILDING), (0, 0, 0), lod,
                          float(len(self.grids) - 1), 0.0))

    def shadow(self, pts: list, strength: float) -> None:
        """A ground polygon from (d, s) pairs that darkens the ground by ``strength`` (0..1); image only."""
        self.recs.append((self._add([(d, 0.0, s) for d, s in pts]), len(pts), 1, _SHADOW, self._last, (0, 0, 0), 0.0,
                          strength, 0.0))

    def begin(self) -> None:
        self._r0 = len(self.recs)
        self._last = SKY

    def end(self, layer: int, box: tuple[float, float, float, float], cull_m: float, vel: float = 0.0) -> None:
        """Close the current object.

        ``box``: footprint (d0, d1, s0, s1), metres, for ordering and culling; ``cull_m``: the object
        is skipped when this size projects below ``_CULL_PX``; ``vel``: speed along +s as a multiple of
        the camera speed.
        """
        if len(self.recs) > self._r0:
            self.objs.append((layer, box[0], box[1], box[2], box[3], cull_m, vel, self._r0, len(self.recs)))


def _wall(d: float, ss: list[float], y0: float, y1: float, normal: int) -> list[list[tuple]]:
    """Vertical quads in the plane d = const between consecutive ``ss``, facing ``normal`` (±1) along d."""
    if normal < 0:
        return [[(d, y0, a), (d, y0, e), (d, y1, e), (d, y1, a)] for a, e in zip(ss[:-1], ss[1:])]
    return [[(d, y0, a), (d, y1, a), (d, y1, e), (d, y0, e)] for a, e in zip(ss[:-1], ss[1:])]


@dataclass
class _Style:
    """Scene-wide look: road layout, colours, lighting and camera; all drawn from the seed."""

    lanes: int
    lane_w: float
    park: tuple[bool, bool]  # parking strip on the left / right
    half: float  # road half width (lanes + parking strips), m
    lane_lo: float  # d of the left edge of the driving lanes
    n_left: int  # lanes travelling towards -s (oncoming), counted from the left
    centre: tuple  # line between the two directions: (0 none / 1 single / 2 double / 3 dashed, rgb)
    lane_mark: tuple  # (half width, rgb, period, dash length) of lines between same-direction lanes
    edge_lines: bool
    pave: tuple[float, float]  # pavement width left / right, m
    urban: float  # 0 = leafy suburb, 1 = dense town
    road_rgb: tuple
    pave_rgb: tuple
    kerb_rgb: tuple
    verge_rgb: tuple
    road_tex: float
    slab: float
    sunny: bool
    sun: tuple[float, float]  # ground shadow offset per metre of height (dd, ds)
    shadow_k: float
    sun_side: float  # +1: faces pointing to +d are lit
    sky_top: tuple
    sky_hor: tuple
    clouds: float
    haze_rgb: tuple
    haze_k: float
    kc: np.ndarray  # global colour transform c -> c * kc + bc (gain, contrast, tint)
    bc: np.ndarray
    noise: float
    blur: float
    mirror: bool  # render mirrored (traffic on the other side)
    cam_h: float
    cam_d: float
    horizon: float  # horizon height as a fraction of the image height
    yaw: float
    roll: float
    focal: float  # focal length / image width
    cy_off: float  # principal point offset / image height
    jit: tuple  # camera shake: amplitudes (pitch, yaw, roll, height), phases, periods (frames)
    junctions: list  # (side, s0, s1)
    crossings: list  # (s0, s1) zebra crossings


# --------------------------------------------------------------------------------------------------------------------
# the world


class _World:
    """Geometry of a street from ``-_BEHIND`` to ``s_hi`` (metres along the road) plus its :class:`_Style`.

    ``full``: build everything (drives). Otherwise (single scenes) objects and details that can
    never be drawn from the first camera position are left out; their random numbers are still
    consumed, so everything else is the same either way, and a scene equals frame 0 of a drive.
    """

    def __init__(self, seed: int, s_hi: float, full: bool) -> None:
        # One independent stream per generator loop: a longer world (a longer drive) holds exactly the
        # same objects as a shorter one over their common stretch.
        seeds = np.random.SeedSequence(seed & 0xFFFFFFFFFFFFFFFF).spawn(_STREAMS)
        gs = [_Draw(np.random.default_rng(c), 64) for c in seeds]
        self.full = full
        self.s_lo, self.s_hi = -_BEHIND, s_hi
        self.s_small = s_hi - (_AHEAD - _FAR) + 10.0  # small objects are not drawn beyond _FAR anyway
        self.s_far = self.s_small + 1.3 * max(0.0, s_hi - _AHEAD)  # room for oncoming traffic in drives
        junctions = self._junctions(gs[2], s_hi + 50.0)  # beyond s_hi: objects near the end look ahead
        self.st = self._style(gs[0], junctions, gs[30])
        self._curve(gs[1])
        self.skyline = self._skyline(gs[3])
        b = _Builder()
        for i, side in enumerate((-1, 1)):
            self._back_row(b, gs[6 + i], side)
            self._buildings(b, gs[4 + i], side)
            self._trees(b, gs[8 + i], side)
            self._poles(b, gs[10 + i], side)
            self._signs(b, gs[12 + i], side)
            self._fences(b, gs[15 + i], side)
            self._parked(b, gs[17 + i], side)
            self._pedestrians(b, gs[27 + i], side)
        self._lights(b, gs[14])
        self._traffic(b, gs[19:27])
        self._cyclists(b, gs[29])
        self._finalise(b)

    def _near(self, s0: float, size: float) -> bool:
        """Whether a detail of ``size`` metres on an object starting at ``s0`` must be built."""
        return self.full or s0 < _lod_reach(size)

    def _hidden(self, d0: float, d1: float, s0: float, s1: float, cull_m: float, far: float = _FAR,
                height: float = 0.0, reach: float = 3.0) -> bool:
        """Whether an object (footprint box, metres) can be left out because it is never drawn.

        Only for single scenes (not ``full``): the test mirrors, conservatively, the culling of
        ``_Frame.objects`` for the first camera position. ``height`` extends the box by the object's
        shadow, ``reach`` by parts sticking out of the box (lamp arms); ``cull_m`` must not be
        smaller than the object's own.
        """
        if self.full:
            return False
        st = self.st
        dd = max(d0 - st.cam_d, st.cam_d - d1, 0.0)
        dz = max(s0, 0.0)
        dist = math.sqrt(dd * dd + dz * dz)
        if dist >= far * 1.001 or st.focal * 480.0 * cull_m / max(dist, 1.0) < _CULL_PX * 0.99:
            return True
        if st.sunny and height > 0:  # the shadow may be visible even if the object is not
            sd, ss = st.sun[0] * height, st.sun[1] * height
            d0, d1 = min(d0, d0 + sd), max(d1, d1 + sd)
            s0, s1 = min(s0, s0 + ss), max(s1, s1 + ss)
        if s1 < -2.0:
            return True
        # outside a generous wedge around the horizontal field of view
        c0, c1 = self._c(s0), self._c(s1)
        lo, hi = d0 + min(c0, c1) - st.cam_d, d1 + max(c0, c1) - st.cam_d
        wedge = max(s1, 0.0) * (0.5 / st.focal + 0.15) + reach + 1.0
        return lo > wedge or hi < -wedge

    def _finalise(self, b: _Builder) -> None:
        v = b.vertices()
        self.vd, self.vy, self.vs = v[:, 0].copy(), v[:, 1].copy(), v[:, 2].copy()
        v0, n, k, kind, lab, rgb, lod, wd, minpx = zip(*b.recs)
        self.r_v0 = np.array(v0, np.int64)
        self.r_n = np.array(n, np.int64)
        self.r_k = np.array(k, np.int64)
        self.r_kind = np.array(kind, np.int64)
        self.r_lab = np.array(lab, np.int64)
        self.r_rgb = np.array(rgb, np.float64)
        self.r_lod = np.array(lod, np.float64)
        self.r_w = np.array(wd, np.float64)
        self.r_minpx = np.array(minpx, np.float64)
        self.l_v0, self.l_n, self.l_k, self.l_kind = v0, n, k, kind  # tuples for the drawing loop
        self.grids = b.grids
        o = np.array(b.objs, np.float64)
        self.o_layer = o[:, 0].astype(np.int64)
        self.o_box = o[:, 1:5]
        self.o_cull = o[:, 5]
        self.o_vel = o[:, 6]
        self.o_r0, self.o_r1 = o[:, 7].astype(np.int64), o[:, 8].astype(np.int64)
        self.o_v0 = self.r_v0[self.o_r0]
        nverts = self.r_n * self.r_k
        self.dynamic = bool(np.any(self.o_vel != 0))
        if self.dynamic:
            r_vel = np.repeat(self.o_vel, self.o_r1 - self.o_r0)
            self.vvel = np.repeat(r_vel, nverts)
        # next vertex within the same polygon, for signed areas
        i = np.arange(len(v))
        n_of_v = np.repeat(self.r_n, nverts)
        start = np.repeat(self.r_v0, nverts)
        first = start + ((i - start) // n_of_v) * n_of_v
        self.v_next = np.where(i + 1 - first >= n_of_v, first, i + 1)

    # layout ------------------------------------------------------------------
    def _junctions(self, g: _Draw, s_hi: float) -> list:
        out = []
        s = g.u(-10.0, 120.0)
        while s < s_hi:
            r = g.sub(4)
            side = 1 if r.r() < 0.5 else -1
            w = r.u(7.0, 12.0)
            out.append((side, s, s + w))
            if r.r() < 0.3:
                out.append((-side, s + r.u(-2.0, 2.0), s + w))
            s += w + g.u(60.0, 220.0)
        return out

    def _style(self, g: _Draw, junctions: list, g_cross: _Draw) -> _Style:
        r = g.sub(120)
        lanes = r.pick((1, 2, 2, 2, 2, 3, 4))
        lane_w = r.u(2.8, 3.5)
        park = (r.r() < 0.35, r.r() < 0.45)
        pw = 2.2
        half = (lanes * lane_w + pw * (park[0] + park[1])) / 2
        lane_lo = -half + pw * park[0]
        two_way = lanes >= 2 and r.r() < 0.8
        n_left = lanes // 2 if two_way else 0
        white = r.col((232, 232, 228), 6, 0.05)
        yellow = r.col((222, 186, 60), 8, 0.05)
        dash = r.u(1.5, 4.0)
        period = dash + r.u(3.0, 8.0)
        centre = (r.pick((1, 2, 3)) if two_way else 0, yellow if r.r() < 0.4 else white)
        edge = r.r() < 0.6
        urban = r.r()
        # the camera's lane: mostly the outermost one of its direction, next to the kerb
        ego = lanes - 1 if r.r() < 0.6 else n_left + int(r.r() * max(1, lanes - n_left))
        pave = (r.u(2.5, 4.5 + 3.0 * urban), r.u(2.5, 4.5 + 3.0 * urban))
        asphalt = r.u(70, 130)
        road_rgb = r.col((asphalt, asphalt, asphalt * 1.04), 6, 0.02)
        pave_rgb = r.col(r.pick(((150, 146, 140), (166, 160, 150), (160, 118, 104), (128, 128, 130),
                                 (182, 172, 156))), 10, 0.08)
        kerb_rgb = _shade(pave_rgb, r.u(1.05, 1.25))
        verge_rgb = r.col(r.pick((pave_rgb, (112, 118, 92), (140, 132, 118))), 8, 0.05)
        sunny = r.r() < 0.55
        elev = r.u(0.35, 0.9)  # sun elevation, rad
        az = r.u(-1.2, 1.2) + (math.pi if r.r() < 0.5 else 0.0)
        k = 1.0 / math.tan(elev)
        sun = (k * math.sin(az), k * math.cos(az))
        if sunny:
            sky_top = r.col((88, 138, 206), 14, 0.1)
            sky_hor = r.col((182, 204, 226), 10, 0.06)
        else:
            v = r.u(170, 232)
            sky_top = r.col((v - 16, v - 10, v), 6, 0.04)
            sky_hor = r.col((v + 10, v + 12, v + 14), 5, 0.03)
        haze = tuple(0.5 * a + 0.5 * b for a, b in zip(sky_hor, (150, 152, 158)))
        gain, contrast = r.u(0.82, 1.12), r.u(0.8, 1.1)
        tint = np.array([r.u(0.94, 1.06) for _ in range(3)])
        return _Style(
            lanes=lanes, lane_w=lane_w, park=park, half=half, lane_lo=lane_lo, n_left=n_left, centre=centre,
            lane_mark=(0.065, white, period, dash), edge_lines=edge, pave=pave, urban=urban, road_rgb=road_rgb,
            pave_rgb=pave_rgb, kerb_rgb=kerb_rgb, verge_rgb=verge_rgb, road_tex=r.u(0.05, 0.14),
            slab=r.u(0.6, 1.2) if r.r() < 0.6 else 0.0, sunny=sunny, sun=sun,
            shadow_k=r.u(0.35, 0.55) if sunny else 0.0, sun_side=-1.0 if sun[0] > 0 else 1.0,
            sky_top=sky_top, sky_hor=sky_hor, clouds=r.u(0.0, 0.8) if sunny else r.u(0.0, 0.3),
            haze_rgb=haze, haze_k=r.u(250.0, 700.0), kc=contrast * gain * tint,
            bc=128.0 * (1.0 - contrast) * gain * tint, noise=r.u(1.5, 5.0), blur=r.u(0.4, 0.9), mirror=r.r() < 0.5,
            cam_h=r.u(1.2, 1.6),
            cam_d=lane_lo + (ego + 0.5) * lane_w + r.u(-0.3, 0.3),
            horizon=r.u(0.42, 0.54), yaw=r.u(-0.035, 0.035), roll=r.u(-0.025, 0.025), focal=r.u(0.74, 0.95),
            cy_off=r.u(-0.03, 0.03),
            jit=(r.u(0.002, 0.008), r.u(0.002, 0.01), r.u(0.002, 0.008), r.u(0.0, 0.02),
                 *(r.u(0, 2 * math.pi) for _ in range(4)), *(r.u(15.0, 60.0) for _ in range(4))),
            junctions=junctions,
            crossings=[(s0 - 5.0, s0 - 2.0) for _, s0, _ in junctions if g_cross.r() < 0.4],
        )

    def _curve(self, g: _Draw) -> None:
        """Lateral offset c(s) of the road, tabulated every 2 m (piecewise constant curvature)."""
        n = int((self.s_hi + _HORIZON + 100.0 - self.s_lo) / 2.0) + 2
        self.cs = self.s_lo + 2.0 * np.arange(n)
        self.curved = bool(g.r() < 0.45)
        cv = np.zeros(n)
        if self.curved:
            head0 = g.u(-0.05, 0.05)
            lengths, curvatures = [], []
            while sum(lengths) < n:  # stretches of 50-180 m with constant curvature (1/m)
                r = g.sub(4)
                lengths.append(int(r.u(25, 90)))
                curvatures.append(0.0 if r.r() < 0.3 else r.u(1 / 700, 1 / 220) * (1 if r.r() < 0.5 else -1))
            k = np.repeat(curvatures, lengths)[:n]
            head = np.clip(head0 + 2.0 * np.cumsum(k), -0.12, 0.12)  # heading (dc/ds), at most ~7°
            cv[1:] = np.cumsum(2.0 * head[:-1])
        self.cv = cv - np.interp(0.0, self.cs, cv)
        self.cv32 = self.cv.astype(np.float32)
        self._cl = self.cv.tolist()
        self._nc = len(self._cl)

    def _c(self, s: float) -> float:
        """c(s) for a Python float (much cheaper than np.interp on a scalar)."""
        if not self.curved:
            return 0.0
        x = min(max((s - self.s_lo) * 0.5, 0.0), self._nc - 1.000001)
        i = int(x)
        c = self._cl
        return c[i] + (c[i + 1] - c[i]) * (x - i)

    def curve(self, s):
        """Lateral offset c(s) of the road centre (m) for scalar or array ``s``."""
        if not self.curved:
            return np.zeros_like(s) if isinstance(s, np.ndarray) else 0.0
        return np.interp(s, self.cs, self.cv)

    def heading(self, s: float) -> float:
        if not self.curved:
            return 0.0
        return float((np.interp(s + 1.0, self.cs, self.cv) - np.interp(s - 1.0, self.cs, self.cv)) / 2.0)

    def _in_junction(self, side: int, s0: float, s1: float, pad: float = 0.0) -> float | None:
        """End s of a junction on ``side`` overlapping [s0, s1], else None."""
        for js, a, e in self.st.junctions:
            if js == side and s1 > a - pad and s0 < e + pad:
                return e + pad
        return None

    def _line(self, side: int) -> float:
        """|d| of the back edge of the pavement on ``side``."""
        return self.st.half + self.st.pave[0 if side < 0 else 1]

    # buildings ---------------------------------------------------------------
    def _skyline(self, g: _Draw) -> list:
        """Far background blocks (d0, d1, height, rgb, is_tree), drawn at a fixed distance ahead."""
        out = []
        d = -300.0
        r = g.sub(600)
        while d < 300.0 and r.i < 590:
            w = r.u(8, 40)
            tree = r.r() < 0.35
            h = r.u(4, 12) if tree else r.u(6, 40)
            rgb = r.col((70, 92, 62) if tree else r.pick(_BUILDING_COLS), 10, 0.1)
            out.append((d, d + w, h, rgb, tree))
            d += w * r.u(0.7, 1.0)
        return out

    def _building(self, b: _Builder, g: _Draw, side: int, x: float, s0: float, s1: float, h: float,
                  layer: int, detail: bool) -> None:
        st = self.st
        r = g.sub(40)
        depth = r.u(8.0, 16.0)
        d_in, d_out = side * x, side * (x + depth)
        d0, d1 = min(d_in, d_out), max(d_in, d_out)
        if self._hidden(d0, d1, s0, s1, 2.0, _FAR_B, h):
            return
        base = r.col(r.pick(_BUILDING_COLS), 14, 0.12)
        storey = r.u(2.8, 3.6)
        style = r.pick((0, 1, 2))  # plain windows / shop front + windows / windows + storey bands
        trim = _shade(base, 1.2 if r.r() < 0.5 else 0.7)
        wcol = r.col(r.pick(((46, 54, 66), (70, 80, 96), (30, 34, 40), (96, 112, 128))), 10)
        shop = r.col(r.pick(((40, 45, 52), (70, 60, 50), (30, 30, 34))), 10)
        band = r.col(r.pick(((150, 30, 30), (30, 50, 110), (20, 20, 20), (200, 190, 170), (40, 90, 60))), 12)
        wl = r.u(0.9, 1.7)
        pitch = wl + r.u(0.8, 2.2)
        wh = storey * r.u(0.4, 0.6)
        lit = (1.08 if side * st.sun_side < 0 else 0.78) if st.sunny else 0.95
        b.begin()
        if st.sunny:
            b.shadow(_sweep(d0, d1, s0, s1, (st.sun[0] * h, st.sun[1] * h)), st.shadow_k)
        end_rgb = _shade(base, 0.86 if st.sunny else 0.9)
        b.faces([[(d0, 0.0, s0), (d0, h, s0), (d1, h, s0), (d1, 0.0, s0)],
                 [(d0, 0.0, s1), (d1, 0.0, s1), (d1, h, s1), (d0, h, s1)]], BUILDING, end_rgb)
        # facade in pieces of <= 8 m so that it follows the road curve; it always faces the camera
        n = max(1, int(math.ceil((s1 - s0) / 8.0)))
        ss = [s0 + (s1 - s0) * i / n for i in range(n + 1)]
        b.batch(_wall(d_in, ss, 0.0, h, -side), BUILDING, _shade(base, lit))
        if detail:
            if style == 1 and s1 - s0 > 3.0 and self._near(s0, 0.5):
                sh = [min(max(v, s0 + 0.4), s1 - 0.4) for v in ss]
                b.batch(_wall(d_in, sh, 0.35, storey * 0.72, -side), BUILDING, shop, lod=0.5)
                sh = [min(max(v, s0 + 0.1), s1 - 0.1) for v in ss]
                b.batch(_wall(d_in, sh, storey * 0.76, storey * 0.96, -side), BUILDING, band, lod=0.5)
            elif style == 2 and self._near(s0, 0.3):
                ys = [storey * i for i in range(1, int(h / storey))]
                b.seg([(d_in, y, s0 + 0.05) for y in ys], [(d_in, y, s1 - 0.05) for y in ys], 0.18, BUILDING,
                      _shade(base, 0.8), minpx=0.0, lod=0.3, disjoint=True)
            first = 1 if style == 1 else 0
            n_s = int((s1 - s0 - 1.0) / pitch)
            n_y = int((h - 1.0) / storey)
            if n_s >= 1 and n_y > first:
                s_a = s0 + (s1 - s0 - n_s * pitch) / 2 + (pitch - wl) / 2
                y_a = storey * (first + 0.35)
                dw = side * (x - 0.03)
                y_b = y_a + storey * (n_y - first - 1) + wh
                s_b = s_a + pitch * (n_s - 1) + wl
                if self._near(s0, 0.6):
                    b.grid([(dw, y_a, s_a), (dw, y_a, s_b), (dw, y_b, s_b), (dw, y_b, s_a)],
                           _window_grid(dw, s_a, pitch, n_s, y_a, storey, n_y - first, wl, wh, trim, wcol), lod=0.6)
        b.end(layer, (d0, d1, s0, s1), 2.0)

    def _buildings(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        line = self._line(side)
        s = -30.0 - g.u(0, 15)
        setback = 0.0
        while s < self.s_hi:
            j = self._in_junction(side, s, s + 4.0, pad=1.0)
            if j is not None:
                s = j + g.u(0.0, 3.0)
                continue
            r = g.sub(16)
            if r.r() < 0.25:
                setback = 0.0 if r.r() < 0.25 + 0.4 * st.urban else r.u(1.5, 8.0)
            length = r.u(8.0, 32.0) if r.r() < 0.6 else r.u(5.0, 12.0)
            for js, a, _ in st.junctions:
                if js == side and s + length > a - 1.0 and s < a:
                    length = max(2.0, a - 1.0 - s)
            h = r.u(6.0, 12.0) if r.r() > st.urban else r.u(9.0, 24.0)
            if r.r() < 0.15:
                h = r.u(3.5, 6.0)
            self._building(b, g, side, line + setback, s, s + length, h, _L_FRONT, True)
            if setback > 0.6:
                self._yard(b, g, side, line, setback, s, s + length)
            s += length
            if r.r() < 0.5 - 0.35 * st.urban:
                gap = r.u(2.0, 14.0)
                if r.r() < 0.7:
                    self._yard(b, g, side, line, max(setback, 1.5), s, s + gap)
                s += gap

    def _yard(self, b: _Builder, g: _Draw, side: int, line: float, depth: float, s0: float,
              s1: float) -> None:
        """Front-garden edge: a fence or a hedge along the pavement back line, maybe a tree."""
        if s1 - s0 < 1.0:
            return
        r = g.sub(40)
        kind = r.r()
        if kind < 0.45:
            self._fence(b, g, side, line + 0.15, s0, s1, _L_YARD)
        elif kind < 0.8:
            hh = r.u(0.8, 1.9)
            rgb = r.col(r.pick(_LEAF_COLS), 10)
            dd = side * (line + 0.3)
            dd2 = side * (line + 0.3 + r.u(0.5, 1.0))
            p = s0
            while p < s1 - 0.5:  # pieces of <= 5 m, for painter ordering and the road curve
                q = min(s1, p + 5.0)
                if self._hidden(min(dd, dd2), max(dd, dd2), p, q, 0.5):
                    p = q
                    continue
                b.begin()
                m = max(2, int(q - p) + 1)
                top = [(dd, hh + 0.2 * (r.v[(i * 7 + int(p)) % 40] - 0.5), p + (q - p) * i / (m - 1)) for i in range(m)]
                b.poly([(dd, 0.0, p)] + top + [(dd, 0.0, q)], TREE, rgb, convex=False)
                if p == s0:
                    b.poly([(dd, 0.0, s0), (dd, hh, s0), (dd2, hh, s0), (dd2, 0.0, s0)], TREE, _shade(rgb, 0.8))
                b.end(_L_YARD, (min(dd, dd2), max(dd, dd2), p, q), 0.5)
                p = q
        if r.r() < 0.45 and depth > 2.0:
            self._tree(b, g, side * (line + r.u(1.0, depth)), r.u(s0, s1), _L_YARD, big=True)

    def _back_row(self, b: _Builder, g: _Draw, side: int) -> None:
        line = self._line(side) + g.u(12.0, 22.0)
        s = -40.0 - g.u(0, 20)
        while s < self.s_hi + 20.0:
            r = g.sub(12)
            length = r.u(10.0, 40.0)
            if r.r() < 0.3:  # a clump of tall trees instead of a building
                for _ in range(1 + int(r.r() * 3)):
                    self._tree(b, g, side * (line + r.u(-4.0, 4.0)), s + r.u(0, length), _L_BACK, big=True)
            else:
                self._building(b, g, side, line + r.u(0, 6), s, s + length, r.u(8.0, 30.0), _L_BACK, r.r() < 0.6)
            s += length + (r.u(1.0, 10.0) if r.r() < 0.3 else 0.0)

    # street furniture --------------------------------------------------------
    def _tree(self, b: _Builder, g: _Draw, d: float, s: float, layer: int, big: bool = False) -> None:
        st = self.st
        r = g.sub(100)
        h = r.u(5.0, 11.0) if big else r.u(3.5, 8.5)
        trunk_w = r.u(0.22, 0.45) * (1.2 if big else 1.0)
        crown_r = r.u(1.4, 2.6) * (1.3 if big else 1.0)
        crown_y = h - crown_r * 0.8
        half = crown_r * 1.8
        if self._hidden(d - half, d + half, s - 0.3, s + 0.3, crown_r, _FAR_B if layer == _L_BACK else _FAR, h):
            return
        bark = r.col((84, 68, 54), 10, 0.15)
        leaf = r.col(r.pick(_LEAF_COLS), 12, 0.15)
        nb = 2 + int(r.r() * 3)
        b.begin()
        if st.sunny:
            dx, dz = st.sun[0] * crown_y, st.sun[1] * crown_y
            b.shadow([(d + dx + crown_r * c, s + dz + crown_r * 0.8 * sn) for c, sn in _U10], st.shadow_k * 0.8)
        b.seg([(d, 0.0, s)], [(d, crown_y + crown_r * 0.2, s)], trunk_w, TREE, bark, minpx=1.5)
        v = r.v
        for i in range(nb):
            o = 20 + 16 * i
            if i == 0:
                ox, oy, rad = 0.0, 0.0, crown_r
            else:
                ox = (2 * v[o + 12] - 1) * 0.8 * crown_r
                oy = (v[o + 13] * 1.1 - 0.5) * crown_r
                rad = crown_r * (0.45 + 0.35 * v[o + 14])
            sh = 1.0 + 0.12 * (oy / crown_r) + 0.24 * (v[o + 15] - 0.5)
            pts = [(d + ox + rad * (0.75 + 0.4 * v[o + k]) * c, crown_y + oy + rad * 0.9 * (0.75 + 0.4 * v[o + k]) * sn,
                    s - 0.05 * i) for k, (c, sn) in enumerate(_U12)]
            b.poly(pts, TREE, _shade(leaf, sh), convex=False)
        b.end(layer, (d - half, d + half, s - 0.3, s + 0.3), crown_r)

    def _trees(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        s = self.s_lo + g.u(0, 10)
        pave = st.pave[0 if side < 0 else 1]
        while s < self.s_small:
            r = g.sub(40)
            if r.r() < 0.45 + 0.35 * (1 - st.urban):  # a row of trees along the kerb
                spacing = r.u(6.0, 14.0)
                n = 2 + int(r.r() * 7)
                off = r.u(0.6, max(0.7, min(1.4, pave - 0.5)))
                for i in range(n):
                    si = s + i * spacing + r.u(-1, 1)
                    if self._in_junction(side, si - 2, si + 2) is None:
                        self._tree(b, g, side * (st.half + off), si, _L_FREE)
                s += n * spacing
            s += r.u(10.0, 60.0)

    def _pole(self, b: _Builder, r: _Draw, d: float, s: float, side: int, lamp: bool) -> float:
        """A street light or a sign post; returns the post width (m)."""
        rgb = r.col(r.pick(_POLE_COLS), 8, 0.1)
        st = self.st
        if lamp:
            h = r.u(6.0, 10.0)
            w = r.u(0.2, 0.32)
            if st.sunny:
                b.shadow([(d - 0.1, s), (d + 0.1, s), (d + 0.1 + st.sun[0] * h, s + st.sun[1] * h),
                          (d - 0.1 + st.sun[0] * h, s + st.sun[1] * h)], st.shadow_k * 0.7)
            b.seg([(d, 0.0, s)], [(d, h, s)], w, POLE, rgb, minpx=3.0)
            de = d - side * r.u(0.8, 2.6)
            b.seg([(d, h - 0.3, s)], [(de, h + 0.15, s)], w * 0.5, POLE, rgb, minpx=1.5)
            b.poly([(de - 0.35, h + 0.2, s - 0.02), (de + 0.35, h + 0.2, s - 0.02), (de + 0.25, h - 0.02, s - 0.02),
                    (de - 0.25, h - 0.02, s - 0.02)], POLE, _shade(rgb, 0.8))
        else:
            w = r.u(0.12, 0.18)
            b.seg([(d, 0.0, s)], [(d, r.u(2.2, 3.4), s)], w, POLE, rgb, minpx=3.0)
        return w

    def _sign_plate(self, b: _Builder, r: _Draw, d: float, y: float, s: float) -> float:
        """A sign plate centred at (d, y, s) facing -s; returns its height (m)."""
        kind = r.pick((0, 1, 2, 3, 4))
        s = s - 0.06
        if kind == 0:  # round: red ring, white or blue disc
            rad = r.u(0.3, 0.42)
            b.poly([(d + rad * c, y + rad * sn, s) for c, sn in _U12], SIGN, (196, 32, 36))
            b.poly([(d + 0.75 * rad * c, y + 0.75 * rad * sn, s - 0.005) for c, sn in _U12], SIGN,
                   r.pick(((236, 236, 236), (40, 70, 170))), lod=0.3)
            return 2 * rad
        if kind == 1:  # triangle warning sign
            rad = r.u(0.45, 0.6)
            if r.r() < 0.8:
                pts = [(d - rad, y - 0.4 * rad, s), (d + rad, y - 0.4 * rad, s), (d, y + 0.9 * rad, s)]
            else:
                pts = [(d - rad, y + 0.4 * rad, s), (d, y - 0.9 * rad, s), (d + rad, y + 0.4 * rad, s)]
            b.poly(pts, SIGN, (200, 36, 40))
            cy = sum(p[1] for p in pts) / 3
            b.poly([(d + 0.62 * (p[0] - d), cy + 0.62 * (p[1] - cy), s - 0.005) for p in pts], SIGN, (238, 236, 230),
                   lod=0.3)
            return 1.3 * rad
        if kind == 2:  # octagon
            rad = r.u(0.35, 0.45)
            b.poly([(d + rad * c, y + rad * sn, s) for c, sn in _U8], SIGN, (190, 28, 34))
            return 2 * rad
        # rectangles: blue info, white, green direction, yellow, brown
        wd = r.u(0.5, 1.4) if kind == 4 else r.u(0.45, 0.8)
        ht = r.u(0.45, 0.9)
        rgb = r.pick(((34, 72, 160), (236, 236, 232), (36, 116, 70), (226, 188, 40), (110, 70, 40)))
        b.poly([(d - wd / 2, y - ht / 2, s), (d + wd / 2, y - ht / 2, s), (d + wd / 2, y + ht / 2, s),
                (d - wd / 2, y + ht / 2, s)], SIGN, rgb)
        ink = (240, 240, 240) if sum(rgb) < 450 else (30, 30, 30)
        ys = [y + ht * (0.25 - 0.25 * i) for i in range(1 + int(r.r() * 3))]
        b.seg([(d - wd * 0.35, yy, s - 0.005) for yy in ys], [(d + wd * r.u(0.0, 0.35), yy, s - 0.005) for yy in ys],
              ht * 0.09, SIGN, ink, minpx=0.0, lod=0.15, disjoint=True)
        return ht

    def _traffic_light(self, b: _Builder, r: _Draw, d: float, y: float, s: float) -> None:
        hw, hh = 0.17, 0.5
        b.poly([(d - hw, y - hh, s), (d + hw, y - hh, s), (d + hw, y + hh, s), (d - hw, y + hh, s)], SIGN, (30, 32, 30))
        on = r.pick((0, 1, 2))
        for i, rgb in enumerate(((220, 40, 30), (230, 160, 30), (40, 200, 90))):
            yy = y + 0.3 - 0.3 * i
            b.poly([(d + 0.1 * c, yy + 0.1 * sn, s - 0.01) for c, sn in _U8], SIGN, rgb if i == on else (60, 55, 50),
                   lod=0.2)

    def _poles(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        if g.r() < 0.15:
            return  # no street lights on this side
        spacing = g.u(18.0, 40.0)
        s = self.s_lo + g.u(0, spacing)
        off = st.half + g.u(0.35, 0.7)
        while s < self.s_small:
            r = g.sub(30)
            step = spacing * r.u(0.9, 1.1)
            d = side * off
            if (self._in_junction(side, s - 1, s + 1) is None
                    and not self._hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.64, height=10.0)):
                b.begin()
                w = self._pole(b, r, d, s, side, True)
                if r.r() < 0.3:
                    self._sign_plate(b, r, d, r.u(2.4, 3.2), s)
                b.end(_L_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 2 * w)
            s += step

    def _signs(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        s = self.s_lo + g.u(0.0, 25.0)
        while s < self.s_small:
            r = g.sub(40)
            step = r.u(12.0, 40.0)
            d = side * (st.half + r.u(0.3, 0.8))
            if (self._in_junction(side, s - 1, s + 1) is None
                    and not self._hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.36)):
                b.begin()
                w = self._pole(b, r, d, s, side, False)
                top = 2.2 + r.u(0.1, 1.0)
                if r.r() < 0.15:
                    self._traffic_light(b, r, d, top, s - 0.1)
                else:
                    hgt = self._sign_plate(b, r, d, top, s)
                    if r.r() < 0.3:
                        self._sign_plate(b, r, d, top - hgt / 2 - 0.45, s)
                b.end(_L_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 2 * w)
            s += step

    def _lights(self, b: _Builder, g: _Draw) -> None:
        """Traffic lights before junctions: SignSymbol housing on a Pole."""
        st = self.st
        for _, s0, _ in st.junctions:
            for sd in (-1, 1):
                r = g.sub(8)
                d = sd * (st.half + 0.5)
                s = s0 - 1.5
                if r.r() < 0.55 and not self._hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.32):
                    b.begin()
                    b.seg([(d, 0.0, s)], [(d, 3.2, s)], 0.16, POLE, r.col(r.pick(_POLE_COLS), 8), minpx=2.0)
                    self._traffic_light(b, r, d, 2.7, s - 0.1)
                    b.end(_L_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 0.32)

    def _fence(self, b: _Builder, g: _Draw, side: int, x: float, s0: float, s1: float, layer: int,
               style: int | None = None) -> None:
        """A fence along |d| = x from s0 to s1: railing (0), boards (1) or palisade (2), in pieces of <= 4 m."""
        r = g.sub(8)
        if style is None:
            style = r.pick((0, 1, 2))
        rgb = r.col(r.pick(_FENCE_COLS), 10, 0.1)
        h = r.u(0.9, 1.3) if style != 1 else r.u(1.0, 1.9)
        d = side * x
        n = max(1, int(math.ceil((s1 - s0) / 4.0)))
        cuts = [s0 + (s1 - s0) * i / n for i in range(n + 1)]
        for p, q in zip(cuts[:-1], cuts[1:]):
            if self._hidden(d - 0.1, d + 0.1, p, q, h, _FAR if layer == _L_FREE else _FAR):
                continue
            b.begin()
            if style == 1:
                b.poly([(d, 0.0, p), (d, h, p), (d, h, q), (d, 0.0, q)], FENCE, rgb)
                if self._near(p, 0.25):
                    m = int((q - p) / 0.25)
                    sp = [p + (q - p) * (i + 1) / (m + 1) for i in range(m)]
                    b.seg([(d, 0.05, v) for v in sp], [(d, h - 0.05, v) for v in sp], 0.02, FENCE, _shade(rgb, 0.7),
                          minpx=0.0, lod=0.25, disjoint=True)
            else:
                rails = (h, h * 0.15) if style == 0 else (h * 0.85, h * 0.2)
                gap = 0.14 if style == 0 else 0.2
                top = rails[0] + (0.12 if style == 2 else 0.0)
                # far: a solid band (the bars merge); near: individual bars
                b.poly([(d, rails[1], p), (d, top, p), (d, top, q), (d, rails[1], q)], FENCE, _shade(rgb, 1.05),
                       lod=-gap)
                if self._near(p, gap):
                    m = int((q - p) / gap)
                    sp = [p + (q - p) * (i + 1) / (m + 1) for i in range(m)]
                    b.seg([(d, rails[1], v) for v in sp], [(d, top, v) for v in sp], 0.045 if style == 0 else 0.07,
                          FENCE, rgb, minpx=0.0, lod=gap, disjoint=True)
                b.seg([(d, 0.0, p), (d, 0.0, q)], [(d, h + 0.05, p), (d, h + 0.05, q)], 0.09, FENCE, rgb, minpx=1.5,
                      disjoint=True)
                b.seg([(d, y, p) for y in rails], [(d, y, q) for y in rails], 0.06, FENCE, rgb, minpx=1.0,
                      disjoint=True)
            b.end(layer, (d - 0.1, d + 0.1, p, q), h)

    def _fences(self, b: _Builder, g: _Draw, side: int) -> None:
        """Pedestrian guard railings along the kerb."""
        st = self.st
        s = self.s_lo + g.u(0.0, 40.0)
        while s < self.s_small:
            r = g.sub(4)
            length = r.u(6.0, 30.0)
            if self._in_junction(side, s, s + length, pad=3.0) is None:
                self._fence(b, g, side, st.half + r.u(0.25, 0.45), s, s + length, _L_FREE, 0 if r.r() < 0.6 else 2)
            s += length + r.u(15.0, 110.0) * (1.5 - st.urban)

    # vehicles and people -----------------------------------------------------
    def _car(self, b: _Builder, g: _Draw, d: float, s: float, heading: int, vel: float) -> None:
        st = self.st
        r = g.sub(24)
        L = r.u(3.7, 4.9)
        W = r.u(1.65, 1.9)
        H = r.u(1.38, 1.62) if r.r() < 0.8 else r.u(1.65, 1.95)
        van = H > 1.7 and r.r() < 0.5
        s0, s1, d0, d1 = s - L / 2, s + L / 2, d - W / 2, d + W / 2
        if self._hidden(d0 - 0.3, d1 + 0.3, s0 - 0.3, s1 + 0.3, W * 0.8, height=H):
            return
        rgb = r.col(r.pick(_CAR_COLS), 8, 0.08)
        glass = r.col((52, 60, 72), 8, 0.15)
        back, front = r.u(0.55, 1.05), r.u(0.95, 1.3)
        R, y_body = 0.31, 0.26
        belt = H * (0.62 if not van else 0.55)
        near = self._near(s0, 0.25)
        b.begin()
        b.shadow([(d0 - 0.1, s0 - 0.2), (d1 + 0.1, s0 - 0.2), (d1 + 0.1, s1 + 0.2), (d0 - 0.1, s1 + 0.2)], 0.55)
        if st.sunny:
            b.shadow(_sweep(d0, d1, s0, s1, (st.sun[0] * H * 0.8, st.sun[1] * H * 0.8)), st.shadow_k)
        # wheels: tyres seen end-on, then the outer octagonal caps; the body hides their upper half
        ws = (s0 + 0.75, s1 - 0.8)
        if self._near(s0, 0.5):
            for w_s in ws:
                b.batch([[(d0 + 0.02, 0.0, w_s), (d0 + 0.02, 2 * R, w_s), (d0 + 0.22, 2 * R, w_s),
                          (d0 + 0.22, 0.0, w_s)],
                         [(d1 - 0.22, 0.0, w_s), (d1 - 0.22, 2 * R, w_s), (d1 - 0.02, 2 * R, w_s),
                          (d1 - 0.02, 0.0, w_s)]], CAR, (28, 28, 30), lod=0.5)
            for cap in (d0 + 0.02, d1 - 0.02):
                b.batch([[(cap, R + R * sn, w_s + R * c) for c, sn in _U8] for w_s in ws], CAR, (44, 44, 46), lod=0.5)
        body = _box(d0, d1, y_body, belt, s0, s1)
        k_side = (0.95 if st.sun_side > 0 else 0.75) if st.sunny else 0.88
        b.faces(body, CAR, [_shade(rgb, k_side), _shade(rgb, 1.7 - k_side), _shade(rgb, 0.85), _shade(rgb, 0.85),
                            _shade(rgb, 1.12)])
        if van:
            cab = _frustum(d0 + 0.04, d1 - 0.04, belt, H, s0 + 0.05, s1 - 0.6, 0.08, 0.2, 0.3)
        else:
            cab = _frustum(d0 + 0.07, d1 - 0.07, belt, H, s0 + back, s1 - front, 0.14, 0.35, 0.45)
        if heading < 0:  # front towards -s: mirror along s about the car centre (and fix the winding)
            cab = [[(p[0], p[1], 2 * s - p[2]) for p in reversed(cab[i])] for i in (0, 1, 3, 2, 4)]
        b.faces(cab, CAR, [_shade(rgb, k_side * 0.95), _shade(rgb, (1.7 - k_side) * 0.95), _shade(rgb, 0.8),
                           _shade(rgb, 0.8), _shade(rgb, 1.05)])
        if self._near(s0, 0.5):
            b.faces([_inset(f, 0.84, -0.02) for f in cab[:4]], CAR, [glass, glass, _shade(glass, 1.2),
                                                                      _shade(glass, 1.2)], lod=0.5)
        if near:
            back_face, front_face = (body[2], body[3]) if heading > 0 else (body[3], body[2])
            fy = ((belt - 0.24 - y_body) / (belt - y_body), (belt - 0.08 - y_body) / (belt - y_body))
            lamps = [_sub_quad(f, fy, fa) for f in (back_face, front_face) for fa in ((0.06, 0.24), (0.76, 0.94))]
            b.faces(lamps, CAR, [(170, 20, 24), (170, 20, 24), (236, 232, 210), (236, 232, 210)], lod=0.25)
        b.end(_L_FREE, (d0, d1, s0, s1), W * 0.8, vel)

    def _parked(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        if not st.park[0 if side < 0 else 1]:
            return
        d = side * (st.half - 1.1)
        s = self.s_lo + g.u(0.0, 8.0)
        fill = g.u(0.3, 0.8)
        while s < self.s_small:
            r = g.sub(4)
            if r.r() < fill:
                if self._in_junction(side, s - 3, s + 3, pad=3.0) is None:
                    self._car(b, g, d + r.u(-0.15, 0.15), s, 1 if r.r() < 0.7 else -1, 0.0)
                s += r.u(4.8, 8.0)
            else:
                s += r.u(4.0, 30.0)

    def _traffic(self, b: _Builder, gs: list[_Draw]) -> None:
        """Moving cars, one speed per lane so they never run into each other.

        Each lane has two streams: cars ahead of s = 0 (generated outwards) and cars behind it,
        which matter in drives where a faster lane overtakes the camera.
        """
        st = self.st
        ego = int((st.cam_d - st.lane_lo) // st.lane_w)
        for lane in range(st.lanes):
            g, gb = gs[2 * lane], gs[2 * lane + 1]
            oncoming = lane < st.n_left
            d = st.lane_lo + (lane + 0.5) * st.lane_w
            r = g.sub(4)
            if oncoming:
                vel = -r.u(0.6, 1.3)
            elif lane == ego:
                vel = r.u(1.0, 1.25)
            else:
                vel = r.u(0.5, 1.3)
            density = r.u(0.2, 0.9)
            head = -1 if oncoming else 1
            s = r.u(8.0, 24.0) if lane == ego else r.u(-6.0, 20.0)
            s_end = self.s_far if oncoming else self.s_small
            while s < s_end:
                r = g.sub(3)
                if r.r() < density:
                    self._car(b, g, d + r.u(-0.25, 0.25), s, head, vel)
                s += r.u(8.0, 45.0)
            if lane == ego or vel <= 1.0:
                continue
            s = -6.0 - gb.u(8.0, 30.0)
            s_back = -_BEHIND - (vel - 1.0) * (self.s_hi - _AHEAD)
            while s > s_back:
                r = gb.sub(3)
                if r.r() < density:
                    self._car(b, gb, d + r.u(-0.25, 0.25), s, head, vel)
                s -= r.u(8.0, 45.0)

    def _person(self, b: _Builder, g: _Draw, d: float, s: float, vel: float) -> None:
        r = g.sub(40)
        h = r.u(1.55, 1.92) if r.r() < 0.9 else r.u(1.0, 1.4)
        if self._hidden(d - 0.3, d + 0.3, s - 0.2, s + 0.2, 0.45, height=h):
            return
        top = r.col(r.pick(_CLOTH_COLS), 12, 0.15)
        legs = r.col(r.pick(((44, 56, 90), (30, 30, 34), (80, 80, 86), (120, 100, 80), (20, 24, 40))), 8, 0.15)
        skin = r.col(r.pick(_SKIN_COLS), 8, 0.05)
        hair = r.col(r.pick(_HAIR_COLS), 6, 0.1)
        bag = r.col((60, 40, 30), 20, 0.3)
        st = self.st
        b.begin()
        if st.sunny:
            dx, dz = st.sun[0] * h * 0.6, st.sun[1] * h * 0.6
            b.shadow([(d - 0.25, s), (d + 0.25, s), (d + 0.15 + dx, s + dz), (d - 0.15 + dx, s + dz)],
                     st.shadow_k * 0.8)
        k = h / 1.75
        stride = 0.14 * r.r()
        hip = 0.52 * h
        b.seg([(d - 0.08, hip, s), (d + 0.08, hip, s)], [(d - 0.09 - stride, 0.0, s), (d + 0.09 + stride, 0.0, s)],
              0.14 * k, PEDESTRIAN, legs, minpx=2.0)
        sh = 0.81 * h
        hw = (0.19 + 0.05 * r.r()) * k
        bot = 0.34 * h if r.r() < 0.3 else hip - 0.04
        b.poly([(d - hw * 0.8, bot, s - 0.02), (d + hw * 0.8, bot, s - 0.02), (d + hw, sh, s - 0.02),
                (d + hw * 0.55, sh + 0.04, s - 0.02), (d - hw * 0.55, sh + 0.04, s - 0.02), (d - hw, sh, s - 0.02)],
               PEDESTRIAN, top)
        swing = 0.12 * (r.r() - 0.5)
        b.seg([(d - hw * 0.92, sh - 0.03, s - 0.03), (d + hw * 0.92, sh - 0.03, s - 0.03)],
              [(d - hw - 0.04 + swing, 0.47 * h, s - 0.03), (d + hw + 0.04 - swing, 0.47 * h, s - 0.03)],
              0.085 * k, PEDESTRIAN, _shade(top, 0.9), minpx=1.5)
        hr = 0.105 * k
        hy = 0.925 * h
        b.poly([(d + hr * c, hy + 1.2 * hr * sn, s - 0.04) for c, sn in _U10], PEDESTRIAN, skin)
        b.poly([(d + 1.05 * hr * c, hy + 0.2 * hr + 1.1 * hr * sn, s - 0.045) for c, sn in _U10[:6]], PEDESTRIAN,
               hair, lod=0.15)
        if r.r() < 0.25:  # bag
            bd = d + (hw + 0.08) * (1 if r.r() < 0.5 else -1)
            b.poly([(bd - 0.1, 0.42 * h, s - 0.05), (bd + 0.1, 0.42 * h, s - 0.05), (bd + 0.1, 0.56 * h, s - 0.05),
                    (bd - 0.1, 0.56 * h, s - 0.05)], PEDESTRIAN, bag)
        b.end(_L_FREE, (d - 0.3, d + 0.3, s - 0.2, s + 0.2), 0.45, vel)

    def _pedestrians(self, b: _Builder, g: _Draw, side: int) -> None:
        st = self.st
        pave = st.pave[0 if side < 0 else 1]
        s = self.s_lo + g.u(0, 10)
        mean_gap = 6.0 + 16.0 * (1 - st.urban)
        while s < self.s_small:
            r = g.sub(12)
            n = 1 + int(r.r() * 3) if r.r() < 0.35 else 1
            vel = r.u(0.08, 0.18) * (1 if r.r() < 0.5 else -1)
            for i in range(n):
                d = side * (st.half + r.u(0.6, max(0.7, pave - 0.3)))
                si = s + i * r.u(0.5, 1.2)
                if self._in_junction(side, si - 0.5, si + 0.5) is None:
                    self._person(b, g, d, si, vel)
            s += g.exp(mean_gap) + 1.0

    def _cyclist(self, b: _Builder, g: _Draw, d: float, s: float, heading: int, vel: float) -> None:
        r = g.sub(32)
        frame = r.col(r.pick(((180, 30, 30), (30, 30, 32), (40, 80, 160), (200, 200, 200), (40, 120, 60))), 10)
        top = r.col(r.pick(_CLOTH_COLS + ((220, 220, 40), (230, 110, 30))), 12, 0.15)
        legs = r.col(r.pick(((30, 30, 34), (44, 56, 90), (90, 90, 96))), 8, 0.1)
        skin = r.col(r.pick(_SKIN_COLS), 8)
        hcol = r.col(r.pick(((230, 230, 230), (30, 30, 30), (200, 40, 40), (40, 90, 200), *_HAIR_COLS)), 8)
        lean, knee = r.u(0.1, 0.3), r.u(-0.05, 0.1)
        R = 0.34
        st = self.st
        if self._hidden(d - 0.3, d + 0.3, s - 0.9, s + 0.9, 0.5, height=1.8):
            return

        def p(a: float, y: float, lat: float = 0.0) -> tuple[float, float, float]:
            return (d + lat, y, s + heading * a)

        b.begin()
        if st.sunny:
            b.shadow(_sweep(d - 0.15, d + 0.15, s - 0.9, s + 0.9, (st.sun[0] * 1.2, st.sun[1] * 1.2)),
                     st.shadow_k * 0.7)
        # wheels: discs in the bike plane plus a thin edge-on bar, so they also show from behind
        for a in (-0.52, 0.52):
            b.poly([p(a + R * c, R + R * sn) for c, sn in _U12], BICYCLIST, (26, 26, 28))
            b.poly([p(a + 0.78 * R * c, R + 0.78 * R * sn, 0.005) for c, sn in _U12], BICYCLIST, (96, 96, 100),
                   lod=0.4)
        b.seg([p(-0.52, 0.0), p(0.52, 0.0)], [p(-0.52, 2 * R), p(0.52, 2 * R)], 0.06, BICYCLIST, (26, 26, 28),
              minpx=2.0)
        hub_r, crank, seat, head, hub_f = p(-0.52, R), p(0.0, 0.3), p(-0.15, 0.88), p(0.42, 0.92), p(0.52, R)
        b.seg([hub_r, crank, seat, crank, head, p(0.42, 1.0, -0.26)],
              [crank, seat, head, head, hub_f, p(0.42, 1.0, 0.26)], 0.045, BICYCLIST, frame, minpx=1.5)
        # rider
        b.seg([p(-0.12, 0.95, -0.1), p(-0.12, 0.95, 0.1), p(0.12, 0.62 + knee, -0.12), p(0.12, 0.62 - knee, 0.12)],
              [p(0.12, 0.62 + knee, -0.12), p(0.12, 0.62 - knee, 0.12), p(0.05, 0.22, -0.12), p(-0.05, 0.4, 0.12)],
              0.14, BICYCLIST, legs, minpx=2.0)
        b.seg([p(-0.12, 0.95)], [p(-0.02 + lean, 1.5)], 0.4, BICYCLIST, top, minpx=1.5)
        b.seg([p(-0.02 + lean, 1.45, -0.2), p(-0.02 + lean, 1.45, 0.2)], [p(0.4, 1.02, -0.24), p(0.4, 1.02, 0.24)],
              0.09, BICYCLIST, _shade(top, 0.9), minpx=1.5)
        c = p(0.04 + lean, 1.68)
        b.poly([(c[0] + 0.11 * cc, c[1] + 0.13 * sn, c[2] - 0.01) for cc, sn in _U10], BICYCLIST, skin)
        b.poly([(c[0] + 0.125 * cc, c[1] + 0.04 + 0.11 * sn, c[2] - 0.015) for cc, sn in _U10[:6]], BICYCLIST, hcol,
               lod=0.15)
        b.end(_L_FREE, (d - 0.3, d + 0.3, s - 0.9, s + 0.9), 0.5, vel)

    def _cyclists(self, b: _Builder, g: _Draw) -> None:
        st = self.st
        lanes_hi = st.lane_lo + st.lanes * st.lane_w
        s = g.u(5.0, 25.0) if g.r() < 0.8 else g.u(25.0, 70.0)
        while s < self.s_far:
            r = g.sub(8)
            k = r.r()
            if k < 0.6:  # our direction, at the right edge of the lanes
                d, head, vel = lanes_hi - r.u(0.5, 0.9), 1, r.u(0.3, 0.6)
            elif k < 0.85 and st.n_left > 0:  # oncoming
                d, head, vel = st.lane_lo + r.u(0.5, 0.9), -1, -r.u(0.3, 0.6)
            else:  # on the pavement
                side = 1 if r.r() < 0.5 else -1
                d = side * (st.half + r.u(0.8, max(0.9, st.pave[0 if side < 0 else 1] - 0.5)))
                head = 1 if r.r() < 0.5 else -1
                vel = head * r.u(0.2, 0.4)
            if abs(d - st.cam_d) < 1.2:
                d = st.cam_d + math.copysign(1.2, d - st.cam_d)
            self._cyclist(b, g, d, s, head, vel)
            s += g.exp(35.0) + 8.0


# --------------------------------------------------------------------------------------------------------------------
# camera and rendering


@dataclass
class _Cam:
    f: float  # focal length, px
    cx: float  # principal point, px
    cy: float
    R: np.ndarray  # world -> camera rotation; rows: right, down, forward
    pos: np.ndarray  # world position, m
    d: float  # road coordinates of the camera, m
    s: float


def _camera(w: _World, t: float, speed: float, size: tuple[int, int]) -> _Cam:
    """Camera of frame ``t``: at s = t * speed, looking along the road with smooth shake."""
    st = w.st
    H, W = size
    j = st.jit

    def wob(i: int) -> float:
        return math.sin(2 * math.pi * t / j[8 + i] + j[4 + i])

    s = t * speed
    d = st.cam_d + 0.25 * (math.sin(2 * math.pi * t / (3 * j[11]) + j[4]) - math.sin(j[4]))
    f = st.focal * W
    cy = H * (0.5 + st.cy_off)
    pitch = math.atan((cy - st.horizon * H) / f) + j[0] * wob(0)
    yaw = math.atan(w.heading(s)) + st.yaw + j[1] * wob(1)
    roll = st.roll + j[2] * wob(2)
    h = st.cam_h + j[3] * wob(3)
    cp, sp, cyw, syw, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw), math.cos(roll), \
        math.sin(roll)
    fwd0 = np.array([syw, 0.0, cyw])
    right0 = np.array([cyw, 0.0, -syw])
    up0 = np.array([0.0, 1.0, 0.0])
    fwd = fwd0 * cp - up0 * sp
    up1 = up0 * cp + fwd0 * sp
    right = right0 * cr + up1 * sr
    up = up1 * cr - right0 * sr
    return _Cam(f=f, cx=(W - 1) / 2.0, cy=cy, R=np.stack([right, -up, fwd]),
                pos=np.array([d + float(w.curve(s)), h, s]), d=d, s=s)


def _clip_near(P: np.ndarray) -> np.ndarray:
    """Clip a polygon in camera coordinates (n, 3) to z >= _NEAR (Sutherland–Hodgman)."""
    out = []
    n = len(P)
    for i in range(n):
        a, b = P[i], P[(i + 1) % n]
        ina, inb = a[2] >= _NEAR, b[2] >= _NEAR
        if ina:
            out.append(a)
        if ina != inb:
            out.append(a + (_NEAR - a[2]) / (b[2] - a[2]) * (b - a))
    return np.array(out).reshape(-1, 3)


class _Frame:
    """The world's vertex buffer projected for one camera."""

    def __init__(self, w: _World, cam: _Cam, t: float, speed: float, size: tuple[int, int]) -> None:
        self.w, self.cam = w, cam
        self.H, self.W = size
        self.scale = self.W / 480.0
        self.ds = speed * t  # how far objects with velocity factor 1 have moved
        self.xc, self.yc, self.zc = self.to_cam(w.vd, w.vy, w.vs + w.vvel * self.ds if w.dynamic else w.vs)
        zs = np.maximum(self.zc, _NEAR)
        self.u = np.clip(cam.cx + cam.f * self.xc / zs, -_LIM, _LIM)
        self.v = np.clip(cam.cy + cam.f * self.yc / zs, -_LIM, _LIM)
        self.fx = np.empty((len(zs), 2), np.int32)
        np.rint(self.u * _ONE, out=self.fx[:, 0], casting="unsafe")
        np.rint(self.v * _ONE, out=self.fx[:, 1], casting="unsafe")

    def to_cam(self, d: np.ndarray, y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Road coordinates (m) → camera coordinates (m): x right, y down, z forward."""
        cam, R = self.cam, self.cam.R
        X = d + self.w.curve(s) - cam.pos[0]
        Y = y - cam.pos[1]
        Z = s - cam.pos[2]
        return (R[0, 0] * X + R[0, 1] * Y + R[0, 2] * Z, R[1, 0] * X + R[1, 1] * Y + R[1, 2] * Z,
                R[2, 0] * X + R[2, 1] * Y + R[2, 2] * Z)

    def project(self, P: np.ndarray) -> np.ndarray:
        """Camera-coordinate points (n, 3) with z >= near → pixel coordinates (n, 2)."""
        c = self.cam
        return np.clip(np.c_[c.cx + c.f * P[:, 0] / P[:, 2], c.cy + c.f * P[:, 1] / P[:, 2]], -_LIM, _LIM)

    def objects(self) -> tuple[np.ndarray, np.ndarray]:
        """Objects to draw, in painter order, and their ground distances (m)."""
        w, cam = self.w, self.cam
        if len(w.o_layer) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        box = w.o_box
        mv = self.ds * w.o_vel
        s0, s1 = box[:, 2] + mv, box[:, 3] + mv
        dd = np.maximum(np.maximum(box[:, 0] - cam.d, cam.d - box[:, 1]), 0.0)
        dz = np.maximum(np.maximum(s0 - cam.s, cam.s - s1), 0.0)
        dist = np.sqrt(dd * dd + dz * dz)
        far = np.where(w.o_layer <= _L_FRONT, _FAR_B, _FAR)
        ok = (s1 > cam.s - 2.0) & (dist < far)
        ok &= cam.f * w.o_cull / np.maximum(dist, 1.0) >= _CULL_PX * self.scale
        v0 = w.o_v0
        zmax = np.maximum.reduceat(self.zc, v0)
        zmin = np.minimum.reduceat(self.zc, v0)
        inside = ((np.maximum.reduceat(self.u, v0) >= -1) & (np.minimum.reduceat(self.u, v0) <= self.W)
                  & (np.maximum.reduceat(self.v, v0) >= -1) & (np.minimum.reduceat(self.v, v0) <= self.H))
        ok &= (zmax > _NEAR) & ((zmin <= _NEAR) | inside)
        idx = np.nonzero(ok)[0]
        idx = idx[np.lexsort((-dist[idx], w.o_layer[idx]))]
        return idx, dist

    def records(self, oidx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Records to draw in order, whether each crosses the near plane, and their ground distances."""
        w = self.w
        if not oidx.size:
            e = np.zeros(0, np.int64)
            return e, e.astype(bool), np.zeros(0)
        r0, r1 = w.o_r0[oidx], w.o_r1[oidx]
        lens = r1 - r0
        starts = np.cumsum(lens) - lens
        rec = np.arange(lens.sum()) + np.repeat(r0 - starts, lens)
        rd = np.repeat(dist[oidx], lens)
        kind = w.r_kind[rec]
        ok = kind != _SHADOW
        lod = w.r_lod[rec]
        size_px = self.cam.f * np.abs(lod) / np.maximum(rd, 1.0)
        thr = _LOD_PX * self.scale
        ok &= (lod == 0) | ((lod > 0) & (size_px >= thr)) | ((lod < 0) & (size_px < thr))
        zmin = np.minimum.reduceat(self.zc, w.r_v0)[rec]
        zmax = np.maximum.reduceat(self.zc, w.r_v0)[rec]
        ok &= zmax >= _NEAR
        partial = zmin < _NEAR
        # back-face culling from the signed area of the projected polygon (exact, in fixed point)
        cul = (kind == _CULL) & ~partial
        if cul.any():
            x, y = self.fx[:, 0].astype(np.int64), self.fx[:, 1].astype(np.int64)
            area = np.add.reduceat(x * y[w.v_next] - x[w.v_next] * y, w.r_v0)[rec]
            ok &= ~cul | (area > 0)
        return rec[ok], partial[ok], rd[ok]

    def seg_quads(self, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image quads of the thick segments of the segment records among ``rec``.

        Returns (quads (m, 4, 2) int32 fixed point, index of each record's first quad).
        """
        w = self.w
        kind = w.r_kind[rec]
        ks = np.where((kind == _SEG) | (kind == _SEGB), w.r_k[rec], 0)
        qstart = np.cumsum(ks) - ks
        m = int(ks.sum())
        if m == 0:
            return np.zeros((0, 4, 2), np.int32), qstart
        srec = np.repeat(rec, ks)
        a = np.repeat(w.r_v0[rec], ks) + 2 * (np.arange(m) - np.repeat(qstart, ks))
        xa, ya, za = self.xc[a], self.yc[a], self.zc[a]
        xb, yb, zb = self.xc[a + 1], self.yc[a + 1], self.zc[a + 1]
        ca, cb = za < _NEAR, zb < _NEAR
        if ca.any() or cb.any():  # clip to the near plane
            t = np.clip((_NEAR - za) / np.where(zb != za, zb - za, 1.0), 0.0, 1.0)
            xa, ya, za = (np.where(ca, xa + t * (xb - xa), xa), np.where(ca, ya + t * (yb - ya), ya),
                          np.where(ca, np.maximum(za + t * (zb - za), _NEAR), za))
            t = np.clip((_NEAR - zb) / np.where(za != zb, za - zb, 1.0), 0.0, 1.0)
            xb, yb, zb = (np.where(cb, xb + t * (xa - xb), xb), np.where(cb, yb + t * (ya - yb), yb),
                          np.where(cb, np.maximum(zb + t * (za - zb), _NEAR), zb))
        c = self.cam
        ua, va = c.cx + c.f * xa / za, c.cy + c.f * ya / za
        ub, vb = c.cx + c.f * xb / zb, c.cy + c.f * yb / zb
        wd = w.r_w[srec]
        mp = w.r_minpx[srec] * self.scale
        ha = np.maximum(c.f * wd / za, mp) * 0.5
        hb = np.maximum(c.f * wd / zb, mp) * 0.5
        du, dv = ub - ua, vb - va
        ln = np.sqrt(du * du + dv * dv)
        small = ln < 1e-6
        ln = np.where(small, 1.0, ln)
        nu = np.where(small, 1.0, -dv / ln)
        nv = np.where(small, 0.0, du / ln)
        q = np.empty((m, 4, 2))
        q[:, 0, 0], q[:, 0, 1] = ua + nu * ha, va + nv * ha
        q[:, 1, 0], q[:, 1, 1] = ub + nu * hb, vb + nv * hb
        q[:, 2, 0], q[:, 2, 1] = ub - nu * hb, vb - nv * hb
        q[:, 3, 0], q[:, 3, 1] = ua - nu * ha, va - nv * ha
        return np.rint(np.clip(q, -_LIM, _LIM) * _ONE).astype(np.int32), qstart


def _window_grid(dw: float, s_a: float, pitch: float, n_s: int, y_a: float, storey: float, n_y: int, wl: float,
                 wh: float, trim, glass) -> tuple:
    """Corner points of a window grid on the facade plane d = ``dw`` (metres).

    Windows are ``wl`` long and ``wh`` high, every ``pitch`` metres along the road from ``s_a`` and
    every ``storey`` metres up from ``y_a``. Each window has four corner heights and four corner
    positions (frame low, pane low, pane high, frame high), so all corners form a (4·n_y) × (4·n_s)
    grid, returned flattened as road coordinates (d, y, s) arrays with the colours.
    """
    k = np.array([-0.07, 0.07, 0.93, 1.07])
    ys = ((y_a + storey * np.arange(n_y))[:, None] + wh * k).ravel()
    ss = ((s_a + pitch * np.arange(n_s))[:, None] + wl * k).ravel()
    Y = np.repeat(ys, ss.size)
    S = np.tile(ss, ys.size)
    return (n_y, n_s, trim, glass, np.full(S.size, dw), Y, S)


@lru_cache(maxsize=512)
def _window_corners(n_y: int, n_s: int, lo: int, hi: int) -> np.ndarray:
    """Indices (n_y·n_s, 4) into the (4·n_y) × (4·n_s) corner grid of a window grid for level pair lo, hi."""
    i = (np.arange(n_y) * 4)[:, None, None]
    j = (np.arange(n_s) * 4)[None, :, None]
    r = np.array([lo, lo, hi, hi])[None, None, :]
    c = np.array([lo, hi, hi, lo])[None, None, :]
    idx = ((i + r) * (4 * n_s) + j + c).reshape(-1, 4)
    idx.setflags(write=False)
    return idx


def _project_windows(fr: _Frame, grids: list[tuple]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Project the corners of several window grids at once: fixed-point (m, 2), camera z (m,), offsets."""
    sizes = [g[4].size for g in grids]
    offsets = np.cumsum([0] + sizes[:-1]).tolist()
    if len(grids) == 1:
        D, Y, S = grids[0][4:7]
    else:
        D, Y, S = (np.concatenate([g[i] for g in grids]) for i in (4, 5, 6))
    xc, yc, zc = fr.to_cam(D, Y, S)
    zs = np.maximum(zc, _NEAR)
    cam = fr.cam
    uv = np.empty((zc.size, 2))
    uv[:, 0] = cam.cx + cam.f * xc / zs
    uv[:, 1] = cam.cy + cam.f * yc / zs
    return np.rint(np.clip(uv, -_LIM, _LIM) * _ONE).astype(np.int32), zc, offsets


def _draw_windows(fr: _Frame, grid: tuple, uv: np.ndarray, zc: np.ndarray, off: int, dist: float, buf: np.ndarray,
                  partial: bool) -> None:
    """A facade's windows (projected by _project_windows): frames (lod 0.25 m, their width), then panes."""
    n_y, n_s, trim, glass = grid[:4]
    st = fr.w.st
    frames = fr.cam.f * 0.25 / max(dist, 1.0) >= _LOD_PX * fr.scale
    hz = dist / (dist + st.haze_k)
    for lo, hi, rgb, on in ((0, 3, trim, frames), (1, 2, glass, True)):
        if not on:
            continue
        idx = _window_corners(n_y, n_s, lo, hi) + off
        pts = uv[idx]
        if partial:
            pts = pts[zc[idx].min(1) >= _NEAR]
        c = [min(255, max(0, round((rgb[i] + (st.haze_rgb[i] - rgb[i]) * hz) * st.kc[i] + st.bc[i])))
             for i in range(3)]
        cv2.fillPoly(buf, pts, (*c, BUILDING), cv2.LINE_8, _SHIFT)


def _draw_objects(fr: _Frame, oidx: np.ndarray, dist: np.ndarray, buf: np.ndarray) -> None:
    """Paint the visible objects' records into the RGBA buffer (alpha channel = class id)."""
    w = fr.w
    st = w.st
    rec, partial, rd = fr.records(oidx, dist)
    if not rec.size:
        return
    quads, qstart = fr.seg_quads(rec)
    hz = (rd / (rd + st.haze_k))[:, None]
    rgb = w.r_rgb[rec]
    rgb = (rgb + (np.asarray(st.haze_rgb) - rgb) * hz) * st.kc + st.bc
    col = np.empty((rec.size, 4))
    col[:, :3] = np.clip(np.rint(rgb), 0, 255)
    col[:, 3] = w.r_lab[rec]
    cols = col.tolist()
    l_v0, l_n, l_k, l_kind = w.l_v0, w.l_n, w.l_k, w.l_kind
    fx = fr.fx
    rec_l = rec.tolist()
    grid_recs = [r for r in rec_l if l_kind[r] == _GRID]
    if grid_recs:
        grids = [w.grids[int(w.r_w[r])] for r in grid_recs]
        wuv, wz, woff = _project_windows(fr, grids)
        win = {r: (g, o) for r, g, o in zip(grid_recs, grids, woff)}
    fillc, fillp, L8 = cv2.fillConvexPoly, cv2.fillPoly, cv2.LINE_8
    for r, part, c, qs, dst in zip(rec_l, partial.tolist(), cols, qstart.tolist(), rd.tolist()):
        kind = l_kind[r]
        if kind == _GRID:
            g, o = win[r]
            _draw_windows(fr, g, wuv, wz, o, dst, buf, part)
            continue
        if kind == _SEG:
            fillc(buf, quads[qs], c, L8, _SHIFT)
            continue
        if kind == _SEGB:
            fillp(buf, quads[qs:qs + l_k[r]], c, L8, _SHIFT)
            continue
        v0, n = l_v0[r], l_n[r]
        if kind == _BATCH:
            k = l_k[r]
            pts = fx[v0:v0 + k * n].reshape(k, n, 2)
            if part:
                pts = pts[fr.zc[v0:v0 + k * n].reshape(k, n).min(1) >= _NEAR]
            fillp(buf, pts, c, L8, _SHIFT)
            continue
        if part:
            P = _clip_near(np.c_[fr.xc[v0:v0 + n], fr.yc[v0:v0 + n], fr.zc[v0:v0 + n]])
            if len(P) < 3:
                continue
            pts = np.rint(fr.project(P) * _ONE).astype(np.int32)
            if kind == _CULL:
                x, y = pts[:, 0].tolist(), pts[:, 1].tolist()
                if sum(x[i - 1] * y[i] - x[i] * y[i - 1] for i in range(len(x))) <= 0:
                    continue
        else:
            pts = fx[v0:v0 + n]
        if kind == _NPOLY:
            fillp(buf, [pts], c, L8, _SHIFT)
        else:
            fillc(buf, pts, c, L8, _SHIFT)


def _shadow_mask(fr: _Frame, oidx: np.ndarray) -> np.ndarray | None:
    """Blurred ground-shadow darkening at half resolution (uint8, 255 = black), or None."""
    w = fr.w
    if not oidx.size:
        return None
    r0, r1 = w.o_r0[oidx], w.o_r1[oidx]
    lens = r1 - r0
    rec = np.arange(lens.sum()) + np.repeat(r0 - (np.cumsum(lens) - lens), lens)
    rec = rec[w.r_kind[rec] == _SHADOW]
    if not rec.size:
        return None
    zmin = np.minimum.reduceat(fr.zc, w.r_v0)[rec]
    mask = np.zeros(((fr.H + 1) // 2, (fr.W + 1) // 2), np.uint8)
    for r, z in zip(rec.tolist(), zmin.tolist()):
        v0, n = w.l_v0[r], w.l_n[r]
        if z < _NEAR:
            P = _clip_near(np.c_[fr.xc[v0:v0 + n], fr.yc[v0:v0 + n], fr.zc[v0:v0 + n]])
            if len(P) < 3:
                continue
            pts = np.rint(fr.project(P) * _ONE).astype(np.int32)
        else:
            pts = fr.fx[v0:v0 + n]
        cv2.fillPoly(mask, [pts], int(255 * w.r_w[r]), cv2.LINE_8, _SHIFT + 1)
    return cv2.GaussianBlur(mask, (0, 0), max(0.5, 1.25 * fr.scale))


def _hash_noise(ix: np.ndarray, iz: np.ndarray) -> np.ndarray:
    """Deterministic per-cell noise in [-1, 1) from integer cell coordinates (uint32 arithmetic)."""
    h = ix.astype(np.uint32) * np.uint32(374761393) + iz.astype(np.uint32) * np.uint32(668265263)
    h ^= h >> np.uint32(13)
    h *= np.uint32(1274126177)
    h ^= h >> np.uint32(16)
    return (h & np.uint32(1023)).astype(np.float32) * np.float32(2.0 / 1024) - np.float32(1.0)


def _sky(st: _Style, cam: _Cam, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """H×W×3 uint8 sky colour: vertical gradient down to the horizon plus soft clouds."""
    h, w = max(4, H // 8), max(4, W // 8)
    hor = cam.cy - cam.f * math.tan(math.asin(max(-1.0, min(1.0, -cam.R[2, 1]))))
    y = (np.arange(h, dtype=np.float32) + 0.5) * (H / h)
    t = np.clip(y / max(hor, 1.0), 0.0, 1.0)
    t = t * (np.float32(1.3) - np.float32(0.3) * t)  # brightens quickly towards the horizon
    top, bot = np.array(st.sky_top, np.float32), np.array(st.sky_hor, np.float32)
    sky = np.repeat((top[None, :] + (bot - top)[None, :] * t[:, None])[:, None, :], w, axis=1)
    if st.clouds > 0.05:
        c = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (0, 0), 1.5).astype(np.float32)
        c = np.clip((c * np.float32(1 / 255) - (0.62 - st.clouds * 0.25)) * 5.0, 0.0, 1.0) * (1.0 - 0.6 * t[:, None])
        sky += (np.array((236, 238, 242), np.float32) - sky) * c[..., None]
    sky = _u8(sky * st.kc.astype(np.float32) + st.bc.astype(np.float32))
    return cv2.resize(sky, (W, H), interpolation=cv2.INTER_LINEAR_EXACT)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


def _up2(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear 2× upsampling of samples taken at the centres of 2×2 blocks, cropped to (h, w).

    Plain numpy arithmetic (unlike cv2.resize on floats, bit-identical on every CPU).
    """
    q = np.float32(0.25)
    p = np.float32(0.75)
    e = np.concatenate([a[:1], a, a[-1:]], 0)
    rows = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
    rows[0::2] = p * e[1:-1] + q * e[:-2]
    rows[1::2] = p * e[1:-1] + q * e[2:]
    e = np.concatenate([rows[:, :1], rows, rows[:, -1:]], 1)
    out = np.empty((rows.shape[0], 2 * a.shape[1]), a.dtype)
    out[:, 0::2] = p * e[:, 1:-1] + q * e[:, :-2]
    out[:, 1::2] = p * e[:, 1:-1] + q * e[:, 2:]
    return out[:h, :w]


def _ground(fr: _Frame, buf: np.ndarray, shadow: np.ndarray | None) -> None:
    """Ray-cast the road plane for every pixel below the horizon: Road / Pavement labels and colours.

    Rays are cast at the centres of 2×2 pixel blocks; the lateral road coordinate is interpolated
    bilinearly (it is smooth) to full resolution, where the classes, labels and base colours are
    decided per pixel. The image-only modulations (grain, paving joints, lane marks, haze,
    shadows) stay at half resolution and are upsampled.
    """
    w, cam = fr.w, fr.cam
    st = w.st
    H, W = fr.H, fr.W
    R, f = cam.R, cam.f
    if R[1, 1] > -1e-6:
        return
    a_end = np.array([-cam.cx / f, (W - 1 - cam.cx) / f])
    b_h = -(R[0, 1] * a_end + R[2, 1]) / R[1, 1]  # ray direction is level on this row
    v0 = int(max(0, min(H, math.floor(cam.cy + f * b_h.min()))))
    v0 -= v0 & 1  # even, so that the half-resolution grid lines up with the full one
    if v0 >= H:
        return
    f32 = np.float32
    R32 = R.astype(f32)
    rows = H - v0
    # block centres: _up2 interpolates bilinearly between them
    a2 = ((np.arange(0, W, 2, dtype=f32) + f32(0.5) - f32(cam.cx)) / f32(f))[None, :]
    b2 = ((np.arange(v0, H, 2, dtype=f32) + f32(0.5) - f32(cam.cy)) / f32(f))[:, None]

    def cast(a: np.ndarray, bb: np.ndarray):
        dy = a * R32[0, 1] + (bb * R32[1, 1] + R32[2, 1])
        g = dy < f32(-1e-5)
        t = f32(cam.pos[1]) / np.maximum(-dy, f32(1e-5))  # distance along the camera axis, m
        np.minimum(t, f32(1e5), out=t)
        Z = (a * R32[0, 2] + (bb * R32[1, 2] + R32[2, 2])) * t + f32(cam.pos[2])
        d = (a * R32[0, 0] + (bb * R32[1, 0] + R32[2, 0])) * t + f32(cam.pos[0])
        if w.curved:  # c(Z) by linear interpolation in the 2 m table (np.interp is much slower)
            # the road beyond _HORIZON metres is sub-pixel: hold c there, whatever the table's length
            x = (np.minimum(Z, f32(cam.s + _HORIZON)) - f32(w.cs[0])) * f32(0.5)
            np.clip(x, 0, len(w.cv) - 2, out=x)
            i = x.astype(np.int32)
            x -= i
            c0 = w.cv32.take(i)
            d -= c0 + (w.cv32.take(i + 1) - c0) * x
        road = np.abs(d) <= f32(st.half)
        for side, s0, s1 in near_j:
            road |= (d * f32(side) > 0) & (Z > f32(s0)) & (Z < f32(s1))
        return g, t, Z, d, road

    # side roads within the world's guaranteed extent (the same whatever the drive's length)
    near_j = [j for j in st.junctions if j[1] < cam.s + _AHEAD and j[2] > cam.s - 5]

    g2, t2, Z2, d2, road2 = cast(a2, b2)
    # full resolution: ground mask, labels and base colours ------------------------------------
    a = ((np.arange(W, dtype=f32) - f32(cam.cx)) / f32(f))[None, :]
    bb = ((np.arange(v0, H, dtype=f32) - f32(cam.cy)) / f32(f))[:, None]
    g = (a * R32[0, 1] + (bb * R32[1, 1] + R32[2, 1])) < f32(-1e-5)
    d = _up2(d2, rows, W)
    ad = np.abs(d)
    road = ad <= f32(st.half)
    if near_j:
        Z = _up2(Z2, rows, W)
        for side, s0, s1 in near_j:
            road |= (d * f32(side) > 0) & (Z > f32(s0)) & (Z < f32(s1))
    off = ~road
    cls = off.view(np.uint8).copy()  # 0 road, 1 pavement, 2 kerb, 3 verge (beyond the pavement)
    cls += (off & (ad < f32(st.half + 0.16))).view(np.uint8)
    edge = (d >= 0).view(np.uint8) * f32(st.pave[1] - st.pave[0]) + f32(st.half + st.pave[0])
    cls += (off & (ad > edge)).view(np.uint8) * np.uint8(2)
    del ad, edge
    # RGBA base: class colour and label (Road for class 0, Pavement otherwise) in one lookup
    lut = np.zeros((256, 1, 4), np.uint8)
    lut[:4, 0, :3] = _u8(np.rint(np.array([st.road_rgb, st.pave_rgb, st.kerb_rgb, st.verge_rgb]) * st.kc))
    lut[:4, 0, 3] = (ROAD, PAVEMENT, PAVEMENT, PAVEMENT)
    base = cv2.LUT(cv2.merge([cls, cls, cls, cls]), lut)
    # half resolution: modulation M (multiplies the base colour) and additive colour A -------
    px = t2 / f32(f) * f32(2.0)  # metres per (half-resolution) pixel across the road
    cell = 0.04
    tex = _hash_noise(np.floor(d2 * f32(1 / cell)).astype(np.int32), np.floor(Z2 * f32(1 / cell)).astype(np.int32))
    M = tex * ((f32(0.6) + f32(0.4) * road2) * f32(st.road_tex) * np.clip(f32(cell) / px - f32(0.6), 0, 1))
    M += f32(1.0)
    if st.slab > 0:
        fz = Z2 * f32(1.0 / st.slab)
        fz -= np.floor(fz)
        fd = d2 * f32(1.0 / st.slab)
        fd -= np.floor(fd)
        joint = ((fz < 0.06) | (fd < 0.06)) & ~road2
        M -= np.clip(f32(0.15) - px, 0, 0.15) * joint
    mark = np.zeros_like(t2)
    ps = px * t2 / f32(max(cam.pos[1], 0.5))  # metres per pixel along the road

    def line(dist, hw, period=0.0, dash=0.0):
        al = np.clip((f32(hw) + f32(0.5) * px - dist) / px, 0.0, np.minimum(1.0, f32(2 * hw) / px))
        if period > 0:
            ph = Z2 - np.floor(Z2 * f32(1 / period)) * f32(period)
            on = (ph < f32(dash)).astype(f32)
            al *= on + (ps > f32(dash)) * (f32(dash / period) - on)  # far: the dashes' mean coverage
        return al

    if st.lanes > 1:
        q = (d2 - f32(st.lane_lo)) * f32(1 / st.lane_w)
        k = np.rint(q)
        inner = (k >= 1) & (k <= st.lanes - 1)
        if st.centre[0]:
            inner &= k != st.n_left
        hw, _, period, dash = st.lane_mark
        np.maximum(mark, line(np.abs(q - k) * f32(st.lane_w), hw, period, dash) * inner, out=mark)
    cm = None
    if st.centre[0]:
        dc = np.abs(d2 - f32(st.lane_lo + st.n_left * st.lane_w))
        if st.centre[0] == 1:
            cm = line(dc, 0.07)
        elif st.centre[0] == 2:
            cm = line(np.abs(dc - f32(0.12)), 0.06)
        else:
            cm = line(dc, 0.07, st.lane_mark[2] * 0.8, st.lane_mark[3] * 1.6)
    if st.edge_lines:
        e0, e1 = st.lane_lo + 0.25, st.lane_lo + st.lanes * st.lane_w - 0.25
        np.maximum(mark, line(np.minimum(np.abs(d2 - f32(e0)), np.abs(d2 - f32(e1))), 0.06), out=mark)
    for z0, z1 in st.crossings:
        if z1 > cam.s and z0 < cam.s + 150:
            stripe = (Z2 > z0) & (Z2 < z1) & ((np.floor(d2 * f32(2.0)).astype(np.int32) & 1) == 0)
            np.maximum(mark, (stripe & (np.abs(d2) < f32(st.half - 0.3))) * f32(0.85), out=mark)
    mark *= road2 * f32(0.9)
    hz = t2 / (t2 + f32(st.haze_k))
    keep = 1.0 - hz
    if shadow is not None:
        sh = 1.0 - shadow[v0 // 2:v0 // 2 + g2.shape[0], :g2.shape[1]].astype(f32) * f32(1 / 255)
        keep *= sh
        hz *= sh
    M *= keep * (1.0 - mark)
    mark *= keep
    if cm is not None:
        cm *= road2 * keep * f32(0.9)
        M *= 1.0 - cm
    # additive colour per channel (global colour transform included), positive and negative parts
    pos, neg = [], []
    for ch in range(3):
        kc = float(st.kc[ch])
        a = mark * f32(st.lane_mark[1][ch] * kc) + hz * f32(st.haze_rgb[ch] * kc) + f32(st.bc[ch])
        if cm is not None:
            a += cm * f32(st.centre[1][ch] * kc)
        pos.append(_u8(a))
        if st.bc.min() < 0:
            neg.append(_u8(-a))
    zero = np.zeros_like(pos[0])
    Mf = cv2.resize(_u8(M * f32(128.0)), (W, rows), interpolation=cv2.INTER_LINEAR_EXACT)
    col = cv2.multiply(base, cv2.merge([Mf, Mf, Mf, np.full_like(Mf, 128)]), scale=1 / 128)  # labels × 1
    col = cv2.add(col, cv2.resize(cv2.merge([*pos, zero]), (W, rows), interpolation=cv2.INTER_LINEAR_EXACT))
    if neg:
        col = cv2.subtract(col, cv2.resize(cv2.merge([*neg, zero]), (W, rows),
                                           interpolation=cv2.INTER_LINEAR_EXACT))
    cv2.copyTo(col, g.view(np.uint8), buf[v0:])


def _skyline(fr: _Frame, buf: np.ndarray) -> None:
    """Far blocks of buildings and trees at a fixed distance ahead of the camera."""
    w, cam = fr.w, fr.cam
    st = w.st
    s = cam.s + _SKYLINE
    c = float(w.curve(s))
    P = np.array([[(d0 + c, 0.0, s), (d0 + c, h, s), (d1 + c, h, s), (d1 + c, 0.0, s)]
                  for d0, d1, h, _, _ in w.skyline]).reshape(-1, 3) - cam.pos
    R = cam.R  # (no BLAS: its results may depend on the CPU)
    Pc = np.stack([R[i, 0] * P[:, 0] + R[i, 1] * P[:, 1] + R[i, 2] * P[:, 2] for i in range(3)], 1)
    if Pc[:, 2].min() < _NEAR:
        return
    uv = np.rint(fr.project(Pc) * _ONE).astype(np.int32).reshape(-1, 4, 2)
    hz = 0.8 * _SKYLINE / (_SKYLINE + st.haze_k)
    rgb = np.array([b[3] for b in w.skyline])
    rgb = np.clip(np.rint((rgb + (np.asarray(st.haze_rgb) - rgb) * hz) * st.kc + st.bc), 0, 255).tolist()
    for (_, _, _, _, tree), q, c3 in zip(w.skyline, uv, rgb):
        cv2.fillConvexPoly(buf, q, (*c3, TREE if tree else BUILDING), cv2.LINE_8, _SHIFT)


# per-class texture strength (relative brightness noise)
_TEX_LUT = np.zeros((256, 1), np.uint8)
_TEX_LUT[:11, 0] = (3, 14, 8, 5, 7, 80, 4, 12, 6, 10, 10)


def _finish(st: _Style, buf: np.ndarray, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Image-only effects; returns (image, labels).

    One per-pixel brightness factor combines a class-dependent texture (at 1/3 resolution), a
    lighting gradient, a vignette and sensor noise; then a mild blur.
    """
    H, W = buf.shape[:2]
    lab = cv2.extractChannel(buf, 3)
    img = cv2.cvtColor(buf, cv2.COLOR_RGBA2RGB)
    h3, w3 = max(2, H // 3), max(2, W // 3)
    amp = cv2.LUT(cv2.resize(lab, (w3, h3), interpolation=cv2.INTER_NEAREST), _TEX_LUT).astype(np.float32)
    y = np.linspace(-1, 1, h3, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, w3, dtype=np.float32)[None, :]
    gx, gy = rng.uniform(-0.08, 0.08, 2)
    gain = (np.float32(1.0) + np.float32(gx) * x + np.float32(gy) * y) - np.float32(0.12) * (x * x + y * y)
    gain = gain * (1.0 + amp * (rng.random((h3, w3), np.float32) - np.float32(0.5)) * np.float32(1 / 200))
    gm = cv2.resize(_u8(gain * np.float32(128.0)), (W, H), interpolation=cv2.INTER_LINEAR_EXACT)
    # sensor noise: uniform, about st.noise grey levels rms after the blur, relative to mid-grey
    a = max(1, round(st.noise * 2.2))
    to_range = ((np.arange(256) * (2 * a + 1)) >> 8).astype(np.uint8)  # uniform bytes -> 0..2a
    noise = cv2.LUT(np.frombuffer(rng.bytes(H * W), np.uint8).reshape(H, W), to_range)
    gm = cv2.subtract(cv2.add(gm, noise), a)
    img = cv2.multiply(img, cv2.merge([gm, gm, gm]), scale=1 / 128)
    sigma = st.blur * max(scale, 0.25)
    k = 3 if sigma < 0.6 else 5 if sigma < 1.0 else 2 * math.ceil(2.5 * sigma) + 1
    img = cv2.GaussianBlur(img, (k, k), sigma)
    return img, lab


def _render(w: _World, t: float, speed: float, size: tuple[int, int], fx_seed: list[int]) -> Scene:
    H, W = size
    rng = np.random.default_rng(fx_seed)
    cam = _camera(w, t, speed, size)
    fr = _Frame(w, cam, t, speed, size)
    buf = cv2.cvtColor(_sky(w.st, cam, H, W, rng), cv2.COLOR_RGB2RGBA)
    buf[..., 3] = SKY
    oidx, dist = fr.objects()
    _skyline(fr, buf)
    _ground(fr, buf, _shadow_mask(fr, oidx))
    _draw_objects(fr, oidx, dist, buf)
    image, labels = _finish(w.st, buf, rng, fr.scale)
    if w.st.mirror:
        image, labels = cv2.flip(image, 1), cv2.flip(labels, 1)
    return Scene(image=image, labels=labels)


# --------------------------------------------------------------------------------------------------------------------
# public API


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of integers, got {size!r}.") from None
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}x{MIN_SIZE} pixels (height, width), got {h}x{w}.")
    return h, w


def _check_seed(seed: int) -> int:
    try:
        return operator.index(seed)
    except TypeError:
        raise ValueError(f"seed must be an integer, got {seed!r}.") from None


def generate_scene(seed: int, size: tuple[int, int] = (360, 480)) -> Scene:
    """Render one random street scene.

    Args:
        seed: any integer; the same seed and size give identical arrays.
        size: (height, width) in pixels, each at least 32. The focal length is proportional to the
            width, so a larger size shows the same scene in more detail.

    Returns:
        A :class:`Scene`: ``image`` H×W×3 uint8 RGB, ``labels`` H×W uint8 CamVid-11 ids 0..10.
        It equals the first frame of ``generate_drive(seed, n, size)`` for any ``n`` ≥ 1 and speed.

    Raises:
        ValueError: for a size below 32×32 pixels or a non-integer seed.
    """
    seed = _check_seed(seed)
    size = _check_size(size)
    return _render(_World(seed, _AHEAD, full=False), 0.0, 1.0, size, [seed & 0xFFFFFFFFFFFFFFFF, 0])


def generate_drive(seed: int, num_frames: int, size: tuple[int, int] = (360, 480),
                   speed: float = 1.0) -> Iterator[Scene]:
    """Render a temporally coherent drive along one street.

    The camera moves forward along the road by ``speed`` metres per frame (frame i is taken at
    ``s = i * speed``) with small smooth shake; other cars, cyclists and pedestrians move too, so
    static objects approach and grow from frame to frame. Deterministic from ``seed``; frame 0 is
    ``generate_scene(seed, size)``.

    Args:
        seed: any integer.
        num_frames: number of frames to yield, 0 or more.
        size: (height, width) in pixels, each at least 32.
        speed: camera speed in metres per frame, finite and >= 0.

    Yields:
        ``num_frames`` :class:`Scene` objects (image H×W×3 uint8 RGB, labels H×W uint8 ids 0..10).

    Raises:
        ValueError: (at the call, not at the first ``next``) for a size below 32×32, a negative
            frame count or a bad speed.
    """
    seed = _check_seed(seed)
    size = _check_size(size)
    try:
        n = operator.index(num_frames)
    except TypeError:
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}.") from None
    if n < 0:
        raise ValueError(f"num_frames must be 0 or more, got {n}.")
    speed = float(speed)
    if not math.isfinite(speed) or speed < 0:
        raise ValueError(f"speed must be a finite number of metres per frame >= 0, got {speed}.")
    return _drive(seed, n, size, speed)


def _drive(seed: int, n: int, size: tuple[int, int], speed: float) -> Iterator[Scene]:
    if n == 0:
        return
    w = _World(seed, (n - 1) * speed + _AHEAD, full=True)
    for i in range(n):
        yield _render(w, float(i), speed, size, [seed & 0xFFFFFFFFFFFFFFFF, i])
