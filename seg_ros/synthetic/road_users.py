"""Road users: parked and moving cars, pedestrians and cyclists.

Moving objects carry a velocity along +s as a multiple of the camera speed; the renderer moves
them by that much per frame.
"""

from __future__ import annotations

import math

from seg_ros.synthetic.builder import LAYER_FREE, Builder
from seg_ros.synthetic.classes import BICYCLIST, CAR, PEDESTRIAN
from seg_ros.synthetic.constants import AHEAD, BEHIND
from seg_ros.synthetic.geometry import CIRCLE_10, CIRCLE_12, OCTAGON, box, frustum, inset, shade, sub_quad, sweep
from seg_ros.synthetic.palette import CAR_COLS, CLOTH_COLS, HAIR_COLS, SKIN_COLS
from seg_ros.synthetic.streams import Draw, LaneStreams
from seg_ros.synthetic.street import Street


def add_car(street: Street, b: Builder, g: Draw, d: float, s: float, heading: int, vel: float) -> None:
    """A car or van centred at (d, s) (m), its front towards +s (``heading`` 1) or -s (-1), moving at ``vel``."""
    st = street.style
    r = g.sub(24)
    L = r.u(3.7, 4.9)
    W = r.u(1.65, 1.9)
    H = r.u(1.38, 1.62) if r.r() < 0.8 else r.u(1.65, 1.95)
    van = H > 1.7 and r.r() < 0.5
    s0, s1, d0, d1 = s - L / 2, s + L / 2, d - W / 2, d + W / 2
    if street.hidden(d0 - 0.3, d1 + 0.3, s0 - 0.3, s1 + 0.3, W * 0.8, height=H):
        return
    rgb = r.col(r.pick(CAR_COLS), 8, 0.08)
    glass = r.col((52, 60, 72), 8, 0.15)
    back, front = r.u(0.55, 1.05), r.u(0.95, 1.3)
    R, y_body = 0.31, 0.26
    belt = H * (0.62 if not van else 0.55)
    near = street.near(s0, 0.25)
    b.begin()
    b.shadow([(d0 - 0.1, s0 - 0.2), (d1 + 0.1, s0 - 0.2), (d1 + 0.1, s1 + 0.2), (d0 - 0.1, s1 + 0.2)], 0.55)
    if st.sunny:
        b.shadow(sweep(d0, d1, s0, s1, (st.sun[0] * H * 0.8, st.sun[1] * H * 0.8)), st.shadow_k)
    # wheels: tyres seen end-on, then the outer octagonal caps; the body hides their upper half
    ws = (s0 + 0.75, s1 - 0.8)
    if street.near(s0, 0.5):
        for w_s in ws:
            b.batch([[(d0 + 0.02, 0.0, w_s), (d0 + 0.02, 2 * R, w_s), (d0 + 0.22, 2 * R, w_s),
                      (d0 + 0.22, 0.0, w_s)],
                     [(d1 - 0.22, 0.0, w_s), (d1 - 0.22, 2 * R, w_s), (d1 - 0.02, 2 * R, w_s),
                      (d1 - 0.02, 0.0, w_s)]], CAR, (28, 28, 30), lod=0.5)
        for cap in (d0 + 0.02, d1 - 0.02):
            b.batch([[(cap, R + R * sn, w_s + R * c) for c, sn in OCTAGON] for w_s in ws], CAR, (44, 44, 46), lod=0.5)
    body = box(d0, d1, y_body, belt, s0, s1)
    k_side = (0.95 if st.sun_side > 0 else 0.75) if st.sunny else 0.88
    b.faces(body, CAR, [shade(rgb, k_side), shade(rgb, 1.7 - k_side), shade(rgb, 0.85), shade(rgb, 0.85),
                        shade(rgb, 1.12)])
    if van:
        cab = frustum(d0 + 0.04, d1 - 0.04, belt, H, s0 + 0.05, s1 - 0.6, 0.08, 0.2, 0.3)
    else:
        cab = frustum(d0 + 0.07, d1 - 0.07, belt, H, s0 + back, s1 - front, 0.14, 0.35, 0.45)
    if heading < 0:  # front towards -s: mirror along s about the car centre (and fix the winding)
        cab = [[(p[0], p[1], 2 * s - p[2]) for p in reversed(cab[i])] for i in (0, 1, 3, 2, 4)]
    b.faces(cab, CAR, [shade(rgb, k_side * 0.95), shade(rgb, (1.7 - k_side) * 0.95), shade(rgb, 0.8),
                       shade(rgb, 0.8), shade(rgb, 1.05)])
    if street.near(s0, 0.5):
        b.faces([inset(f, 0.84, -0.02) for f in cab[:4]], CAR, [glass, glass, shade(glass, 1.2),
                                                                  shade(glass, 1.2)], lod=0.5)
    if near:
        back_face, front_face = (body[2], body[3]) if heading > 0 else (body[3], body[2])
        fy = ((belt - 0.24 - y_body) / (belt - y_body), (belt - 0.08 - y_body) / (belt - y_body))
        lamps = [sub_quad(f, fy, fa) for f in (back_face, front_face) for fa in ((0.06, 0.24), (0.76, 0.94))]
        b.faces(lamps, CAR, [(170, 20, 24), (170, 20, 24), (236, 232, 210), (236, 232, 210)], lod=0.25)
    b.end(LAYER_FREE, (d0, d1, s0, s1), W * 0.8, vel)


