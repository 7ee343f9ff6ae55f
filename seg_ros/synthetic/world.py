"""A whole street, built from its seed and flattened into arrays for the renderer."""

from __future__ import annotations

import numpy as np

from seg_ros.synthetic.builder import Builder
from seg_ros.synthetic.buildings import add_back_row, add_buildings, draw_skyline
from seg_ros.synthetic.constants import BEHIND
from seg_ros.synthetic.furniture import add_fences, add_signs, add_street_lights, add_traffic_lights, add_trees
from seg_ros.synthetic.road_users import add_cyclists, add_parked_cars, add_pedestrians, add_traffic
from seg_ros.synthetic.streams import WorldStreams
from seg_ros.synthetic.street import RoadCurve, Street, draw_junctions
from seg_ros.synthetic.style import draw_style


class World:
    """Geometry of a street from ``-BEHIND`` to ``s_hi`` (metres along the road) plus its :class:`Style`.

    ``full``: build everything (drives). Otherwise (single scenes) objects and details that can
    never be drawn from the first camera position are left out; their random numbers are still
    consumed, so everything else is the same either way, and a scene equals frame 0 of a drive.

    Attributes (arrays over vertices ``v*``, records ``r_*`` and objects ``o_*``, see :class:`Builder`):
        style, curve, skyline: the street's look, road curve and far backdrop.
        vd, vy, vs: road coordinates (m) of every vertex; ``vvel``: each vertex's velocity factor
            (only when ``dynamic``, i.e. something moves); ``v_next``: the next vertex of its polygon.
        r_v0, r_n, r_k, r_kind, r_lab, r_rgb, r_lod, r_w, r_minpx: record fields, one entry per record
            (``l_v0``, ``l_n``, ``l_k``, ``l_kind``: the same as tuples, for the drawing loop).
        o_layer, o_box, o_cull, o_vel, o_r0, o_r1, o_v0: per object, its painter layer, footprint
            (d0, d1, s0, s1), cull size, velocity factor, record range and first vertex.
        grids: the facades' window grids, indexed by ``r_w`` of their records.
    """

    def __init__(self, seed: int, s_hi: float, full: bool) -> None:
        streams = WorldStreams.from_seed(seed)
        junctions = draw_junctions(streams.junctions, s_hi + 50.0)  # beyond s_hi: objects near the end look ahead
        self.style = draw_style(streams.style, junctions, streams.crossings)
        self.curve = RoadCurve(streams.curve, -BEHIND, s_hi)
        street = Street(self.style, self.curve, s_hi, full)
        self.skyline = draw_skyline(streams.skyline)
        b = Builder()
        for side in (-1, 1):
            g = streams.side(side)
            add_back_row(street, b, g.back_row, side)
            add_buildings(street, b, g.buildings, side)
            add_trees(street, b, g.trees, side)
            add_street_lights(street, b, g.poles, side)
            add_signs(street, b, g.signs, side)
            add_fences(street, b, g.fences, side)
            add_parked_cars(street, b, g.parked, side)
            add_pedestrians(street, b, g.pedestrians, side)
        add_traffic_lights(street, b, streams.lights)
        add_traffic(street, b, streams.lanes)
        add_cyclists(street, b, streams.cyclists)
        self._finalise(b)

    def _finalise(self, b: Builder) -> None:
        v = b.vertices()
        self.vd, self.vy, self.vs = v[:, 0].copy(), v[:, 1].copy(), v[:, 2].copy()
        v0, n, k, kind, lab, rgb, lod, wd, minpx = zip(*b.recs)
        self.r_v0 = np.array(v0, np.int64)
        self.r_n = np.array(n, np.int64)
        self.r_k = np.array(k, np.int64)
        self.r_kind = np.array(kind, np.int64)
        self.r_lab = np.array(lab, np.int64)
        self.r_rgb = np.array(rgb, np.float64)
        self.r_lod = np.array(lod, np.float64)
        self.r_w = np.array(wd, np.float64)
        self.r_minpx = np.array(minpx, np.float64)
        self.l_v0, self.l_n, self.l_k, self.l_kind = v0, n, k, kind  # tuples for the drawing loop
        self.grids = b.grids
        layer, d0, d1, s0, s1, cull, vel, r0, r1 = np.array(b.objs, np.float64).T
        self.o_layer = layer.astype(np.int64)
        self.o_box = np.stack([d0, d1, s0, s1], 1)
        self.o_cull = cull
        self.o_vel = vel
        self.o_r0, self.o_r1 = r0.astype(np.int64), r1.astype(np.int64)
        self.o_v0 = self.r_v0[self.o_r0]
        nverts = self.r_n * self.r_k
        self.dynamic = bool(np.any(self.o_vel != 0))
        if self.dynamic:
            r_vel = np.repeat(self.o_vel, self.o_r1 - self.o_r0)
            self.vvel = np.repeat(r_vel, nverts)
        # next vertex within the same polygon, for signed areas
        i = np.arange(len(v))
        n_of_v = np.repeat(self.r_n, nverts)
        start = np.repeat(self.r_v0, nverts)
        first = start + ((i - start) // n_of_v) * n_of_v
        self.v_next = np.where(i + 1 - first >= n_of_v, first, i + 1)
