"""Street furniture and trees: trees, street lights, sign posts, traffic lights and fences."""

from __future__ import annotations

import math

from seg_ros.synthetic.builder import LAYER_BACK, LAYER_FREE, Builder
from seg_ros.synthetic.classes import FENCE, POLE, SIGN, TREE
from seg_ros.synthetic.constants import FAR, FAR_BUILDINGS
from seg_ros.synthetic.geometry import CIRCLE_10, CIRCLE_12, OCTAGON, shade
from seg_ros.synthetic.palette import FENCE_COLS, LEAF_COLS, POLE_COLS
from seg_ros.synthetic.streams import Draw
from seg_ros.synthetic.street import Street


def add_tree(street: Street, b: Builder, g: Draw, d: float, s: float, layer: int, big: bool = False) -> None:
    """A tree standing at (d, s) (m): a trunk and a crown of overlapping blobs; ``big`` for yards and back rows."""
    st = street.style
    r = g.sub(100)
    h = r.u(5.0, 11.0) if big else r.u(3.5, 8.5)
    trunk_w = r.u(0.22, 0.45) * (1.2 if big else 1.0)
    crown_r = r.u(1.4, 2.6) * (1.3 if big else 1.0)
    crown_y = h - crown_r * 0.8
    half = crown_r * 1.8
    if street.hidden(d - half, d + half, s - 0.3, s + 0.3, crown_r, FAR_BUILDINGS if layer == LAYER_BACK else FAR, h):
        return
    bark = r.col((84, 68, 54), 10, 0.15)
    leaf = r.col(r.pick(LEAF_COLS), 12, 0.15)
    nb = 2 + int(r.r() * 3)
    b.begin()
    if st.sunny:
        dx, dz = st.sun[0] * crown_y, st.sun[1] * crown_y
        b.shadow([(d + dx + crown_r * c, s + dz + crown_r * 0.8 * sn) for c, sn in CIRCLE_10], st.shadow_k * 0.8)
    b.seg([(d, 0.0, s)], [(d, crown_y + crown_r * 0.2, s)], trunk_w, TREE, bark, minpx=1.5)
    for i in range(nb):
        # each blob of the crown takes 16 numbers of the tree's block, from the 20th on
        blob = r.values[20 + 16 * i:36 + 16 * i]
        radii, (lateral, height, size, tone) = blob[:12], blob[12:]
        if i == 0:
            ox, oy, rad = 0.0, 0.0, crown_r
        else:
            ox = (2 * lateral - 1) * 0.8 * crown_r
            oy = (height * 1.1 - 0.5) * crown_r
            rad = crown_r * (0.45 + 0.35 * size)
        sh = 1.0 + 0.12 * (oy / crown_r) + 0.24 * (tone - 0.5)
        pts = [(d + ox + rad * (0.75 + 0.4 * q) * c, crown_y + oy + rad * 0.9 * (0.75 + 0.4 * q) * sn, s - 0.05 * i)
               for q, (c, sn) in zip(radii, CIRCLE_12)]
        b.poly(pts, TREE, shade(leaf, sh), convex=False)
    b.end(layer, (d - half, d + half, s - 0.3, s + 0.3), crown_r)


