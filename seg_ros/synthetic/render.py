"""Rendering one frame of a street: sky, skyline, ground, objects far to near, then image-only effects.

Colour and class id are drawn in one OpenCV call per polygon into an RGBA buffer whose fourth
channel is the label map, so labels match the drawn shapes exactly and are never anti-aliased.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from seg_ros.synthetic.builder import POLY_ANY, POLY_BATCH, POLY_CULLED, SEGMENT, SEGMENT_BATCH, SHADOW, WINDOW_GRID
from seg_ros.synthetic.camera import Camera, Frame, camera_at, clip_near
from seg_ros.synthetic.classes import BUILDING, SKY, TREE
from seg_ros.synthetic.constants import FIXED_ONE, FIXED_SHIFT, NEAR, SKYLINE_DISTANCE
from seg_ros.synthetic.ground import draw_ground
from seg_ros.synthetic.pixels import to_u8
from seg_ros.synthetic.style import Style
from seg_ros.synthetic.windows import draw_windows, project_windows
from seg_ros.synthetic.world import World


@dataclass(frozen=True)
class Scene:
    """One rendered frame.

    Attributes:
        image: H×W×3 uint8 RGB image.
        labels: H×W uint8 CamVid-11 class ids 0..10 (``SKY`` … ``BICYCLIST``); never void.
    """

    image: np.ndarray
    labels: np.ndarray


def _draw_objects(fr: Frame, oidx: np.ndarray, dist: np.ndarray, buf: np.ndarray) -> None:
    """Paint the visible objects' records into the RGBA buffer (alpha channel = class id)."""
    w = fr.w
    st = w.style
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
    grid_recs = [r for r in rec_l if l_kind[r] == WINDOW_GRID]
    if grid_recs:
        grids = [w.grids[int(w.r_w[r])] for r in grid_recs]
        wuv, wz, woff = project_windows(fr, grids)
        win = {r: (g, o) for r, g, o in zip(grid_recs, grids, woff)}
    fillc, fillp, L8 = cv2.fillConvexPoly, cv2.fillPoly, cv2.LINE_8
    for r, part, c, qs, dst in zip(rec_l, partial.tolist(), cols, qstart.tolist(), rd.tolist()):
        kind = l_kind[r]
        if kind == WINDOW_GRID:
            g, o = win[r]
            draw_windows(fr, g, wuv, wz, o, dst, buf, part)
            continue
        if kind == SEGMENT:
            fillc(buf, quads[qs], c, L8, FIXED_SHIFT)
            continue
        if kind == SEGMENT_BATCH:
            fillp(buf, quads[qs:qs + l_k[r]], c, L8, FIXED_SHIFT)
            continue
        v0, n = l_v0[r], l_n[r]
        if kind == POLY_BATCH:
            k = l_k[r]
            pts = fx[v0:v0 + k * n].reshape(k, n, 2)
            if part:
                pts = pts[fr.zc[v0:v0 + k * n].reshape(k, n).min(1) >= NEAR]
            fillp(buf, pts, c, L8, FIXED_SHIFT)
            continue
        if part:
            P = clip_near(np.c_[fr.xc[v0:v0 + n], fr.yc[v0:v0 + n], fr.zc[v0:v0 + n]])
            if len(P) < 3:
                continue
            pts = np.rint(fr.project(P) * FIXED_ONE).astype(np.int32)
            if kind == POLY_CULLED:
                x, y = pts[:, 0].tolist(), pts[:, 1].tolist()
                if sum(x[i - 1] * y[i] - x[i] * y[i - 1] for i in range(len(x))) <= 0:
                    continue
        else:
            pts = fx[v0:v0 + n]
        if kind == POLY_ANY:
            fillp(buf, [pts], c, L8, FIXED_SHIFT)
        else:
            fillc(buf, pts, c, L8, FIXED_SHIFT)


