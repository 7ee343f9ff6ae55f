"""Class-aware crops: a share of the training crops is placed on a rare class where a frame holds one."""

import numpy as np
import pytest

from seg_ros.core.errors import ConfigError
from seg_ros.train import Augment, TrainConfig
from seg_ros.train.config import check_config

POLE, SIGN = 2, 6


def _frame(marks: dict[int, tuple[int, int]], shape=(120, 160)) -> tuple[np.ndarray, np.ndarray]:
    """Road everywhere, one pixel of each class in ``marks`` at its (y, x); the image encodes x and y."""
    labels = np.full(shape, 3, np.uint8)
    for cls, (y, x) in marks.items():
        labels[y, x] = cls
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.stack([yy, xx, np.zeros_like(yy)], -1).astype(np.uint8)
    return image, labels


@pytest.mark.parametrize("seed", range(40))
def test_every_rare_crop_holds_the_rare_pixel_and_its_image(seed):
    image, labels = _frame({POLE: (5, 150)})  # a corner a uniform 48x64 crop reaches about 1 time in 120
    aug = Augment(crop=(48, 64), scale=(1.0, 1.0), flip=False, rare_classes=(POLE, SIGN), rare_crop_p=1.0)
    im, lb = aug(image, labels, np.random.default_rng(seed))
    assert lb.shape == (48, 64) and (lb == POLE).sum() == 1
    y, x = np.argwhere(lb == POLE)[0]
    assert tuple(im[y, x, :2]) == (5, 150)  # image and labels were cut at the same place


def test_rare_crops_draw_the_present_classes_evenly_and_place_the_window_at_random():
    image, labels = _frame({POLE: (60, 20), SIGN: (60, 140)})
    aug = Augment(crop=(48, 64), scale=(1.0, 1.0), flip=False, rare_classes=(POLE, SIGN), rare_crop_p=1.0)
    seen, origins = {POLE: 0, SIGN: 0}, set()
    for seed in range(400):
        im, lb = aug(image, labels, np.random.default_rng(seed))
        present = [c for c in (POLE, SIGN) if (lb == c).any()]
        assert len(present) == 1  # the two are too far apart for one window
        seen[present[0]] += 1
        origins.add((int(im[0, 0, 0]), int(im[0, 0, 1])))
    assert 160 < seen[POLE] < 240, seen
    assert len(origins) > 100  # not one fixed window around the pixel


def test_a_share_of_the_crops_and_none_without_the_class():
    image, labels = _frame({POLE: (5, 150)})
    share = Augment(crop=(48, 64), scale=(1.0, 1.0), flip=False, rare_classes=(POLE,), rare_crop_p=0.5)
    hits = sum((share(image, labels, np.random.default_rng(s))[1] == POLE).any() for s in range(2000))
    assert 0.46 * 2000 < hits < 0.55 * 2000  # half on the pole (0.504 with the uniform crops that reach it)
    bare = _frame({})
    for s in range(20):  # no rare pixel: a uniform crop, as without the option
        _, lb = share(*bare, np.random.default_rng(s))
        assert lb.shape == (48, 64) and (lb == 3).all()


@pytest.mark.parametrize("seed", range(5))
def test_without_rare_classes_the_stream_is_the_plain_one(seed):
    image, labels = _frame({POLE: (5, 150)})
    plain = Augment(crop=(48, 64), scale=(0.5, 2.0))
    off = Augment(crop=(48, 64), scale=(0.5, 2.0), rare_crop_p=1.0)
    a_rng, b_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for x, y in zip(plain(image, labels, a_rng), off(image, labels, b_rng)):
        np.testing.assert_array_equal(x, y)
    assert a_rng.random() == b_rng.random()


def test_rare_class_names_and_share_are_checked(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "m.safetensors"), rare_classes=("Pole", "Lamp"))
    with pytest.raises(ConfigError, match="rare class 'Lamp' is not a class of camvid; its classes are Sky"):
        check_config(cfg)
    with pytest.raises(ConfigError, match="share of rare-class crops"):
        check_config(TrainConfig(out=str(tmp_path / "m.safetensors"), rare_crop_p=1.5))
    check_config(TrainConfig(out=str(tmp_path / "m.safetensors"), rare_classes=("Pole", "Bicyclist")))
