"""Tests of the procedural CamVid-style scene generator (seg_ros.synthetic)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg_ros.core.labels import CAMVID
from seg_ros.synthetic import (
    BICYCLIST,
    BUILDING,
    CAR,
    FENCE,
    PAVEMENT,
    PEDESTRIAN,
    POLE,
    ROAD,
    SIGN,
    SKY,
    TREE,
    Scene,
    generate_drive,
    generate_scene,
)

SMALL = (180, 240)
COVERAGE_SEEDS = range(100, 140)


@pytest.fixture(scope="module")
def small_scenes() -> list[Scene]:
    """40 scenes at 180×240, shared by the statistical tests."""
    return [generate_scene(seed, SMALL) for seed in COVERAGE_SEEDS]


def test_class_constants_follow_camvid_names():
    ids = (SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST)
    assert ids == tuple(range(11))
    assert CAMVID.names[SIGN] == "SignSymbol" and CAMVID.names[PAVEMENT] == "Pavement"
    assert CAMVID.ignore_id == 11


def test_same_seed_gives_identical_arrays():
    a, b = generate_scene(7), generate_scene(7)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.labels, b.labels)


def test_different_seeds_give_different_scenes():
    a, b = generate_scene(1, SMALL), generate_scene(2, SMALL)
    assert np.mean(a.labels != b.labels) > 0.1
    assert np.mean(np.abs(a.image.astype(int) - b.image.astype(int))) > 10


@pytest.mark.parametrize("size", [(360, 480), (257, 333), (32, 32), (40, 300), (300, 40), (180, 240)])
def test_shapes_dtypes_and_label_range(size):
    s = generate_scene(3, size)
    h, w = size
    assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
    assert s.labels.shape == (h, w) and s.labels.dtype == np.uint8
    assert s.image.flags.c_contiguous and s.labels.flags.c_contiguous
    assert s.labels.max() <= BICYCLIST  # every pixel has a class, never void (11)
    assert ROAD in s.labels  # the road is always in view


def test_larger_size_shows_the_same_scene_in_more_detail():
    small, big = generate_scene(11, (180, 240)), generate_scene(11, (360, 480))
    down = cv2.resize(big.labels, (240, 180), interpolation=cv2.INTER_NEAREST)
    assert np.mean(down == small.labels) > 0.9


@pytest.mark.parametrize("size", [(31, 100), (100, 31), (0, 0), (-5, 40)])
def test_too_small_size_is_rejected(size):
    with pytest.raises(ValueError, match="at least 32x32"):
        generate_scene(0, size)
    with pytest.raises(ValueError, match="at least 32x32"):
        generate_drive(0, 3, size)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_frames"):
        generate_drive(0, -1)  # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="speed"):
        generate_drive(0, 2, speed=-1.0)
    with pytest.raises(ValueError, match="pair"):
        generate_scene(0, (64,))  # type: ignore[arg-type]
    assert list(generate_drive(0, 0)) == []


def test_every_class_is_common(small_scenes):
    present = np.array([np.bincount(s.labels.ravel(), minlength=11)[:11] > 0 for s in small_scenes]).mean(0)
    minimum = {SKY: 0.95, BUILDING: 0.95, ROAD: 1.0, PAVEMENT: 0.95, TREE: 0.9, POLE: 0.9, CAR: 0.85, FENCE: 0.75,
               SIGN: 0.75, PEDESTRIAN: 0.75, BICYCLIST: 0.6}
    for cls, frac in minimum.items():
        assert present[cls] >= frac, f"{CAMVID.names[cls]} in only {present[cls]:.0%} of scenes"


def test_class_pixel_shares_are_plausible(small_scenes):
    counts = sum(np.bincount(s.labels.ravel(), minlength=11)[:11] for s in small_scenes)
    share = counts / counts.sum()
    for cls in (ROAD, BUILDING, SKY, TREE, PAVEMENT):  # the large classes, as in driving footage
        assert share[cls] > 0.03, CAMVID.names[cls]
    assert 0.2 < share[ROAD] < 0.6
    for cls in (POLE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST):  # small but not vanishing
        assert 0.0005 < share[cls] < 0.1, CAMVID.names[cls]


def test_layout_top_is_sky_or_structures_and_bottom_centre_is_road(small_scenes):
    h, w = SMALL
    top = np.concatenate([s.labels[: h // 12].ravel() for s in small_scenes])
    assert np.isin(top, [SKY, BUILDING, TREE, POLE, SIGN]).mean() > 0.95
    bottom = np.concatenate([s.labels[-h // 8:, w // 3: 2 * w // 3].ravel() for s in small_scenes])
    assert (bottom == ROAD).mean() > 0.8


def test_sky_and_road_pixels_look_different(small_scenes):
    differ = 0
    for s in small_scenes:
        sky = s.image[s.labels == SKY].reshape(-1, 3).mean(0)
        road = s.image[s.labels == ROAD].reshape(-1, 3).mean(0)
        differ += np.abs(sky - road).sum() > 40 or sky[2] - road[2] > 20
    assert differ >= 0.8 * len(small_scenes)


def test_labels_explain_the_image_colours(small_scenes):
    # Per scene, the class of a pixel must explain a good part of its colour's variance.
    r2 = []
    for s in small_scenes:
        img = s.image.reshape(-1, 3).astype(np.float64)
        lab = s.labels.ravel()
        total = img.var(0).sum() * len(img)
        within = sum(img[lab == c].var(0).sum() * np.count_nonzero(lab == c) for c in np.unique(lab))
        r2.append(1.0 - within / total)
    assert np.median(r2) > 0.4


def test_label_boundaries_sit_on_image_edges(small_scenes):
    # Labels are drawn with the same polygons as the image, so colour changes where labels change.
    on_edge, off_edge = [], []
    for s in small_scenes:
        grey = cv2.cvtColor(s.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grad = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        lab = s.labels.astype(np.int16)
        edge = np.zeros(lab.shape, bool)
        edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        edge[1:, :] |= lab[1:, :] != lab[:-1, :]
        edge = cv2.dilate(edge.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
        on_edge.append(grad[edge].mean())
        off_edge.append(grad[~edge].mean())
    assert np.median(on_edge) > 2.0 * np.median(off_edge)


def test_first_drive_frame_is_the_scene():
    scene = generate_scene(5, SMALL)
    first = next(generate_drive(5, 30, SMALL, speed=2.0))
    assert np.array_equal(first.labels, scene.labels)
    assert np.array_equal(first.image, scene.image)


@pytest.fixture(scope="module")
def drive() -> list[Scene]:
    return list(generate_drive(21, 16, SMALL, speed=0.5))


def test_drive_is_deterministic(drive):
    again = list(generate_drive(21, 16, SMALL, speed=0.5))
    assert all(np.array_equal(a.labels, b.labels) and np.array_equal(a.image, b.image)
               for a, b in zip(drive, again))


def test_drive_frames_are_coherent(drive):
    step = [np.mean(a.labels != b.labels) for a, b in zip(drive, drive[1:])]
    far = np.mean(drive[0].labels != drive[-1].labels)
    assert max(step) < 0.15  # half a metre further: most pixels keep their class
    assert far > 2.5 * np.mean(step)  # 7.5 metres further: clearly a different view
    assert all(s.labels.shape == SMALL and s.labels.max() <= BICYCLIST for s in drive)
    h, w = SMALL
    assert all(np.mean(s.labels[-h // 10:, w // 3: 2 * w // 3] == ROAD) > 0.7 for s in drive)  # still on the road


def _largest_inner_component(labels: np.ndarray, classes: tuple[int, ...]) -> tuple[int, np.ndarray] | None:
    """Area and mask of the largest component of ``classes`` that does not touch the image border."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(np.isin(labels, classes).astype(np.uint8), connectivity=4)
    h, w = labels.shape
    best = None
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if x == 0 or y == 0 or x + bw == w or y + bh == h or area < 20:
            continue
        if best is None or area > best[0]:
            best = (int(area), comp == i)
    return best


def test_static_objects_grow_as_the_camera_approaches():
    # Poles, signs and trees never move: seen from one metre closer, the same object is bigger.
    grew = tested = 0
    for seed in range(30, 42):
        a, b = generate_drive(seed, 2, SMALL, speed=1.0)
        found = _largest_inner_component(a.labels, (POLE, SIGN, TREE))
        if found is None:
            continue
        area, mask = found
        n, comp = cv2.connectedComponents(np.isin(b.labels, (POLE, SIGN, TREE)).astype(np.uint8), connectivity=4)
        ids, overlap = np.unique(comp[mask & (comp > 0)], return_counts=True)
        if ids.size == 0:
            continue
        tested += 1
        grew += np.count_nonzero(comp == ids[np.argmax(overlap)]) > area
    assert tested >= 8
    assert grew >= 0.8 * tested
