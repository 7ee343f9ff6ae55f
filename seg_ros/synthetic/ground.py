"""The ground pass: the road plane ray-cast per pixel, with Road / Pavement labels, markings, texture and haze."""

from __future__ import annotations

import math

import cv2
import numpy as np

from seg_ros.synthetic.camera import Frame
from seg_ros.synthetic.classes import PAVEMENT, ROAD
from seg_ros.synthetic.constants import AHEAD, HORIZON
from seg_ros.synthetic.pixels import hash_noise, to_u8, upsample2
from seg_ros.synthetic.style import CENTRE_DOUBLE, CENTRE_NONE, CENTRE_SINGLE


def draw_ground(fr: Frame, buf: np.ndarray, shadow: np.ndarray | None) -> None:
    """Ray-cast the road plane for every pixel below the horizon: Road / Pavement labels and colours.

    Rays are cast at the centres of 2×2 pixel blocks; the lateral road coordinate is interpolated
    bilinearly (it is smooth) to full resolution, where the classes, labels and base colours are
    decided per pixel. The image-only modulations (grain, paving joints, lane marks, haze,
    shadows) stay at half resolution and are upsampled.
    """
    w, cam = fr.w, fr.cam
    st = w.style
    curve = w.curve
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
    # block centres: upsample2 interpolates bilinearly between them
    a2 = ((np.arange(0, W, 2, dtype=f32) + f32(0.5) - f32(cam.cx)) / f32(f))[None, :]
    b2 = ((np.arange(v0, H, 2, dtype=f32) + f32(0.5) - f32(cam.cy)) / f32(f))[:, None]

    def cast(a: np.ndarray, bb: np.ndarray):
        dy = a * R32[0, 1] + (bb * R32[1, 1] + R32[2, 1])
        g = dy < f32(-1e-5)
        t = f32(cam.pos[1]) / np.maximum(-dy, f32(1e-5))  # distance along the camera axis, m
        np.minimum(t, f32(1e5), out=t)
        Z = (a * R32[0, 2] + (bb * R32[1, 2] + R32[2, 2])) * t + f32(cam.pos[2])
        d = (a * R32[0, 0] + (bb * R32[1, 0] + R32[2, 0])) * t + f32(cam.pos[0])
        if curve.curved:  # c(Z) by linear interpolation in the 2 m table (np.interp is much slower)
            # the road beyond HORIZON metres is sub-pixel: hold c there, whatever the table's length
            x = (np.minimum(Z, f32(cam.s + HORIZON)) - f32(curve.positions[0])) * f32(0.5)
            np.clip(x, 0, len(curve.offsets) - 2, out=x)
            i = x.astype(np.int32)
            x -= i
            c0 = curve.offsets32.take(i)
            d -= c0 + (curve.offsets32.take(i + 1) - c0) * x
        road = np.abs(d) <= f32(st.half)
        for side, s0, s1 in near_j:
            road |= (d * f32(side) > 0) & (Z > f32(s0)) & (Z < f32(s1))
        return g, t, Z, d, road

    # side roads within the world's guaranteed extent (the same whatever the drive's length)
    near_j = [j for j in st.junctions if j[1] < cam.s + AHEAD and j[2] > cam.s - 5]

    g2, t2, Z2, d2, road2 = cast(a2, b2)
    # full resolution: ground mask, labels and base colours ------------------------------------
    a = ((np.arange(W, dtype=f32) - f32(cam.cx)) / f32(f))[None, :]
    bb = ((np.arange(v0, H, dtype=f32) - f32(cam.cy)) / f32(f))[:, None]
    g = (a * R32[0, 1] + (bb * R32[1, 1] + R32[2, 1])) < f32(-1e-5)
    d = upsample2(d2, rows, W)
    ad = np.abs(d)
    road = ad <= f32(st.half)
    if near_j:
        Z = upsample2(Z2, rows, W)
        for side, s0, s1 in near_j:
            road |= (d * f32(side) > 0) & (Z > f32(s0)) & (Z < f32(s1))
    off = ~road
    cls = off.view(np.uint8).copy()  # 0 road, 1 pavement, 2 kerb, 3 verge (beyond the pavement)
    cls += (off & (ad < f32(st.half + 0.16))).view(np.uint8)
    edge = (d >= 0).view(np.uint8) * f32(st.pavement(1) - st.pavement(-1)) + f32(st.half + st.pavement(-1))
    cls += (off & (ad > edge)).view(np.uint8) * np.uint8(2)
    del ad, edge
    # RGBA base: class colour and label (Road for class 0, Pavement otherwise) in one lookup
    lut = np.zeros((256, 1, 4), np.uint8)
    lut[:4, 0, :3] = to_u8(np.rint(np.array([st.road_rgb, st.pave_rgb, st.kerb_rgb, st.verge_rgb]) * st.kc))
    lut[:4, 0, 3] = (ROAD, PAVEMENT, PAVEMENT, PAVEMENT)
    base = cv2.LUT(cv2.merge([cls, cls, cls, cls]), lut)
    # half resolution: modulation M (multiplies the base colour) and additive colour A -------
    px = t2 / f32(f) * f32(2.0)  # metres per (half-resolution) pixel across the road
    cell = 0.04
    tex = hash_noise(np.floor(d2 * f32(1 / cell)).astype(np.int32), np.floor(Z2 * f32(1 / cell)).astype(np.int32))
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
        if st.centre.kind != CENTRE_NONE:
            inner &= k != st.n_left
        hw, _, period, dash = st.lane_mark
        np.maximum(mark, line(np.abs(q - k) * f32(st.lane_w), hw, period, dash) * inner, out=mark)
    cm = None
    if st.centre.kind != CENTRE_NONE:
        dc = np.abs(d2 - f32(st.lane_lo + st.n_left * st.lane_w))
        if st.centre.kind == CENTRE_SINGLE:
            cm = line(dc, 0.07)
        elif st.centre.kind == CENTRE_DOUBLE:
            cm = line(np.abs(dc - f32(0.12)), 0.06)
        else:
            cm = line(dc, 0.07, st.lane_mark.period * 0.8, st.lane_mark.dash * 1.6)
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
        a = mark * f32(st.lane_mark.rgb[ch] * kc) + hz * f32(st.haze_rgb[ch] * kc) + f32(st.bc[ch])
        if cm is not None:
            a += cm * f32(st.centre.rgb[ch] * kc)
        pos.append(to_u8(a))
        if st.bc.min() < 0:
            neg.append(to_u8(-a))
    zero = np.zeros_like(pos[0])
    Mf = cv2.resize(to_u8(M * f32(128.0)), (W, rows), interpolation=cv2.INTER_LINEAR_EXACT)
    col = cv2.multiply(base, cv2.merge([Mf, Mf, Mf, np.full_like(Mf, 128)]), scale=1 / 128)  # labels × 1
    col = cv2.add(col, cv2.resize(cv2.merge([*pos, zero]), (W, rows), interpolation=cv2.INTER_LINEAR_EXACT))
    if neg:
        col = cv2.subtract(col, cv2.resize(cv2.merge([*neg, zero]), (W, rows),
                                           interpolation=cv2.INTER_LINEAR_EXACT))
    cv2.copyTo(col, g.view(np.uint8), buf[v0:])
