"""Procedural forward-facing road scenes with exact per-pixel CamVid-11 labels.

These scenes feed the project's tests, the training of the shipped demo model and the
``seg-ros demo``. They exist so that the whole pipeline can run end to end without a
dataset download. They are **not** a stand-in for real data: a model trained only on them
will not segment real camera footage well.

How a scene is made: the seed gives a small 3-D street (a straight or gently curving road
with lanes, lane marks and parking strips, pavements with kerbs, rows of buildings with
windows and gaps, trees, street lights, signs and traffic lights, fences and hedges, parked
and moving cars, pedestrians and cyclists), and a pinhole camera 1.2–1.6 m above the road
renders it. The road surface is ray-cast per pixel (vectorised); every other object is made
of 3-D polygons and thick 3-D segments, projected and drawn far to near (painter's
algorithm). Colour and class id are drawn in one OpenCV call per polygon into an RGBA
buffer whose fourth channel is the label map, so labels match the drawn shapes exactly and
are never anti-aliased. Image-only effects (texture, shading, shadows, haze, blur, sensor
noise) change colours only. Every pixel gets a class id 0..10; the generator never emits
void (``CAMVID.ignore_id``).

Units: metres in the world, pixels in the image. Road coordinates are ``(d, y, s)``:
``d`` lateral (positive to the right of the road centre line), ``y`` up from the road
surface, ``s`` along the road. A road point's world position is ``(d + c(s), y, s)``,
where ``c`` is the road's lateral offset (zero for a straight road). The focal length is
proportional to the image width, so a larger image shows the same scene in more detail.

Only ``np.random.default_rng`` generators seeded from the seed are used (no global RNG, no
clock), so a seed gives identical arrays on any machine with the same numpy and OpenCV.
Each kind of object draws from its own named stream (:mod:`.streams`), so a longer drive holds
the same street as a shorter one over their common stretch.

Modules, bottom to top: ``classes`` and ``constants``; ``streams`` (named random streams),
``geometry`` and ``palette``; ``builder`` (drawing records); ``style`` (the look) and ``street``
(layout, road curve, visibility); ``furniture``, ``buildings`` and ``road_users`` (the objects);
``world`` (a whole street as arrays); ``camera`` (camera and projection); ``pixels``, ``ground``,
``windows`` and ``render`` (drawing a frame). Only this module's names are public.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator

from seg_ros.synthetic.classes import BICYCLIST, BUILDING, CAR, FENCE, PAVEMENT, PEDESTRIAN, POLE, ROAD, SIGN, SKY, TREE
from seg_ros.synthetic.constants import AHEAD
from seg_ros.synthetic.render import Scene, render_frame
from seg_ros.synthetic.world import World

__all__ = [
    "BICYCLIST", "BUILDING", "CAR", "FENCE", "MIN_SIZE", "PAVEMENT", "PEDESTRIAN", "POLE", "ROAD", "SIGN", "SKY",
    "TREE", "Scene", "generate_drive", "generate_scene",
]

MIN_SIZE = 32
"""Smallest accepted image height and width, in pixels."""


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of integers, got {size!r}.") from None
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}x{MIN_SIZE} pixels (height, width), got {h}x{w}.")
    return h, w


def _check_seed(seed: int) -> int:
    try:
        return operator.index(seed)
    except TypeError:
        raise ValueError(f"seed must be an integer, got {seed!r}.") from None


def generate_scene(seed: int, size: tuple[int, int] = (360, 480)) -> Scene:
    """Render one random street scene.

    Args:
        seed: any integer; the same seed and size give identical arrays.
        size: (height, width) in pixels, each at least 32. The focal length is proportional to the
            width, so a larger size shows the same scene in more detail.

    Returns:
        A :class:`Scene`: ``image`` H×W×3 uint8 RGB, ``labels`` H×W uint8 CamVid-11 ids 0..10.
        It equals the first frame of ``generate_drive(seed, n, size)`` for any ``n`` ≥ 1 and speed.

    Raises:
        ValueError: for a size below 32×32 pixels or a non-integer seed.
    """
    seed = _check_seed(seed)
    size = _check_size(size)
    return render_frame(World(seed, AHEAD, full=False), 0.0, 1.0, size, [seed & 0xFFFFFFFFFFFFFFFF, 0])


def generate_drive(seed: int, num_frames: int, size: tuple[int, int] = (360, 480),
                   speed: float = 1.0) -> Iterator[Scene]:
    """Render a temporally coherent drive along one street.

    The camera moves forward along the road by ``speed`` metres per frame (frame i is taken at
    ``s = i * speed``) with small smooth shake; other cars, cyclists and pedestrians move too, so
    static objects approach and grow from frame to frame. Deterministic from ``seed``; frame 0 is
    ``generate_scene(seed, size)``.

    Args:
        seed: any integer.
        num_frames: number of frames to yield, 0 or more.
        size: (height, width) in pixels, each at least 32.
        speed: camera speed in metres per frame, finite and >= 0.

    Yields:
        ``num_frames`` :class:`Scene` objects (image H×W×3 uint8 RGB, labels H×W uint8 ids 0..10).

    Raises:
        ValueError: (at the call, not at the first ``next``) for a size below 32×32, a negative
            frame count or a bad speed.
    """
    seed = _check_seed(seed)
    size = _check_size(size)
    try:
        n = operator.index(num_frames)
    except TypeError:
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}.") from None
    if n < 0:
        raise ValueError(f"num_frames must be 0 or more, got {n}.")
    speed = float(speed)
    if not math.isfinite(speed) or speed < 0:
        raise ValueError(f"speed must be a finite number of metres per frame >= 0, got {speed}.")
    return _drive(seed, n, size, speed)


def _drive(seed: int, n: int, size: tuple[int, int], speed: float) -> Iterator[Scene]:
    if n == 0:
        return
    w = World(seed, (n - 1) * speed + AHEAD, full=True)
    for i in range(n):
        yield render_frame(w, float(i), speed, size, [seed & 0xFFFFFFFFFFFFFFFF, i])