def add_parked_cars(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Cars in the parking strip on ``side``, if the road has one there."""
    st = street.style
    if not st.parking(side):
        return
    d = side * (st.half - 1.1)
    s = street.s_lo + g.u(0.0, 8.0)
    fill = g.u(0.3, 0.8)
    while s < street.s_small:
        r = g.sub(4)
        if r.r() < fill:
            if street.in_junction(side, s - 3, s + 3, pad=3.0) is None:
                add_car(street, b, g, d + r.u(-0.15, 0.15), s, 1 if r.r() < 0.7 else -1, 0.0)
            s += r.u(4.8, 8.0)
        else:
            s += r.u(4.0, 30.0)


def add_traffic(street: Street, b: Builder, lanes: tuple[LaneStreams, ...]) -> None:
    """Moving cars, one speed per lane so they never run into each other.

    Each lane has two streams: cars ahead of s = 0 (generated outwards) and cars behind it,
    which matter in drives where a faster lane overtakes the camera.
    """
    st = street.style
    ego = int((st.cam_d - st.lane_lo) // st.lane_w)
    for lane in range(st.lanes):
        g, gb = lanes[lane]
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
        s_end = street.s_far if oncoming else street.s_small
        while s < s_end:
            r = g.sub(3)
            if r.r() < density:
                add_car(street, b, g, d + r.u(-0.25, 0.25), s, head, vel)
            s += r.u(8.0, 45.0)
        if lane == ego or vel <= 1.0:
            continue
        s = -6.0 - gb.u(8.0, 30.0)
        s_back = -BEHIND - (vel - 1.0) * (street.s_hi - AHEAD)
        while s > s_back:
            r = gb.sub(3)
            if r.r() < density:
                add_car(street, b, gb, d + r.u(-0.25, 0.25), s, head, vel)
            s -= r.u(8.0, 45.0)


def add_person(street: Street, b: Builder, g: Draw, d: float, s: float, vel: float) -> None:
    """A pedestrian standing at (d, s) (m), walking at ``vel``."""
    r = g.sub(40)
    h = r.u(1.55, 1.92) if r.r() < 0.9 else r.u(1.0, 1.4)
    if street.hidden(d - 0.3, d + 0.3, s - 0.2, s + 0.2, 0.45, height=h):
        return
    top = r.col(r.pick(CLOTH_COLS), 12, 0.15)
    legs = r.col(r.pick(((44, 56, 90), (30, 30, 34), (80, 80, 86), (120, 100, 80), (20, 24, 40))), 8, 0.15)
    skin = r.col(r.pick(SKIN_COLS), 8, 0.05)
    hair = r.col(r.pick(HAIR_COLS), 6, 0.1)
    bag = r.col((60, 40, 30), 20, 0.3)
    st = street.style
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
          0.085 * k, PEDESTRIAN, shade(top, 0.9), minpx=1.5)
    hr = 0.105 * k
    hy = 0.925 * h
    b.poly([(d + hr * c, hy + 1.2 * hr * sn, s - 0.04) for c, sn in CIRCLE_10], PEDESTRIAN, skin)
    b.poly([(d + 1.05 * hr * c, hy + 0.2 * hr + 1.1 * hr * sn, s - 0.045) for c, sn in CIRCLE_10[:6]], PEDESTRIAN,
           hair, lod=0.15)
    if r.r() < 0.25:  # bag
        bd = d + (hw + 0.08) * (1 if r.r() < 0.5 else -1)
        b.poly([(bd - 0.1, 0.42 * h, s - 0.05), (bd + 0.1, 0.42 * h, s - 0.05), (bd + 0.1, 0.56 * h, s - 0.05),
                (bd - 0.1, 0.56 * h, s - 0.05)], PEDESTRIAN, bag)
    b.end(LAYER_FREE, (d - 0.3, d + 0.3, s - 0.2, s + 0.2), 0.45, vel)


def add_pedestrians(street: Street, b: Builder, g: Draw, side: int) -> None:
    """Pedestrians, alone or in small groups, on the pavement on ``side``."""
    st = street.style
    pave = st.pavement(side)
    s = street.s_lo + g.u(0, 10)
    mean_gap = 6.0 + 16.0 * (1 - st.urban)
    while s < street.s_small:
        r = g.sub(12)
        n = 1 + int(r.r() * 3) if r.r() < 0.35 else 1
        vel = r.u(0.08, 0.18) * (1 if r.r() < 0.5 else -1)
        for i in range(n):
            d = side * (st.half + r.u(0.6, max(0.7, pave - 0.3)))
            si = s + i * r.u(0.5, 1.2)
            if street.in_junction(side, si - 0.5, si + 0.5) is None:
                add_person(street, b, g, d, si, vel)
        s += g.exp(mean_gap) + 1.0


def add_cyclist(street: Street, b: Builder, g: Draw, d: float, s: float, heading: int, vel: float) -> None:
    """A cyclist centred at (d, s) (m), riding towards +s (``heading`` 1) or -s (-1) at ``vel``."""
    r = g.sub(32)
    frame = r.col(r.pick(((180, 30, 30), (30, 30, 32), (40, 80, 160), (200, 200, 200), (40, 120, 60))), 10)
    top = r.col(r.pick(CLOTH_COLS + ((220, 220, 40), (230, 110, 30))), 12, 0.15)
    legs = r.col(r.pick(((30, 30, 34), (44, 56, 90), (90, 90, 96))), 8, 0.1)
    skin = r.col(r.pick(SKIN_COLS), 8)
    hcol = r.col(r.pick(((230, 230, 230), (30, 30, 30), (200, 40, 40), (40, 90, 200), *HAIR_COLS)), 8)
    lean, knee = r.u(0.1, 0.3), r.u(-0.05, 0.1)
    R = 0.34
    st = street.style
    if street.hidden(d - 0.3, d + 0.3, s - 0.9, s + 0.9, 0.5, height=1.8):
        return

    def p(a: float, y: float, lat: float = 0.0) -> tuple[float, float, float]:
        return (d + lat, y, s + heading * a)

    b.begin()
    if st.sunny:
        b.shadow(sweep(d - 0.15, d + 0.15, s - 0.9, s + 0.9, (st.sun[0] * 1.2, st.sun[1] * 1.2)),
                 st.shadow_k * 0.7)
    # wheels: discs in the bike plane plus a thin edge-on bar, so they also show from behind
    for a in (-0.52, 0.52):
        b.poly([p(a + R * c, R + R * sn) for c, sn in CIRCLE_12], BICYCLIST, (26, 26, 28))
        b.poly([p(a + 0.78 * R * c, R + 0.78 * R * sn, 0.005) for c, sn in CIRCLE_12], BICYCLIST, (96, 96, 100),
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
          0.09, BICYCLIST, shade(top, 0.9), minpx=1.5)
    c = p(0.04 + lean, 1.68)
    b.poly([(c[0] + 0.11 * cc, c[1] + 0.13 * sn, c[2] - 0.01) for cc, sn in CIRCLE_10], BICYCLIST, skin)
    b.poly([(c[0] + 0.125 * cc, c[1] + 0.04 + 0.11 * sn, c[2] - 0.015) for cc, sn in CIRCLE_10[:6]], BICYCLIST, hcol,
           lod=0.15)
    b.end(LAYER_FREE, (d - 0.3, d + 0.3, s - 0.9, s + 0.9), 0.5, vel)


def add_cyclists(street: Street, b: Builder, g: Draw) -> None:
    """Cyclists on the road (with or against the camera's direction) and on the pavements."""
    st = street.style
    lanes_hi = st.lane_lo + st.lanes * st.lane_w
    s = g.u(5.0, 25.0) if g.r() < 0.8 else g.u(25.0, 70.0)
    while s < street.s_far:
        r = g.sub(8)
        k = r.r()
        if k < 0.6:  # our direction, at the right edge of the lanes
            d, head, vel = lanes_hi - r.u(0.5, 0.9), 1, r.u(0.3, 0.6)
        elif k < 0.85 and st.n_left > 0:  # oncoming
            d, head, vel = st.lane_lo + r.u(0.5, 0.9), -1, -r.u(0.3, 0.6)
        else:  # on the pavement
            side = 1 if r.r() < 0.5 else -1
            d = side * (st.half + r.u(0.8, max(0.9, st.pavement(side) - 0.5)))
            head = 1 if r.r() < 0.5 else -1
            vel = head * r.u(0.2, 0.4)
        if abs(d - st.cam_d) < 1.2:
            d = st.cam_d + math.copysign(1.2, d - st.cam_d)
        add_cyclist(street, b, g, d, s, head, vel)
        s += g.exp(35.0) + 8.0
