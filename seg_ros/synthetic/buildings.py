"""Buildings: the far skyline, rows of buildings with windows and shop fronts, back rows and front yards."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from seg_ros.synthetic.builder import LAYER_BACK, LAYER_FRONT, LAYER_YARD, Builder, WindowGrid
from seg_ros.synthetic.classes import BUILDING, TREE
from seg_ros.synthetic.constants import FAR_BUILDINGS
from seg_ros.synthetic.furniture import add_fence, add_tree
from seg_ros.synthetic.geometry import RGB, shade, sweep, wall
from seg_ros.synthetic.palette import BUILDING_COLS, LEAF_COLS
from seg_ros.synthetic.streams import Draw
from seg_ros.synthetic.street import Street


class SkylineBlock(NamedTuple):
    """A far backdrop block: lateral extent ``d0``..``d1`` and ``height`` (m), RGB, and whether it is trees."""

    d0: float
    d1: float
    height: float
    rgb: RGB
    is_tree: bool


def draw_skyline(g: Draw) -> list[SkylineBlock]:
    """Far background blocks, drawn at a fixed distance ahead of the camera."""
    out = []
    d = -300.0
    r = g.sub(600)
    while d < 300.0 and r.pos < 590:
        w = r.u(8, 40)
        tree = r.r() < 0.35
        h = r.u(4, 12) if tree else r.u(6, 40)
        rgb = r.col((70, 92, 62) if tree else r.pick(BUILDING_COLS), 10, 0.1)
        out.append(SkylineBlock(d, d + w, h, rgb, tree))
        d += w * r.u(0.7, 1.0)
    return out


def add_building(street: Street, b: Builder, g: Draw, side: int, x: float, s0: float, s1: float, h: float,
                 layer: int, detail: bool) -> None:
    """A building of height ``h`` whose facade runs at |d| = ``x`` from ``s0`` to ``s1`` (m), on ``side``.

    ``detail``: add shop fronts, storey bands and windows.
    """
    st = street.style
    r = g.sub(40)
    depth = r.u(8.0, 16.0)
    d_in, d_out = side * x, side * (x + depth)
    d0, d1 = min(d_in, d_out), max(d_in, d_out)
    if street.hidden(d0, d1, s0, s1, 2.0, FAR_BUILDINGS, h):
        return
    base = r.col(r.pick(BUILDING_COLS), 14, 0.12)
    storey = r.u(2.8, 3.6)
    facade = r.pick((0, 1, 2))  # plain windows / shop front + windows / windows + storey bands
    trim = shade(base, 1.2 if r.r() < 0.5 else 0.7)
    wcol = r.col(r.pick(((46, 54, 66), (70, 80, 96), (30, 34, 40), (96, 112, 128))), 10)
    shop = r.col(r.pick(((40, 45, 52), (70, 60, 50), (30, 30, 34))), 10)
    band = r.col(r.pick(((150, 30, 30), (30, 50, 110), (20, 20, 20), (200, 190, 170), (40, 90, 60))), 12)
    wl = r.u(0.9, 1.7)
    pitch = wl + r.u(0.8, 2.2)
    wh = storey * r.u(0.4, 0.6)
    lit = (1.08 if side * st.sun_side < 0 else 0.78) if st.sunny else 0.95
    b.begin()
    if st.sunny:
        b.shadow(sweep(d0, d1, s0, s1, (st.sun[0] * h, st.sun[1] * h)), st.shadow_k)
    end_rgb = shade(base, 0.86 if st.sunny else 0.9)
    b.faces([[(d0, 0.0, s0), (d0, h, s0), (d1, h, s0), (d1, 0.0, s0)],
             [(d0, 0.0, s1), (d1, 0.0, s1), (d1, h, s1), (d0, h, s1)]], BUILDING, end_rgb)
    # facade in pieces of <= 8 m so that it follows the road curve; it always faces the camera
    n = max(1, int(math.ceil((s1 - s0) / 8.0)))
    ss = [s0 + (s1 - s0) * i / n for i in range(n + 1)]
    b.batch(wall(d_in, ss, 0.0, h, -side), BUILDING, shade(base, lit))
    if detail:
        if facade == 1 and s1 - s0 > 3.0 and street.near(s0, 0.5):
            sh = [min(max(v, s0 + 0.4), s1 - 0.4) for v in ss]
            b.batch(wall(d_in, sh, 0.35, storey * 0.72, -side), BUILDING, shop, lod=0.5)
            sh = [min(max(v, s0 + 0.1), s1 - 0.1) for v in ss]
            b.batch(wall(d_in, sh, storey * 0.76, storey * 0.96, -side), BUILDING, band, lod=0.5)
        elif facade == 2 and street.near(s0, 0.3):
            ys = [storey * i for i in range(1, int(h / storey))]
            b.seg([(d_in, y, s0 + 0.05) for y in ys], [(d_in, y, s1 - 0.05) for y in ys], 0.18, BUILDING,
                  shade(base, 0.8), minpx=0.0, lod=0.3, disjoint=True)
        first = 1 if facade == 1 else 0
        n_s = int((s1 - s0 - 1.0) / pitch)
        n_y = int((h - 1.0) / storey)
        if n_s >= 1 and n_y > first:
            s_a = s0 + (s1 - s0 - n_s * pitch) / 2 + (pitch - wl) / 2
            y_a = storey * (first + 0.35)
            dw = side * (x - 0.03)
            y_b = y_a + storey * (n_y - first - 1) + wh
            s_b = s_a + pitch * (n_s - 1) + wl
            if street.near(s0, 0.6):
                b.grid([(dw, y_a, s_a), (dw, y_a, s_b), (dw, y_b, s_b), (dw, y_b, s_a)],
                       window_grid(dw, s_a, pitch, n_s, y_a, storey, n_y - first, wl, wh, trim, wcol), lod=0.6)
    b.end(layer, (d0, d1, s0, s1), 2.0)


def add_buildings(street: Street, b: Builder, g: Draw, side: int) -> None:
    """The row of buildings along the back of the pavement on ``side``, with gaps and front yards."""
    st = street.style
    line = street.pavement_back(side)
    s = -30.0 - g.u(0, 15)
    setback = 0.0
    while s < street.s_hi:
        j = street.in_junction(side, s, s + 4.0, pad=1.0)
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
        add_building(street, b, g, side, line + setback, s, s + length, h, LAYER_FRONT, True)
        if setback > 0.6:
            add_yard(street, b, g, side, line, setback, s, s + length)
        s += length
        if r.r() < 0.5 - 0.35 * st.urban:
            gap = r.u(2.0, 14.0)
            if r.r() < 0.7:
                add_yard(street, b, g, side, line, max(setback, 1.5), s, s + gap)
            s += gap


def add_yard(street: Street, b: Builder, g: Draw, side: int, line: float, depth: float, s0: float,
             s1: float) -> None:
    """Front-garden edge: a fence or a hedge along the pavement back line, maybe a tree."""
    if s1 - s0 < 1.0:
        return
    r = g.sub(40)
    kind = r.r()
    if kind < 0.45:
        add_fence(street, b, g, side, line + 0.15, s0, s1, LAYER_YARD)
    elif kind < 0.8:
        hh = r.u(0.8, 1.9)
        rgb = r.col(r.pick(LEAF_COLS), 10)
        dd = side * (line + 0.3)
        dd2 = side * (line + 0.3 + r.u(0.5, 1.0))
        p = s0
        while p < s1 - 0.5:  # pieces of <= 5 m, for painter ordering and the road curve
            q = min(s1, p + 5.0)
            if street.hidden(min(dd, dd2), max(dd, dd2), p, q, 0.5):
                p = q
                continue
            b.begin()
            m = max(2, int(q - p) + 1)
            # the hedge's ragged top reuses the yard's numbers as a fixed noise table
            top = [(dd, hh + 0.2 * (r.values[(i * 7 + int(p)) % 40] - 0.5), p + (q - p) * i / (m - 1))
                   for i in range(m)]
            b.poly([(dd, 0.0, p)] + top + [(dd, 0.0, q)], TREE, rgb, convex=False)
            if p == s0:
                b.poly([(dd, 0.0, s0), (dd, hh, s0), (dd2, hh, s0), (dd2, 0.0, s0)], TREE, shade(rgb, 0.8))
            b.end(LAYER_YARD, (min(dd, dd2), max(dd, dd2), p, q), 0.5)
            p = q
    if r.r() < 0.45 and depth > 2.0:
        add_tree(street, b, g, side * (line + r.u(1.0, depth)), r.u(s0, s1), LAYER_YARD, big=True)


def add_back_row(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Tall buildings and clumps of trees 12-22 m behind the pavement on ``side``, seen through the gaps."""
    line = street.pavement_back(side) + g.u(12.0, 22.0)
    s = -40.0 - g.u(0, 20)
    while s < street.s_hi + 20.0:
        r = g.sub(12)
        length = r.u(10.0, 40.0)
        if r.r() < 0.3:  # a clump of tall trees instead of a building
            for _ in range(1 + int(r.r() * 3)):
                add_tree(street, b, g, side * (line + r.u(-4.0, 4.0)), s + r.u(0, length), LAYER_BACK, big=True)
        else:
            add_building(street, b, g, side, line + r.u(0, 6), s, s + length, r.u(8.0, 30.0), LAYER_BACK,
                         r.r() < 0.6)
        s += length + (r.u(1.0, 10.0) if r.r() < 0.3 else 0.0)


def window_grid(dw: float, s_a: float, pitch: float, n_s: int, y_a: float, storey: float, n_y: int, wl: float,
                wh: float, trim: RGB, glass: RGB) -> WindowGrid:
    """Corner points of a window grid on the facade plane d = ``dw`` (metres).

    Windows are ``wl`` long and ``wh`` high, every ``pitch`` metres along the road from ``s_a`` and
    every ``storey`` metres up from ``y_a``. Each window has four corner heights and four corner
    positions (frame low, pane low, pane high, frame high), so all corners form a (4·n_y) × (4·n_s)
    grid, returned flattened with the colours.
    """
    k = np.array([-0.07, 0.07, 0.93, 1.07])
    ys = ((y_a + storey * np.arange(n_y))[:, None] + wh * k).ravel()
    ss = ((s_a + pitch * np.arange(n_s))[:, None] + wl * k).ravel()
    Y = np.repeat(ys, ss.size)
    S = np.tile(ss, ys.size)
    return WindowGrid(n_y, n_s, trim, glass, np.full(S.size, dw), Y, S)