def _shadow_mask(fr: Frame, oidx: np.ndarray) -> np.ndarray | None:
    """Blurred ground-shadow darkening at half resolution (uint8, 255 = black), or None."""
    w = fr.w
    if not oidx.size:
        return None
    r0, r1 = w.o_r0[oidx], w.o_r1[oidx]
    lens = r1 - r0
    rec = np.arange(lens.sum()) + np.repeat(r0 - (np.cumsum(lens) - lens), lens)
    rec = rec[w.r_kind[rec] == SHADOW]
    if not rec.size:
        return None
    zmin = np.minimum.reduceat(fr.zc, w.r_v0)[rec]
    mask = np.zeros(((fr.H + 1) // 2, (fr.W + 1) // 2), np.uint8)
    for r, z in zip(rec.tolist(), zmin.tolist()):
        v0, n = w.l_v0[r], w.l_n[r]
        if z < NEAR:
            P = clip_near(np.c_[fr.xc[v0:v0 + n], fr.yc[v0:v0 + n], fr.zc[v0:v0 + n]])
            if len(P) < 3:
                continue
            pts = np.rint(fr.project(P) * FIXED_ONE).astype(np.int32)
        else:
            pts = fr.fx[v0:v0 + n]
        cv2.fillPoly(mask, [pts], int(255 * w.r_w[r]), cv2.LINE_8, FIXED_SHIFT + 1)
    return cv2.GaussianBlur(mask, (0, 0), max(0.5, 1.25 * fr.scale))


def _draw_sky(st: Style, cam: Camera, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
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
    sky = to_u8(sky * st.kc.astype(np.float32) + st.bc.astype(np.float32))
    return cv2.resize(sky, (W, H), interpolation=cv2.INTER_LINEAR_EXACT)


def _skyline(fr: Frame, buf: np.ndarray) -> None:
    """Far blocks of buildings and trees at a fixed distance ahead of the camera."""
    w, cam = fr.w, fr.cam
    st = w.style
    s = cam.s + SKYLINE_DISTANCE
    c = float(w.curve.offset(s))
    P = np.array([[(d0 + c, 0.0, s), (d0 + c, h, s), (d1 + c, h, s), (d1 + c, 0.0, s)]
                  for d0, d1, h, _, _ in w.skyline]).reshape(-1, 3) - cam.pos
    R = cam.R  # (no BLAS: its results may depend on the CPU)
    Pc = np.stack([R[i, 0] * P[:, 0] + R[i, 1] * P[:, 1] + R[i, 2] * P[:, 2] for i in range(3)], 1)
    if Pc[:, 2].min() < NEAR:
        return
    uv = np.rint(fr.project(Pc) * FIXED_ONE).astype(np.int32).reshape(-1, 4, 2)
    hz = 0.8 * SKYLINE_DISTANCE / (SKYLINE_DISTANCE + st.haze_k)
    rgb = np.array([b.rgb for b in w.skyline])
    rgb = np.clip(np.rint((rgb + (np.asarray(st.haze_rgb) - rgb) * hz) * st.kc + st.bc), 0, 255).tolist()
    for block, q, c3 in zip(w.skyline, uv, rgb):
        cv2.fillConvexPoly(buf, q, (*c3, TREE if block.is_tree else BUILDING), cv2.LINE_8, FIXED_SHIFT)


# per-class texture strength (relative brightness noise)
_TEX_LUT = np.zeros((256, 1), np.uint8)
_TEX_LUT[:11, 0] = (3, 14, 8, 5, 7, 80, 4, 12, 6, 10, 10)


def _finish(st: Style, buf: np.ndarray, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
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
    gm = cv2.resize(to_u8(gain * np.float32(128.0)), (W, H), interpolation=cv2.INTER_LINEAR_EXACT)
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


def render_frame(w: World, t: float, speed: float, size: tuple[int, int], fx_seed: list[int]) -> Scene:
    """Frame ``t`` of a drive through ``w`` at ``speed`` m per frame, ``size`` (H, W) pixels.

    ``fx_seed`` seeds the image-only randomness (clouds, texture and sensor noise) of this frame.
    """
    H, W = size
    rng = np.random.default_rng(fx_seed)
    cam = camera_at(w, t, speed, size)
    fr = Frame(w, cam, t, speed, size)
    buf = cv2.cvtColor(_draw_sky(w.style, cam, H, W, rng), cv2.COLOR_RGB2RGBA)
    buf[..., 3] = SKY
    oidx, dist = fr.objects()
    _skyline(fr, buf)
    draw_ground(fr, buf, _shadow_mask(fr, oidx))
    _draw_objects(fr, oidx, dist, buf)
    image, labels = _finish(w.style, buf, rng, fr.scale)
    if w.style.mirror:
        image, labels = cv2.flip(image, 1), cv2.flip(labels, 1)
    return Scene(image=image, labels=labels)
