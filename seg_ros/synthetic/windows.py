"""Facade windows: projected as whole grids at drawing time, then filled frames first, panes on top."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from seg_ros.synthetic.builder import WindowGrid
from seg_ros.synthetic.camera import Frame
from seg_ros.synthetic.classes import BUILDING
from seg_ros.synthetic.constants import COORD_LIMIT, FIXED_ONE, FIXED_SHIFT, LOD_PX, NEAR


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


def project_windows(fr: Frame, grids: list[WindowGrid]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Project the corners of several window grids at once: fixed-point (m, 2), camera z (m,), offsets."""
    sizes = [g.d.size for g in grids]
    offsets = np.cumsum([0] + sizes[:-1]).tolist()
    if len(grids) == 1:
        D, Y, S = grids[0].d, grids[0].y, grids[0].s
    else:
        D, Y, S = (np.concatenate([g.d for g in grids]), np.concatenate([g.y for g in grids]),
                   np.concatenate([g.s for g in grids]))
    xc, yc, zc = fr.to_cam(D, Y, S)
    zs = np.maximum(zc, NEAR)
    cam = fr.cam
    uv = np.empty((zc.size, 2))
    uv[:, 0] = cam.cx + cam.f * xc / zs
    uv[:, 1] = cam.cy + cam.f * yc / zs
    return np.rint(np.clip(uv, -COORD_LIMIT, COORD_LIMIT) * FIXED_ONE).astype(np.int32), zc, offsets


def draw_windows(fr: Frame, grid: WindowGrid, uv: np.ndarray, zc: np.ndarray, off: int, dist: float,
                 buf: np.ndarray, partial: bool) -> None:
    """A facade's windows (projected by project_windows): frames (lod 0.25 m, their width), then panes."""
    n_y, n_s, trim, glass = grid.rows, grid.cols, grid.frame_rgb, grid.glass_rgb
    st = fr.w.style
    frames = fr.cam.f * 0.25 / max(dist, 1.0) >= LOD_PX * fr.scale
    hz = dist / (dist + st.haze_k)
    for lo, hi, rgb, on in ((0, 3, trim, frames), (1, 2, glass, True)):
        if not on:
            continue
        idx = _window_corners(n_y, n_s, lo, hi) + off
        pts = uv[idx]
        if partial:
            pts = pts[zc[idx].min(1) >= NEAR]
        c = [min(255, max(0, round((rgb[i] + (st.haze_rgb[i] - rgb[i]) * hz) * st.kc[i] + st.bc[i])))
             for i in range(3)]
        cv2.fillPoly(buf, pts, (*c, BUILDING), cv2.LINE_8, FIXED_SHIFT)