def add_trees(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Rows of trees along the kerb on ``side``."""
    st = street.style
    s = street.s_lo + g.u(0, 10)
    pave = st.pavement(side)
    while s < street.s_small:
        r = g.sub(40)
        if r.r() < 0.45 + 0.35 * (1 - st.urban):  # a row of trees along the kerb
            spacing = r.u(6.0, 14.0)
            n = 2 + int(r.r() * 7)
            off = r.u(0.6, max(0.7, min(1.4, pave - 0.5)))
            for i in range(n):
                si = s + i * spacing + r.u(-1, 1)
                if street.in_junction(side, si - 2, si + 2) is None:
                    add_tree(street, b, g, side * (st.half + off), si, LAYER_FREE)
            s += n * spacing
        s += r.u(10.0, 60.0)


def add_pole(street: Street, b: Builder, r: Draw, d: float, s: float, side: int, lamp: bool) -> float:
    """A street light or a sign post; returns the post width (m)."""
    rgb = r.col(r.pick(POLE_COLS), 8, 0.1)
    st = street.style
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
                (de - 0.25, h - 0.02, s - 0.02)], POLE, shade(rgb, 0.8))
    else:
        w = r.u(0.12, 0.18)
        b.seg([(d, 0.0, s)], [(d, r.u(2.2, 3.4), s)], w, POLE, rgb, minpx=3.0)
    return w


def add_sign_plate(b: Builder, r: Draw, d: float, y: float, s: float) -> float:
    """A sign plate centred at (d, y, s) facing -s; returns its height (m)."""
    kind = r.pick((0, 1, 2, 3, 4))
    s = s - 0.06
    if kind == 0:  # round: red ring, white or blue disc
        rad = r.u(0.3, 0.42)
        b.poly([(d + rad * c, y + rad * sn, s) for c, sn in CIRCLE_12], SIGN, (196, 32, 36))
        b.poly([(d + 0.75 * rad * c, y + 0.75 * rad * sn, s - 0.005) for c, sn in CIRCLE_12], SIGN,
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
        b.poly([(d + rad * c, y + rad * sn, s) for c, sn in OCTAGON], SIGN, (190, 28, 34))
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


def add_traffic_light(b: Builder, r: Draw, d: float, y: float, s: float) -> None:
    """A traffic light housing centred at (d, y, s) facing -s, one of its three lamps on."""
    hw, hh = 0.17, 0.5
    b.poly([(d - hw, y - hh, s), (d + hw, y - hh, s), (d + hw, y + hh, s), (d - hw, y + hh, s)], SIGN, (30, 32, 30))
    on = r.pick((0, 1, 2))
    for i, rgb in enumerate(((220, 40, 30), (230, 160, 30), (40, 200, 90))):
        yy = y + 0.3 - 0.3 * i
        b.poly([(d + 0.1 * c, yy + 0.1 * sn, s - 0.01) for c, sn in OCTAGON], SIGN, rgb if i == on else (60, 55, 50),
               lod=0.2)


def add_street_lights(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Evenly spaced street lights along the kerb on ``side``, some carrying a sign."""
    st = street.style
    if g.r() < 0.15:
        return  # no street lights on this side
    spacing = g.u(18.0, 40.0)
    s = street.s_lo + g.u(0, spacing)
    off = st.half + g.u(0.35, 0.7)
    while s < street.s_small:
        r = g.sub(30)
        step = spacing * r.u(0.9, 1.1)
        d = side * off
        if (street.in_junction(side, s - 1, s + 1) is None
                and not street.hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.64, height=10.0)):
            b.begin()
            w = add_pole(street, b, r, d, s, side, True)
            if r.r() < 0.3:
                add_sign_plate(b, r, d, r.u(2.4, 3.2), s)
            b.end(LAYER_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 2 * w)
        s += step


