"""CamVid-11 class ids of the synthetic scenes, in the order of ``CAMVID.names``."""

from __future__ import annotations

from seg_ros.core.labels import CAMVID

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
"""CamVid-11 class ids, in the order of ``CAMVID.names``."""

assert CAMVID.names == (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
), "seg_ros.synthetic class ids no longer match CAMVID.names"
assert CAMVID.ignore_id > BICYCLIST and PAVEMENT == ROAD + 1  # the ground pass relies on the latter
