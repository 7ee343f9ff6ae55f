"""Distances (metres) and drawing thresholds (pixels) shared by the street builder and the renderer.

Pixel thresholds are given for an image 480 pixels wide and scale with the width.
"""

NEAR = 0.12  # near clipping plane, metres in front of the camera
FAR = 130.0  # small objects farther than this (ground distance, m) are not drawn
FAR_BUILDINGS = 200.0  # same for buildings
AHEAD = 205.0  # the world reaches this far beyond the last camera position (m)
SKYLINE_DISTANCE = 230.0  # distance of the far skyline backdrop (m)
HORIZON = 1000.0  # the road's curve is followed this far ahead (m)
BEHIND = 15.0  # the world starts this far behind the first camera position (m)
CULL_PX = 4.0  # objects whose characteristic size projects below this (px at width 480) are skipped
LOD_PX = 3.0  # level-of-detail switch for details (px at width 480)
FIXED_SHIFT = 4  # fixed-point fraction bits for OpenCV polygon drawing
FIXED_ONE = 1 << FIXED_SHIFT
COORD_LIMIT = float(1 << 26)  # clamp for projected coordinates, so fixed point stays inside int32
