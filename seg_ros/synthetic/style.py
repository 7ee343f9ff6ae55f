"""A street's look, drawn from its seed: road layout and markings, colours, lighting, weather and camera."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from seg_ros.synthetic.geometry import shade
from seg_ros.synthetic.streams import Draw

CENTRE_NONE, CENTRE_SINGLE, CENTRE_DOUBLE, CENTRE_DASHED = range(4)
"""Kinds of line between the two directions of traffic."""


class CentreLine(NamedTuple):
    """The line between the two directions of traffic: a ``CENTRE_*`` kind and its RGB colour."""

    kind: int
    rgb: tuple


class LaneMarks(NamedTuple):
    """Dashed lines between lanes of the same direction (metres; RGB)."""

    half_width: float
    rgb: tuple
    period: float
    dash: float


class Wobble(NamedTuple):
    """A sinusoidal camera shake along one axis: ``amplitude`` (rad or m), ``phase`` (rad), ``period`` (frames)."""

    amplitude: float
    phase: float
    period: float

    def at(self, t: float) -> float:
        """The shake at frame ``t``."""
        return self.amplitude * math.sin(2 * math.pi * t / self.period + self.phase)


class CameraShake(NamedTuple):
    """Smooth camera shake: pitch, yaw and roll (rad) and height (m)."""

    pitch: Wobble
    yaw: Wobble
    roll: Wobble
    height: Wobble


@dataclass
class Style:
    """Scene-wide look: road layout, colours, lighting and camera; all drawn from the seed."""

    lanes: int
    lane_w: float
    park: tuple[bool, bool]  # parking strip on the left / right
    half: float  # road half width (lanes + parking strips), m
    lane_lo: float  # d of the left edge of the driving lanes
    n_left: int  # lanes travelling towards -s (oncoming), counted from the left
    centre: CentreLine  # line between the two directions
    lane_mark: LaneMarks  # lines between same-direction lanes
    edge_lines: bool
    pave: tuple[float, float]  # pavement width left / right, m
    urban: float  # 0 = leafy suburb, 1 = dense town
    road_rgb: tuple
    pave_rgb: tuple
    kerb_rgb: tuple
    verge_rgb: tuple
    road_tex: float
    slab: float
    sunny: bool
    sun: tuple[float, float]  # ground shadow offset per metre of height (dd, ds)
    shadow_k: float
    sun_side: float  # +1: faces pointing to +d are lit
    sky_top: tuple
    sky_hor: tuple
    clouds: float
    haze_rgb: tuple
    haze_k: float
    kc: np.ndarray  # global colour transform c -> c * kc + bc (gain, contrast, tint)
    bc: np.ndarray
    noise: float
    blur: float
    mirror: bool  # render mirrored (traffic on the other side)
    cam_h: float
    cam_d: float
    horizon: float  # horizon height as a fraction of the image height
    yaw: float
    roll: float
    focal: float  # focal length / image width
    cy_off: float  # principal point offset / image height
    shake: CameraShake
    junctions: list  # (side, s0, s1)
    crossings: list  # (s0, s1) zebra crossings

    def parking(self, side: int) -> bool:
        """Whether the road has a parking strip on the left (``side`` < 0) or the right (``side`` > 0)."""
        return self.park[0 if side < 0 else 1]

    def pavement(self, side: int) -> float:
        """Width (m) of the pavement on the left (``side`` < 0) or the right (``side`` > 0)."""
        return self.pave[0 if side < 0 else 1]


def draw_style(g: Draw, junctions: list, g_cross: Draw) -> Style:
    """The look of a street from its style stream ``g``; ``g_cross`` decides the zebra crossings before junctions."""
    r = g.sub(120)
    lanes = r.pick((1, 2, 2, 2, 2, 3, 4))
    lane_w = r.u(2.8, 3.5)
    park = (r.r() < 0.35, r.r() < 0.45)
    pw = 2.2
    half = (lanes * lane_w + pw * (park[0] + park[1])) / 2
    lane_lo = -half + pw * park[0]
    two_way = lanes >= 2 and r.r() < 0.8
    n_left = lanes // 2 if two_way else 0
    white = r.col((232, 232, 228), 6, 0.05)
    yellow = r.col((222, 186, 60), 8, 0.05)
    dash = r.u(1.5, 4.0)
    period = dash + r.u(3.0, 8.0)
    centre = CentreLine(r.pick((CENTRE_SINGLE, CENTRE_DOUBLE, CENTRE_DASHED)) if two_way else CENTRE_NONE,
                        yellow if r.r() < 0.4 else white)
    edge = r.r() < 0.6
    urban = r.r()
    # the camera's lane: mostly the outermost one of its direction, next to the kerb
    ego = lanes - 1 if r.r() < 0.6 else n_left + int(r.r() * max(1, lanes - n_left))
    pave = (r.u(2.5, 4.5 + 3.0 * urban), r.u(2.5, 4.5 + 3.0 * urban))
    asphalt = r.u(70, 130)
    road_rgb = r.col((asphalt, asphalt, asphalt * 1.04), 6, 0.02)
    pave_rgb = r.col(r.pick(((150, 146, 140), (166, 160, 150), (160, 118, 104), (128, 128, 130),
                             (182, 172, 156))), 10, 0.08)
    kerb_rgb = shade(pave_rgb, r.u(1.05, 1.25))
    verge_rgb = r.col(r.pick((pave_rgb, (112, 118, 92), (140, 132, 118))), 8, 0.05)
    sunny = r.r() < 0.55
    elev = r.u(0.35, 0.9)  # sun elevation, rad
    az = r.u(-1.2, 1.2) + (math.pi if r.r() < 0.5 else 0.0)
    k = 1.0 / math.tan(elev)
    sun = (k * math.sin(az), k * math.cos(az))
    if sunny:
        sky_top = r.col((88, 138, 206), 14, 0.1)
        sky_hor = r.col((182, 204, 226), 10, 0.06)
    else:
        v = r.u(170, 232)
        sky_top = r.col((v - 16, v - 10, v), 6, 0.04)
        sky_hor = r.col((v + 10, v + 12, v + 14), 5, 0.03)
    haze = tuple(0.5 * a + 0.5 * b for a, b in zip(sky_hor, (150, 152, 158)))
    gain, contrast = r.u(0.82, 1.12), r.u(0.8, 1.1)
    tint = np.array([r.u(0.94, 1.06) for _ in range(3)])
    return Style(
        lanes=lanes, lane_w=lane_w, park=park, half=half, lane_lo=lane_lo, n_left=n_left, centre=centre,
        lane_mark=LaneMarks(0.065, white, period, dash), edge_lines=edge, pave=pave, urban=urban, road_rgb=road_rgb,
        pave_rgb=pave_rgb, kerb_rgb=kerb_rgb, verge_rgb=verge_rgb, road_tex=r.u(0.05, 0.14),
        slab=r.u(0.6, 1.2) if r.r() < 0.6 else 0.0, sunny=sunny, sun=sun,
        shadow_k=r.u(0.35, 0.55) if sunny else 0.0, sun_side=-1.0 if sun[0] > 0 else 1.0,
        sky_top=sky_top, sky_hor=sky_hor, clouds=r.u(0.0, 0.8) if sunny else r.u(0.0, 0.3),
        haze_rgb=haze, haze_k=r.u(250.0, 700.0), kc=contrast * gain * tint,
        bc=128.0 * (1.0 - contrast) * gain * tint, noise=r.u(1.5, 5.0), blur=r.u(0.4, 0.9), mirror=r.r() < 0.5,
        cam_h=r.u(1.2, 1.6),
        cam_d=lane_lo + (ego + 0.5) * lane_w + r.u(-0.3, 0.3),
        horizon=r.u(0.42, 0.54), yaw=r.u(-0.035, 0.035), roll=r.u(-0.025, 0.025), focal=r.u(0.74, 0.95),
        cy_off=r.u(-0.03, 0.03),
        shake=_draw_shake(r),
        junctions=junctions,
        crossings=[(s0 - 5.0, s0 - 2.0) for _, s0, _ in junctions if g_cross.r() < 0.4],
    )


def _draw_shake(r: Draw) -> CameraShake:
    # drawn as all amplitudes, then all phases, then all periods
    amplitude = (r.u(0.002, 0.008), r.u(0.002, 0.01), r.u(0.002, 0.008), r.u(0.0, 0.02))
    phase = tuple(r.u(0, 2 * math.pi) for _ in range(4))
    period = tuple(r.u(15.0, 60.0) for _ in range(4))
    return CameraShake(*(Wobble(a, p, t) for a, p, t in zip(amplitude, phase, period)))
