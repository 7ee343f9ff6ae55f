"""The camera of a frame (position, orientation, shake) and the projection of a street's vertices into it.

Camera coordinates: x right, y down, z forward (m); pixel coordinates are kept in fixed point
with ``FIXED_SHIFT`` fraction bits for OpenCV's polygon drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seg_ros.synthetic.builder import LAYER_FRONT, POLY_CULLED, SEGMENT, SEGMENT_BATCH, SHADOW
from seg_ros.synthetic.constants import (
    COORD_LIMIT,
    CULL_PX,
    FAR,
    FAR_BUILDINGS,
    FIXED_ONE,
    LOD_PX,
    NEAR,
)
from seg_ros.synthetic.world import World


@dataclass
class Camera:
    """A pinhole camera in the world."""

    f: float  # focal length, px
    cx: float  # principal point, px
    cy: float
    R: np.ndarray  # world -> camera rotation; rows: right, down, forward
    pos: np.ndarray  # world position, m
    d: float  # road coordinates of the camera, m
    s: float


def camera_at(w: World, t: float, speed: float, size: tuple[int, int]) -> Camera:
    """Camera of frame ``t``: at s = t * speed, looking along the road with smooth shake."""
    st = w.style
    H, W = size
    shake = st.shake
    s = t * speed
    # a slow lateral drift within the lane
    drift = math.sin(2 * math.pi * t / (3 * shake.height.period) + shake.pitch.phase) - math.sin(shake.pitch.phase)
    d = st.cam_d + 0.25 * drift
    f = st.focal * W
    cy = H * (0.5 + st.cy_off)
    pitch = math.atan((cy - st.horizon * H) / f) + shake.pitch.at(t)
    yaw = math.atan(w.curve.heading(s)) + st.yaw + shake.yaw.at(t)
    roll = st.roll + shake.roll.at(t)
    h = st.cam_h + shake.height.at(t)
    cp, sp, cyw, syw, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw), math.cos(roll), \
        math.sin(roll)
    fwd0 = np.array([syw, 0.0, cyw])
    right0 = np.array([cyw, 0.0, -syw])
    up0 = np.array([0.0, 1.0, 0.0])
    fwd = fwd0 * cp - up0 * sp
    up1 = up0 * cp + fwd0 * sp
    right = right0 * cr + up1 * sr
    up = up1 * cr - right0 * sr
    return Camera(f=f, cx=(W - 1) / 2.0, cy=cy, R=np.stack([right, -up, fwd]),
                  pos=np.array([d + float(w.curve.offset(s)), h, s]), d=d, s=s)


def clip_near(P: np.ndarray) -> np.ndarray:
    """Clip a polygon in camera coordinates (n, 3) to z >= NEAR (Sutherland–Hodgman)."""
    out = []
    n = len(P)
    for i in range(n):
        a, b = P[i], P[(i + 1) % n]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            out.append(a + (NEAR - a[2]) / (b[2] - a[2]) * (b - a))
    return np.array(out).reshape(-1, 3)


class Frame:
    """The world's vertex buffer projected for one camera."""

    def __init__(self, w: World, cam: Camera, t: float, speed: float, size: tuple[int, int]) -> None:
        self.w, self.cam = w, cam
        self.H, self.W = size
        self.scale = self.W / 480.0
        self.ds = speed * t  # how far objects with velocity factor 1 have moved
        self.xc, self.yc, self.zc = self.to_cam(w.vd, w.vy, w.vs + w.vvel * self.ds if w.dynamic else w.vs)
        zs = np.maximum(self.zc, NEAR)
        self.u = np.clip(cam.cx + cam.f * self.xc / zs, -COORD_LIMIT, COORD_LIMIT)
        self.v = np.clip(cam.cy + cam.f * self.yc / zs, -COORD_LIMIT, COORD_LIMIT)
        self.fx = np.empty((len(zs), 2), np.int32)
        np.rint(self.u * FIXED_ONE, out=self.fx[:, 0], casting="unsafe")
        np.rint(self.v * FIXED_ONE, out=self.fx[:, 1], casting="unsafe")

    def to_cam(self, d: np.ndarray, y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Road coordinates (m) → camera coordinates (m): x right, y down, z forward."""
        cam, R = self.cam, self.cam.R
        X = d + self.w.curve.offset(s) - cam.pos[0]
        Y = y - cam.pos[1]
        Z = s - cam.pos[2]
        return (R[0, 0] * X + R[0, 1] * Y + R[0, 2] * Z, R[1, 0] * X + R[1, 1] * Y + R[1, 2] * Z,
                R[2, 0] * X + R[2, 1] * Y + R[2, 2] * Z)

    def project(self, P: np.ndarray) -> np.ndarray:
        """Camera-coordinate points (n, 3) with z >= near → pixel coordinates (n, 2)."""
        c = self.cam
        return np.clip(np.c_[c.cx + c.f * P[:, 0] / P[:, 2], c.cy + c.f * P[:, 1] / P[:, 2]], -COORD_LIMIT, COORD_LIMIT)

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
        far = np.where(w.o_layer <= LAYER_FRONT, FAR_BUILDINGS, FAR)
        ok = (s1 > cam.s - 2.0) & (dist < far)
        ok &= cam.f * w.o_cull / np.maximum(dist, 1.0) >= CULL_PX * self.scale
        v0 = w.o_v0
        zmax = np.maximum.reduceat(self.zc, v0)
        zmin = np.minimum.reduceat(self.zc, v0)
        inside = ((np.maximum.reduceat(self.u, v0) >= -1) & (np.minimum.reduceat(self.u, v0) <= self.W)
                  & (np.maximum.reduceat(self.v, v0) >= -1) & (np.minimum.reduceat(self.v, v0) <= self.H))
        ok &= (zmax > NEAR) & ((zmin <= NEAR) | inside)
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
        ok = kind != SHADOW
        lod = w.r_lod[rec]
        size_px = self.cam.f * np.abs(lod) / np.maximum(rd, 1.0)
        thr = LOD_PX * self.scale
        ok &= (lod == 0) | ((lod > 0) & (size_px >= thr)) | ((lod < 0) & (size_px < thr))
        zmin = np.minimum.reduceat(self.zc, w.r_v0)[rec]
        zmax = np.maximum.reduceat(self.zc, w.r_v0)[rec]
        ok &= zmax >= NEAR
        partial = zmin < NEAR
        # back-face culling from the signed area of the projected polygon (exact, in fixed point)
        cul = (kind == POLY_CULLED) & ~partial
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
        ks = np.where((kind == SEGMENT) | (kind == SEGMENT_BATCH), w.r_k[rec], 0)
        qstart = np.cumsum(ks) - ks
        m = int(ks.sum())
        if m == 0:
            return np.zeros((0, 4, 2), np.int32), qstart
        srec = np.repeat(rec, ks)
        a = np.repeat(w.r_v0[rec], ks) + 2 * (np.arange(m) - np.repeat(qstart, ks))
        xa, ya, za = self.xc[a], self.yc[a], self.zc[a]
        xb, yb, zb = self.xc[a + 1], self.yc[a + 1], self.zc[a + 1]
        ca, cb = za < NEAR, zb < NEAR
        if ca.any() or cb.any():  # clip to the near plane
            t = np.clip((NEAR - za) / np.where(zb != za, zb - za, 1.0), 0.0, 1.0)
            xa, ya, za = (np.where(ca, xa + t * (xb - xa), xa), np.where(ca, ya + t * (yb - ya), ya),
                          np.where(ca, np.maximum(za + t * (zb - za), NEAR), za))
            t = np.clip((NEAR - zb) / np.where(za != zb, za - zb, 1.0), 0.0, 1.0)
            xb, yb, zb = (np.where(cb, xb + t * (xa - xb), xb), np.where(cb, yb + t * (ya - yb), yb),
                          np.where(cb, np.maximum(zb + t * (za - zb), NEAR), zb))
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
        return np.rint(np.clip(q, -COORD_LIMIT, COORD_LIMIT) * FIXED_ONE).astype(np.int32), qstart
