"""The layout of a street: its extent along the road, the road's curve, side roads and what can be seen of it.

Road coordinates are ``(d, y, s)`` in metres: ``d`` lateral (positive to the right of the road
centre line), ``y`` up from the road surface, ``s`` along the road. A road point's world
position is ``(d + c(s), y, s)``, where ``c`` is the road's lateral offset (:class:`RoadCurve`).
"""

from __future__ import annotations

import math

import numpy as np

from seg_ros.synthetic.builder import lod_reach
from seg_ros.synthetic.constants import AHEAD, BEHIND, CULL_PX, FAR, HORIZON
from seg_ros.synthetic.streams import Draw
from seg_ros.synthetic.style import Style


def draw_junctions(g: Draw, s_hi: float) -> list[tuple[int, float, float]]:
    """Side roads up to ``s_hi`` (m): (side, s0, s1) each, side -1 left or +1 right, s0 < s1 in metres."""
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


class RoadCurve:
    """Lateral offset c(s) of the road centre, tabulated every 2 m (piecewise constant curvature).

    Attributes:
        curved: whether the road curves at all (c is zero everywhere otherwise).
        positions: s of the table entries (m), every 2 m from ``s_lo``.
        offsets: c at ``positions`` (m), float64; ``offsets32``: the same in float32.
    """

    def __init__(self, g: Draw, s_lo: float, s_hi: float) -> None:
        """Draw the curve of a street from ``s_lo`` to ``s_hi`` (m), followed ``HORIZON`` metres further."""
        n = int((s_hi + HORIZON + 100.0 - s_lo) / 2.0) + 2
        self.s_lo = s_lo
        self.positions = s_lo + 2.0 * np.arange(n)
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
        self.offsets = cv - np.interp(0.0, self.positions, cv)
        self.offsets32 = self.offsets.astype(np.float32)
        self._table = self.offsets.tolist()
        self._n = len(self._table)

    def at(self, s: float) -> float:
        """c(s) (m) for a Python float (much cheaper than np.interp on a scalar)."""
        if not self.curved:
            return 0.0
        x = min(max((s - self.s_lo) * 0.5, 0.0), self._n - 1.000001)
        i = int(x)
        c = self._table
        return c[i] + (c[i + 1] - c[i]) * (x - i)

    def offset(self, s: float | np.ndarray) -> float | np.ndarray:
        """c(s) (m) for scalar or array ``s`` (m)."""
        if not self.curved:
            return np.zeros_like(s) if isinstance(s, np.ndarray) else 0.0
        return np.interp(s, self.positions, self.offsets)

    def heading(self, s: float) -> float:
        """dc/ds at ``s`` (m): the tangent of the road's direction relative to +s."""
        if not self.curved:
            return 0.0
        return float((np.interp(s + 1.0, self.positions, self.offsets)
                      - np.interp(s - 1.0, self.positions, self.offsets)) / 2.0)


class Street:
    """A street's extent, look and curve, and the visibility tests that keep single scenes cheap.

    Objects are generated from ``s_lo`` to ``s_hi`` (m); small ones only up to ``s_small`` (they
    are not drawn farther than ``FAR`` anyway) and oncoming traffic up to ``s_far``.
    ``full``: build everything (drives). Otherwise (single scenes) objects and details that can
    never be drawn from the first camera position are left out.
    """

    def __init__(self, style: Style, curve: RoadCurve, s_hi: float, full: bool) -> None:
        self.style = style
        self.curve = curve
        self.full = full
        self.s_lo, self.s_hi = -BEHIND, s_hi
        self.s_small = s_hi - (AHEAD - FAR) + 10.0
        self.s_far = self.s_small + 1.3 * max(0.0, s_hi - AHEAD)  # room for oncoming traffic in drives

    def near(self, s0: float, size: float) -> bool:
        """Whether a detail of ``size`` metres on an object starting at ``s0`` must be built."""
        return self.full or s0 < lod_reach(size)

    def hidden(self, d0: float, d1: float, s0: float, s1: float, cull_m: float, far: float = FAR,
               height: float = 0.0, reach: float = 3.0) -> bool:
        """Whether an object (footprint box, metres) can be left out because it is never drawn.

        Only for single scenes (not ``full``): the test mirrors, conservatively, the culling of
        ``Frame.objects`` for the first camera position. ``height`` extends the box by the object's
        shadow, ``reach`` by parts sticking out of the box (lamp arms); ``cull_m`` must not be
        smaller than the object's own.
        """
        if self.full:
            return False
        st = self.style
        dd = max(d0 - st.cam_d, st.cam_d - d1, 0.0)
        dz = max(s0, 0.0)
        dist = math.sqrt(dd * dd + dz * dz)
        if dist >= far * 1.001 or st.focal * 480.0 * cull_m / max(dist, 1.0) < CULL_PX * 0.99:
            return True
        if st.sunny and height > 0:  # the shadow may be visible even if the object is not
            sd, ss = st.sun[0] * height, st.sun[1] * height
            d0, d1 = min(d0, d0 + sd), max(d1, d1 + sd)
            s0, s1 = min(s0, s0 + ss), max(s1, s1 + ss)
        if s1 < -2.0:
            return True
        # outside a generous wedge around the horizontal field of view
        c0, c1 = self.curve.at(s0), self.curve.at(s1)
        lo, hi = d0 + min(c0, c1) - st.cam_d, d1 + max(c0, c1) - st.cam_d
        wedge = max(s1, 0.0) * (0.5 / st.focal + 0.15) + reach + 1.0
        return lo > wedge or hi < -wedge

    def in_junction(self, side: int, s0: float, s1: float, pad: float = 0.0) -> float | None:
        """End s of a junction on ``side`` overlapping [s0, s1], else None."""
        for js, a, e in self.style.junctions:
            if js == side and s1 > a - pad and s0 < e + pad:
                return e + pad
        return None

    def pavement_back(self, side: int) -> float:
        """|d| of the back edge of the pavement on ``side``."""
        return self.style.half + self.style.pavement(side)
