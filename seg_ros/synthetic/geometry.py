"""Small 3-D shapes in road coordinates ``(d, y, s)`` (metres): boxes, insets, walls, shadows and colour shades."""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float, float]
"""A point in road coordinates (d, y, s), metres."""

RGB = Sequence[float]
"""An RGB colour, nominally 0..255 (not clipped until drawn)."""


def shade(c: RGB, k: float) -> tuple[float, float, float]:
    """RGB ``c`` scaled by ``k`` (not clipped)."""
    return (c[0] * k, c[1] * k, c[2] * k)


def unit_circle(n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    """``n`` points (cos, sin) evenly spaced on the unit circle, the first at angle ``phase`` (rad)."""
    return [(math.cos(phase + 2 * math.pi * i / n), math.sin(phase + 2 * math.pi * i / n)) for i in range(n)]


CIRCLE_12, CIRCLE_10, OCTAGON = unit_circle(12), unit_circle(10), unit_circle(8, math.pi / 8)


def box(d0: float, d1: float, y0: float, y1: float, s0: float, s1: float) -> list[list[tuple]]:
    """Faces −d, +d, −s, +s and top of an axis-aligned box, counter-clockwise seen from outside."""
    return frustum(d0, d1, y0, y1, s0, s1, 0.0, 0.0, 0.0)


def frustum(d0: float, d1: float, y0: float, y1: float, s0: float, s1: float,
             ind: float, is0: float, is1: float) -> list[list[tuple]]:
    """Like :func:`box`, but the top is inset by ``ind`` laterally and by ``is0``/``is1`` at the s ends."""
    e0, e1, t0, t1 = d0 + ind, d1 - ind, s0 + is0, s1 - is1
    return [
        [(d0, y0, s0), (d0, y0, s1), (e0, y1, t1), (e0, y1, t0)],
        [(d1, y0, s0), (e1, y1, t0), (e1, y1, t1), (d1, y0, s1)],
        [(d0, y0, s0), (e0, y1, t0), (e1, y1, t0), (d1, y0, s0)],
        [(d0, y0, s1), (d1, y0, s1), (e1, y1, t1), (e0, y1, t1)],
        [(e0, y1, t0), (e0, y1, t1), (e1, y1, t1), (e1, y1, t0)],
    ]


def inset(face: list[tuple], k: float, dy: float = 0.0) -> list[tuple]:
    """A polygon scaled by ``k`` about its vertex mean (winding kept) and shifted up by ``dy``."""
    n = len(face)
    cx = sum(p[0] for p in face) / n
    cy = sum(p[1] for p in face) / n
    cz = sum(p[2] for p in face) / n
    return [(cx + (p[0] - cx) * k, cy + (p[1] - cy) * k + dy, cz + (p[2] - cz) * k) for p in face]


def sub_quad(face: list[tuple], fy: tuple[float, float], fa: tuple[float, float]) -> list[tuple]:
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


def sweep(d0: float, d1: float, s0: float, s1: float, t: tuple[float, float]) -> list[tuple[float, float]]:
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


def wall(d: float, ss: list[float], y0: float, y1: float, normal: int) -> list[list[tuple]]:
    """Vertical quads in the plane d = const between consecutive ``ss``, facing ``normal`` (±1) along d."""
    if normal < 0:
        return [[(d, y0, a), (d, y0, e), (d, y1, e), (d, y1, a)] for a, e in zip(ss[:-1], ss[1:])]
    return [[(d, y0, a), (d, y1, a), (d, y1, e), (d, y0, e)] for a, e in zip(ss[:-1], ss[1:])]