def add_signs(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Sign posts (one or two plates, or a traffic light) along the kerb on ``side``."""
    st = street.style
    s = street.s_lo + g.u(0.0, 25.0)
    while s < street.s_small:
        r = g.sub(40)
        step = r.u(12.0, 40.0)
        d = side * (st.half + r.u(0.3, 0.8))
        if (street.in_junction(side, s - 1, s + 1) is None
                and not street.hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.36)):
            b.begin()
            w = add_pole(street, b, r, d, s, side, False)
            top = 2.2 + r.u(0.1, 1.0)
            if r.r() < 0.15:
                add_traffic_light(b, r, d, top, s - 0.1)
            else:
                hgt = add_sign_plate(b, r, d, top, s)
                if r.r() < 0.3:
                    add_sign_plate(b, r, d, top - hgt / 2 - 0.45, s)
            b.end(LAYER_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 2 * w)
        s += step


def add_traffic_lights(street: Street, b: Builder, g: Draw) -> None:
    """Traffic lights before junctions: SignSymbol housing on a Pole."""
    st = street.style
    for _, s0, _ in st.junctions:
        for sd in (-1, 1):
            r = g.sub(8)
            d = sd * (st.half + 0.5)
            s = s0 - 1.5
            if r.r() < 0.55 and not street.hidden(d - 0.2, d + 0.2, s - 0.2, s + 0.2, 0.32):
                b.begin()
                b.seg([(d, 0.0, s)], [(d, 3.2, s)], 0.16, POLE, r.col(r.pick(POLE_COLS), 8), minpx=2.0)
                add_traffic_light(b, r, d, 2.7, s - 0.1)
                b.end(LAYER_FREE, (d - 0.2, d + 0.2, s - 0.2, s + 0.2), 0.32)


def add_fence(street: Street, b: Builder, g: Draw, side: int, x: float, s0: float, s1: float, layer: int,
              kind: int | None = None) -> None:
    """A fence along |d| = x from s0 to s1: railing (0), boards (1) or palisade (2), in pieces of <= 4 m."""
    r = g.sub(8)
    if kind is None:
        kind = r.pick((0, 1, 2))
    rgb = r.col(r.pick(FENCE_COLS), 10, 0.1)
    h = r.u(0.9, 1.3) if kind != 1 else r.u(1.0, 1.9)
    d = side * x
    n = max(1, int(math.ceil((s1 - s0) / 4.0)))
    cuts = [s0 + (s1 - s0) * i / n for i in range(n + 1)]
    for p, q in zip(cuts[:-1], cuts[1:]):
        if street.hidden(d - 0.1, d + 0.1, p, q, h):
            continue
        b.begin()
        if kind == 1:
            b.poly([(d, 0.0, p), (d, h, p), (d, h, q), (d, 0.0, q)], FENCE, rgb)
            if street.near(p, 0.25):
                m = int((q - p) / 0.25)
                sp = [p + (q - p) * (i + 1) / (m + 1) for i in range(m)]
                b.seg([(d, 0.05, v) for v in sp], [(d, h - 0.05, v) for v in sp], 0.02, FENCE, shade(rgb, 0.7),
                      minpx=0.0, lod=0.25, disjoint=True)
        else:
            rails = (h, h * 0.15) if kind == 0 else (h * 0.85, h * 0.2)
            gap = 0.14 if kind == 0 else 0.2
            top = rails[0] + (0.12 if kind == 2 else 0.0)
            # far: a solid band (the bars merge); near: individual bars
            b.poly([(d, rails[1], p), (d, top, p), (d, top, q), (d, rails[1], q)], FENCE, shade(rgb, 1.05),
                   lod=-gap)
            if street.near(p, gap):
                m = int((q - p) / gap)
                sp = [p + (q - p) * (i + 1) / (m + 1) for i in range(m)]
                b.seg([(d, rails[1], v) for v in sp], [(d, top, v) for v in sp], 0.045 if kind == 0 else 0.07,
                      FENCE, rgb, minpx=0.0, lod=gap, disjoint=True)
            b.seg([(d, 0.0, p), (d, 0.0, q)], [(d, h + 0.05, p), (d, h + 0.05, q)], 0.09, FENCE, rgb, minpx=1.5,
                  disjoint=True)
            b.seg([(d, y, p) for y in rails], [(d, y, q) for y in rails], 0.06, FENCE, rgb, minpx=1.0,
                  disjoint=True)
        b.end(layer, (d - 0.1, d + 0.1, p, q), h)


def add_fences(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Pedestrian guard railings along the kerb."""
    st = street.style
    s = street.s_lo + g.u(0.0, 40.0)
    while s < street.s_small:
        r = g.sub(4)
        length = r.u(6.0, 30.0)
        if street.in_junction(side, s, s + length, pad=3.0) is None:
            add_fence(street, b, g, side, st.half + r.u(0.25, 0.45), s, s + length, LAYER_FREE,
                      0 if r.r() < 0.6 else 2)
        s += length + r.u(15.0, 110.0) * (1.5 - st.urban)
