"""The optional photometric training augmentation: the colour jitter itself, its place in ``Augment`` (the
geometric stream stays as it was), its setting in checkpoints and the ``--photometric`` flag."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from seg_ros.cli import main
from seg_ros.core.errors import SegRosError
from seg_ros.train import Augment, TrainConfig
from seg_ros.train.augment import (
    HALF_NORMAL_LEVELS,
    LUMA_RGB,
    PhotometricJitter,
    PhotometricParams,
    photometric,
)
from seg_ros.train.checkpoint import CHECKPOINT_KEY, TrainingState, load_checkpoint, save_checkpoint
from seg_ros.train.loop import TrainResult


@pytest.fixture
def pair():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (72, 100, 3), dtype=np.uint8)
    labels = rng.integers(0, 12, (72, 100), dtype=np.uint8)
    return image, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_off_draws_and_returns_exactly_the_geometric_augmentation(pair, seed):
    aug = Augment(crop=(64, 80), scale=(0.5, 2.0), flip=True, ignore_id=255)
    assert aug.photometric is False
    got_rng, ref_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    im, lb = aug(*pair, got_rng)
    ref_im, ref_lb = aug.geometric(*pair, ref_rng)
    np.testing.assert_array_equal(im, ref_im)
    np.testing.assert_array_equal(lb, ref_lb)
    assert got_rng.random() == ref_rng.random()  # nothing extra was drawn


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_on_jitters_the_geometric_image_with_draws_after_it_and_keeps_the_labels(pair, seed):
    image, labels = pair
    before = image.copy()
    jitter = PhotometricJitter(p_colour=1.0, p_blur=1.0, p_noise=1.0)
    aug = Augment(crop=(64, 80), scale=(0.5, 2.0), photometric=True, jitter=jitter)
    im, lb = aug(image, labels, np.random.default_rng(seed))
    ref_rng = np.random.default_rng(seed)
    ref_im, ref_lb = aug.geometric(image, labels, ref_rng)
    np.testing.assert_array_equal(lb, ref_lb)
    np.testing.assert_array_equal(im, jitter(ref_im, ref_rng))
    assert im.dtype == np.uint8 and im.shape == (64, 80, 3) and im.flags.c_contiguous
    assert np.abs(im.astype(int) - ref_im).mean() > 1.0
    np.testing.assert_array_equal(image, before)  # the source frame is never written


def test_sampling_follows_the_documented_ranges_and_probabilities():
    jitter, rng = PhotometricJitter(), np.random.default_rng(0)
    draws = [jitter.sample(rng) for _ in range(4000)]
    identity = PhotometricParams()
    for name, p in (("brightness", 0.5), ("contrast", 0.5), ("saturation", 0.5), ("hue", 0.5), ("gamma", 0.5),
                    ("blur_sigma", 0.2), ("noise_sigma", 0.3)):
        values = np.array([getattr(d, name) for d in draws])
        on = values != getattr(identity, name)
        assert abs(on.mean() - p) < 0.03, name
        lo, hi = getattr(jitter, name)
        assert lo <= values[on].min() and values[on].max() <= hi, name
        assert values[on].min() < lo + 0.1 * (hi - lo) and values[on].max() > hi - 0.1 * (hi - lo), name
    # a fixed number of draws whatever the decisions: the stream after sample() depends only on the seed
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    PhotometricJitter(p_colour=0.0, p_blur=0.0, p_noise=0.0).sample(a)
    PhotometricJitter(p_colour=1.0, p_blur=1.0, p_noise=1.0).sample(b)
    assert a.random() == b.random()


def test_jitter_is_deterministic_per_seed_and_differs_between_seeds(pair):
    image = pair[0]
    jitter = PhotometricJitter(p_colour=1.0, p_blur=1.0, p_noise=1.0)
    first = jitter(image, np.random.default_rng(3))
    assert first.dtype == np.uint8 and first.shape == image.shape
    np.testing.assert_array_equal(first, jitter(image, np.random.default_rng(3)))
    assert not np.array_equal(first, jitter(image, np.random.default_rng(4)))
    # nothing drawn on: the image comes back as a copy, unchanged
    same = photometric(image, PhotometricParams())
    np.testing.assert_array_equal(same, image)
    assert same is not image


def _smooth_image():
    """A (48, 64, 3) uint8 colour ramp within [30, 200], so moderate factors never clip."""
    yy, xx = np.mgrid[0:48, 0:64]
    return np.stack([30 + 2 * xx, 30 + 3 * yy, 200 - 2 * xx - yy], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_brightness_scales_the_mean_by_its_factor(factor):
    image = _smooth_image()
    out = photometric(image, PhotometricParams(brightness=factor))
    assert out.mean() == pytest.approx(factor * image.mean(), abs=0.5)
    assert (out.mean() > image.mean()) == (factor > 1.0)


@pytest.mark.parametrize("factor", [0.75, 1.25])
def test_contrast_scales_the_spread_around_the_mean_grey(factor):
    image = _smooth_image()
    luma = lambda im: im.astype(np.float64) @ np.array(LUMA_RGB)
    out = photometric(image, PhotometricParams(contrast=factor))
    assert luma(out).mean() == pytest.approx(luma(image).mean(), abs=0.5)
    assert luma(out).std() == pytest.approx(factor * luma(image).std(), rel=0.01)


def test_saturation_zero_leaves_each_pixels_luma_grey_and_hue_120_permutes_the_channels():
    image = _smooth_image()
    grey = photometric(image, PhotometricParams(saturation=0.0)).astype(int)
    luma = image.astype(np.float64) @ np.array(LUMA_RGB)
    assert np.abs(grey - np.rint(luma)[..., None]).max() <= 1
    # a third of a turn about the grey axis maps R→G→B→R exactly
    turned = photometric(image, PhotometricParams(hue=120.0)).astype(int)
    assert np.abs(turned - np.roll(image, 1, axis=2)).max() <= 1
    small = photometric(image, PhotometricParams(hue=8.0)).astype(int)
    assert 0 < np.abs(small - image).mean() < 10
    assert small.sum(axis=2) == pytest.approx(image.astype(int).sum(axis=2), abs=2)  # the RGB mean stays


def test_gamma_is_the_curve_255_v_over_255_to_the_gamma():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = np.repeat(levels[..., None], 3, axis=2)
    for gamma in (0.7, 1.5):
        out = photometric(image, PhotometricParams(gamma=gamma))
        want = np.rint(255.0 * (levels / 255.0) ** gamma)
        np.testing.assert_array_equal(out, np.repeat(want[..., None], 3, axis=2).astype(np.uint8))


@pytest.mark.parametrize("seed", range(5))
def test_a_grey_image_stays_grey_under_every_colour_step(seed):
    rng = np.random.default_rng(seed)
    jitter = PhotometricJitter(p_colour=1.0, p_blur=0.0, p_noise=0.0)
    params = jitter.sample(rng)
    image = np.full((24, 32, 3), 90, np.uint8)
    out = photometric(image, params).astype(int)
    # constant image: contrast has nothing to spread, saturation and hue nothing to colour
    want = params.brightness * 255.0 * (90 / 255.0) ** params.gamma
    assert np.abs(out - want).max() <= 1
    assert np.ptp(out, axis=2).max() <= 1


def test_blur_smooths_edges_and_keeps_flat_areas():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, 16:] = 200
    out = photometric(image, PhotometricParams(blur_sigma=1.2))
    np.testing.assert_array_equal(out[:, :8], 0)
    np.testing.assert_array_equal(out[:, 24:], 200)
    assert 0 < out[0, 15, 0] < 100 < out[0, 16, 0] < 200


def test_noise_has_the_drawn_sigma_per_channel_and_needs_a_generator():
    assert float((HALF_NORMAL_LEVELS.astype(np.float64) ** 2).mean()) == pytest.approx(0.5, rel=1e-5)
    image = np.full((256, 256, 3), 128, np.uint8)
    out = photometric(image, PhotometricParams(noise_sigma=4.0), np.random.default_rng(0)).astype(np.float64)
    dev = out - 128.0
    assert abs(dev.mean()) < 0.05
    assert dev.std() == pytest.approx(np.sqrt(4.0 ** 2 + 1 / 12), rel=0.03)  # plus the final rounding
    correlation = np.corrcoef(dev[..., 0].ravel(), dev[..., 1].ravel())[0, 1]
    assert abs(correlation) < 0.02  # independent per channel, not one grey noise
    with pytest.raises(ValueError, match="noise needs a random generator"):
        photometric(image, PhotometricParams(noise_sigma=1.0))


def _rewrite_config(path: Path, edit) -> None:
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads(f.metadata()[CHECKPOINT_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(meta["config"])
    save_file(tensors, str(path), metadata={CHECKPOINT_KEY: json.dumps(meta)})


def test_a_checkpoint_from_before_the_setting_resumes_without_jitter_only(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "m.safetensors"), command="pytest")
    assert "photometric" in asdict(cfg) and cfg.photometric is False
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    save_checkpoint(cfg, model, optimizer, scaler, TrainingState(1, 0.5, 1, []))
    _rewrite_config(cfg.checkpoint, lambda c: c.pop("photometric"))
    state = load_checkpoint(cfg, model, optimizer, scaler)
    assert (state.epoch, state.best) == (1, 0.5)
    on = TrainConfig(out=cfg.out, command="pytest", photometric=True)
    with pytest.raises(SegRosError, match="settings differ: photometric"):
        load_checkpoint(on, model, optimizer, scaler)


@pytest.mark.parametrize("flag", [False, True])
def test_the_cli_flag_sets_the_config(flag, tmp_path, monkeypatch, capsys):
    import seg_ros.train

    seen = []

    def fake_train(cfg, **kw):
        seen.append(cfg)
        return TrainResult(0.5, 1, [], Path(cfg.out))

    monkeypatch.setattr(seg_ros.train, "train", fake_train)
    out = str(tmp_path / "m.safetensors")
    argv = ["train", "--synthetic", "--crop", "64x96", "--scale-min", "0.8", "--out", out, "--quiet"]
    assert main(argv + ["--photometric"] * flag) == 0
    (cfg,) = seen
    assert cfg.photometric is flag and cfg.crop == (64, 96) and cfg.scale == (0.8, 2.0) and cfg.out == out
    assert "model written to" in capsys.readouterr().out


def test_the_cli_help_names_every_step(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--photometric colour jitter: brightness, contrast, saturation, hue, gamma, blur, noise" in text
