"""Tests of the procedural CamVid-style scene generator (seg_ros.synthetic)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

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


@pytest.mark.parametrize("speed", [0.5, 8.0])
def test_a_longer_drive_starts_with_the_same_frames(speed):
    # Each kind of object has its own random stream, so making the street longer adds objects at its far end and
    # changes nothing that the first frames show (fast cars from behind, oncoming traffic and side roads included).
    for seed in (2, 19):
        short = list(generate_drive(seed, 3, (96, 128), speed=speed))
        longer = list(generate_drive(seed, 25, (96, 128), speed=speed))[:3]
        assert all(np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
                   for a, b in zip(short, longer))


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


# Golden digests: SHA-256 of the image bytes and of the label bytes (all frames of a case, in order). The scenes of
# a seed must never change: the shipped synthetic model was trained and is scored on them. Bit-identity holds for
# one numpy and OpenCV version (their arithmetic and random streams may change between releases).
GOLDEN_VERSIONS = {"numpy": "2.4", "opencv": "5.1"}
GOLDEN = {
    "scenes 0..39 180x240": (
        "133d38f08d69f3c1818d217f28b1806296c05d59f87643efc8213d40d35c0f7a",
        "64a01dcb3981bbdce08f97abb43707ba30fc2763d38379cb8d6e60eb89faabfc"),
    "scene 7 360x480": (
        "59c371b6c16bb97ed1d68351fdddb769fefe9acc39e40ac80e18004ac3cb40fc",
        "535ad4c8a70ca022037256d53840ba15c33994b0bde6251364b23513b200f369"),
    "scene 3 257x333": (
        "45043af3df5025f7cffedc7755a767a51ba74ec588b2930d14834d9f3d7e36e2",
        "bf84b975dc15926f5281583ccde62592da279a8d08d493755e3a3e7efd8187e2"),
    "scene 10 32x32": (
        "85d15f44bb43782c88856b7c00bb095a1c5e8a7ae865ec6ff7210072abe57c91",
        "f907306ce8f40c89428c2c82889ec64d0e6fb0c5d049bef68e814274f3a75787"),
    "scene 25 40x300": (
        "1ba6cb119607c545b3a78d36d303637bbae1ecaaac470bd0b74c4eb5feee3502",
        "9a5bcdda9b9e119c3b7392928b5e7395730baa5653eb80c3de56f99a09485624"),
    "scene 12 300x40": (
        "6f46d17247407765489b8b163422ba995ca8a9e399e6782795f80c16e6955a88",
        "3d9ed48595cd3ab805277124e3773bc942881016c10fbf88f585aae85435f6ea"),
    "scene 7000000 360x640": (
        "39be98ccce7cd850d9f0bdb50327cccdfc77977e2baf51106d4331738b0a0efa",
        "f4e93cecbceb13eeac17f754e5bce2fb6a310cb60a7f18419df1667e02cb530a"),
    "scene -5 101x153": (
        "7d1b2e6eb3a548cfef13c6636339711d7aacf5e29acf8eb9bc5091a17945214b",
        "d7e454da8fcf80b5ec34997fefcfbfdea1b144501ebe313eff0c43ffbe91d823"),
    "scene 1099511627779 360x480": (
        "d94c8ba7d8f594ecd58fd0e01fd71c143039c3a9cf0952b118f3671ebe296ef2",
        "fbba57df410753b7eca06c8a79f1b08e2116104062ed06cb582e7bc782a50643"),
    "scene 22 720x960": (
        "282acc0184b9dcbc8e21fe076d4087547645c69186876f9b42f59d117dfe0fe2",
        "d5e33ec342e916accbd70992ec7d10f2982c89290e75daaa32634e3093a6d473"),
    "drive 21 x16 180x240 0.5m": (
        "4e8b8deeeeaedd62724b378ae379cc777c2e041431abefe002647eefeec490e1",
        "c56fa0e57bfba9fc0a5047eaae8435e0a8508b2e5e6984a6e167ca2914a4965b"),
    "drive 17 x6 121x161 2m": (
        "91d6dbb0acc15a0a94b5c73e253cdc76e1046128c6c4bbb28e9e2c5223da283f",
        "a196a729e0b28b5110aa4e4f095a8be96d681f5c6f6964ecb2abb6c3bb567fe1"),
    "drive 19 x5 180x240 7.5m": (
        "53e1a9bb616759fe5be7bf5a1270cdd009370cbd054a9d4196c17d44eaa3c55d",
        "ad15964e047e3ebe3ea64ed8c1898b59fb864df85251c57fd355044c860172a5"),
    "drive 4 x3 90x120 0m": (
        "ca4eaa80ad6065668d387140fe2e6685c28239a0884d7b9dbaccbfd9cacc20f9",
        "17c626426393c790a84defa64822503afee6aa7d0317b43378cc25a378244d99"),
    "drive 33 x4 333x257 1m": (
        "65879cf732a05fef8c2ee4cf405d57015add1a9fdbddac2311da56a279b61a63",
        "98da6adafa09dc5118a45b9cf2cb91ade4a3e182b60c8468ea9ab8e87694713e"),
}


def _golden_case(name: str) -> Iterable[Scene]:
    """The scenes of a case named ``scene SEED HxW``, ``scenes FIRST..LAST HxW`` or ``drive SEED xN HxW SPEEDm``."""
    kind, *args = name.split()
    size = tuple(int(v) for v in args[-1 if kind != "drive" else 2].split("x"))
    if kind == "scene":
        return [generate_scene(int(args[0]), size)]
    if kind == "scenes":
        first, last = (int(v) for v in args[0].split(".."))
        return (generate_scene(seed, size) for seed in range(first, last + 1))
    return generate_drive(int(args[0]), int(args[1][1:]), size, speed=float(args[3].rstrip("m")))


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@pytest.mark.skipif({"numpy": _major_minor(np.__version__), "opencv": _major_minor(cv2.__version__)}
                    != GOLDEN_VERSIONS, reason=f"golden digests were recorded with {GOLDEN_VERSIONS}")
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_scenes_match_their_golden_digests(name):
    image, labels = hashlib.sha256(), hashlib.sha256()
    frames = 0
    for scene in _golden_case(name):
        image.update(scene.image.tobytes())
        labels.update(scene.labels.tobytes())
        frames += 1
    assert frames >= 1
    assert (image.hexdigest(), labels.hexdigest()) == GOLDEN[name]
