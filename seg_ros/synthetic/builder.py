"""Collection of a street's objects as drawing records over one shared vertex buffer.

A record is a polygon, a batch of polygons, thick segments, a ground shadow or a facade's window
grid, with its class id and colour; an object is a run of consecutive records with a footprint
box, a painter layer and a speed.
"""

from __future__ import annotations

from itertools import chain
from typing import NamedTuple

import numpy as np

from seg_ros.synthetic.classes import BUILDING, SKY
from seg_ros.synthetic.constants import LOD_PX
from seg_ros.synthetic.geometry import RGB, Point

# record kinds: convex / any polygon, back-face-culled convex polygon, batch of disjoint polygons,
# thick segment(s), batch of disjoint thick segments, ground shadow (image only)
# and a grid of facade windows generated at drawing time
POLY, POLY_ANY, POLY_CULLED, POLY_BATCH, SEGMENT, SEGMENT_BATCH, SHADOW, WINDOW_GRID = range(8)
# painter layers, drawn in this order (far to near within a layer)
LAYER_BACK, LAYER_FRONT, LAYER_YARD, LAYER_FREE = range(4)


class WindowGrid(NamedTuple):
    """A facade's windows: ``rows`` × ``cols`` windows, each with 4×4 corners (frame and pane edges).

    ``d``, ``y``, ``s``: road coordinates (m) of the (4·rows) × (4·cols) corner grid, flattened row
    by row; ``frame_rgb`` and ``glass_rgb``: the colours of frames and panes.
    """

    rows: int
    cols: int
    frame_rgb: RGB
    glass_rgb: RGB
    d: np.ndarray
    y: np.ndarray
    s: np.ndarray


def lod_reach(size: float) -> float:
    """Ground distance (m) beyond which a detail of ``size`` metres is never drawn (widest lens)."""
    return size * 0.95 * 480.0 / LOD_PX + 2.0


class Builder:
    """Collects objects as drawing records that index one shared vertex buffer (road coordinates).

    Every vertex belongs to exactly one record, and records are stored in vertex order, so
    per-record reductions over the buffer are single ``np.*.reduceat`` calls.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._cur: list = []
        self.nv = 0
        # records: (first vertex, vertices per polygon, polygons or segments, kind, label, rgb, lod, width, min px)
        # lod > 0: drawn only if it projects to >= LOD_PX; lod < 0: only if smaller. For a shadow, width is its
        # strength; for a window grid, its index in grids.
        self.recs: list[tuple] = []
        # objects: (layer, d0, d1, s0, s1, cull size, velocity, first record, end record)
        self.objs: list[tuple] = []
        self.grids: list[WindowGrid] = []
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
        """All vertices added so far, (n, 3) float64 road coordinates (d, y, s) in metres."""
        if self._cur:
            cur = self._cur
            self._chunks.append(np.fromiter(chain.from_iterable(cur), np.float64, 3 * len(cur)).reshape(-1, 3))
            self._cur = []
        return np.concatenate(self._chunks) if self._chunks else np.zeros((0, 3))

    def _lab(self, lab: int) -> int:
        self._last = lab  # a shadow added next takes this label
        return lab

    def poly(self, pts: list[Point], lab: int, rgb: RGB, lod: float = 0.0, convex: bool = True) -> None:
        """One planar polygon from a list of (d, y, s) points."""
        self.recs.append((self._add(pts), len(pts), 1, POLY if convex else POLY_ANY, self._lab(lab), rgb, lod, 0.0,
                          0.0))

    def faces(self, polys: list[list[Point]], lab: int, rgb: RGB | list[RGB], cull: bool = True,
              lod: float = 0.0) -> None:
        """k polygons of n (d, y, s) points each, one record each (``rgb``: one colour or a list of k).

        ``cull``: skip a polygon seen from behind (its points run counter-clockwise seen from the front).
        """
        k, n = len(polys), len(polys[0])
        v0 = self._add([p for q in polys for p in q])
        lab = self._lab(lab)
        kind = POLY_CULLED if cull else POLY
        many = isinstance(rgb, list)
        self.recs.extend((v0 + i * n, n, 1, kind, lab, rgb[i] if many else rgb, lod, 0.0, 0.0) for i in range(k))

    def batch(self, polys: np.ndarray | list[list[Point]], lab: int, rgb: RGB, lod: float = 0.0) -> None:
        """k polygons of n points ((k, n, 3) array or list of lists) that never overlap; one call, one colour."""
        k = len(polys)
        if k:
            n = len(polys[0])
            v0 = self._add(polys if isinstance(polys, np.ndarray) else [p for q in polys for p in q])
            self.recs.append((v0, n, k, POLY_BATCH, self._lab(lab), rgb, lod, 0.0, 0.0))

    def seg(self, a: list[Point], b: list[Point], width: float, lab: int, rgb: RGB, minpx: float = 1.0,
            lod: float = 0.0, disjoint: bool = False) -> None:
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
            self.recs.append((v0, 2, k, SEGMENT_BATCH, lab, rgb, lod, width, minpx))
        else:
            self.recs.extend((v0 + 2 * i, 2, 1, SEGMENT, lab, rgb, lod, width, minpx) for i in range(k))

    def grid(self, corners: list, windows: WindowGrid, lod: float) -> None:
        """A facade's window grid: ``corners`` bound it (4 points)."""
        self.grids.append(windows)
        self.recs.append((self._add(corners), 4, 1, WINDOW_GRID, self._lab(BUILDING), (0, 0, 0), lod,
                          float(len(self.grids) - 1), 0.0))

    def shadow(self, pts: list, strength: float) -> None:
        """A ground polygon from (d, s) pairs that darkens the ground by ``strength`` (0..1); image only."""
        self.recs.append((self._add([(d, 0.0, s) for d, s in pts]), len(pts), 1, SHADOW, self._last, (0, 0, 0), 0.0,
                          strength, 0.0))

    def begin(self) -> None:
        """Open a new object: the records added until :meth:`end` belong to it."""
        self._r0 = len(self.recs)
        self._last = SKY

    def end(self, layer: int, box: tuple[float, float, float, float], cull_m: float, vel: float = 0.0) -> None:
        """Close the current object.

        ``box``: footprint (d0, d1, s0, s1), metres, for ordering and culling; ``cull_m``: the object
        is skipped when this size projects below ``CULL_PX``; ``vel``: speed along +s as a multiple of
        the camera speed.
        """
        if len(self.recs) > self._r0:
            self.objs.append((layer, box[0], box[1], box[2], box[3], cull_m, vel, self._r0, len(self.recs)))
