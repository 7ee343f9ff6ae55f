"""The settings of a training run (:class:`TrainConfig`) and their checks before anything is loaded."""

from __future__ import annotations

import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import get_label_set
from seg_ros.core.paths import check_output_file, require_dir

SYNTHETIC_VAL_SEED = 1_000_000
"""Synthetic validation scenes start at this seed; training seeds stay below it."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest learning rate or weight decay: the optimizers apply them to float32 weights."""
MAX_SEED = 2**32 - 1
"""The largest training seed (numpy's legacy seed range)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and the model's provenance)."""

    out: str
    """Path of the best model file (``.safetensors``)."""
    architecture: str = "liteseg_mobilenetv2"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    """CamVid-layout root folder; None trains on synthetic scenes."""
    train_splits: tuple[str, ...] = ("train",)
    """Splits of ``data`` pooled into the training frames (and, with ``val_sequences``, the validation frames)."""
    val_split: str = "val"
    """The validation split of ``data`` when no sequences are held out."""
    val_sequences: tuple[str, ...] = ()
    """Sequences held out of the pooled splits: every frame of them validates, every other frame trains."""
    group_by: str = "prefix"
    """How frames map to sequences: ``prefix`` (file stem before its last ``_``) or ``list:FILE``
    (see :mod:`~seg_ros.train.sequences`)."""
    label_set: str = "camvid"
    synthetic_train: int = 2000
    """Synthetic scenes per epoch when ``data`` is None; epoch e sees fresh seeds e·n .. (e+1)·n − 1."""
    synthetic_val: int = 100
    """Held-out synthetic validation scenes (seeds from 1,000,000)."""
    synthetic_size: tuple[int, int] = (360, 640)
    crop: tuple[int, int] = (360, 480)
    val_size: tuple[int, int] | None = None
    """The model's inference size (H, W), written as its default resolution and used for validation;
    None = the size of the first validation frame."""
    scale: tuple[float, float] = (0.5, 2.0)
    photometric: bool = False
    """Colour-jitter the training images (brightness, contrast, saturation, hue, gamma, blur, noise)."""
    rare_classes: tuple[str, ...] = ()
    """Class names of ``label_set`` that a share ``rare_crop_p`` of the crops is centred on where a frame holds
    them (:class:`~seg_ros.train.augment.Augment`)."""
    rare_crop_p: float = 0.5
    epochs: int = 50
    batch_size: int = 8
    keep: str = "best"
    """Which epoch's model is written: ``best`` (the highest validation mIoU) or ``last`` (the end of the
    schedule: chosen without looking at the validation frames, so a held-out score is not flattered by the
    choice, and a model trained on every frame is chosen the same way as its folds)."""
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 4e-5
    poly_power: float = 0.9
    loss: str = "ce"
    """``ce`` (cross-entropy) or ``ohem`` (cross-entropy over the hardest pixels: those with p_true < 0.7,
    at least 1/16 of the batch's valid pixels), which helps small classes."""
    class_weights: str = "none"
    """``none`` or ``median-frequency``: per-class loss weights from the training labels (see class_balance)."""
    pretrained: bool = True
    """Initialise the backbone with ImageNet weights."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights and BatchNorm statistics (e.g. 0.995), updated
    every step; validation and the written model use the average. 0 turns it off."""
    init: str | None = None
    """A model file (path or shipped name) whose weights initialise the whole model (fine-tuning);
    its architecture and label set must match. Takes the place of the ImageNet initialisation."""
    device: str = "auto"
    amp: bool = True
    """Mixed precision: fp16 autocast on CUDA, bf16 autocast on a CPU with hardware bf16 (AVX-512 BF16, AMX);
    fp32 on other CPUs."""
    workers: int = 2
    seed: int = 0
    half: bool = True
    """Store the model file's weights as fp16."""
    max_steps_per_epoch: int | None = None
    command: str = field(default_factory=lambda: shlex.join(["seg-ros", *sys.argv[1:]]))

    @property
    def checkpoint(self) -> Path:
        return Path(self.out).with_suffix(".ckpt.safetensors")


def check_config(cfg: TrainConfig) -> None:
    """Raise ConfigError (one sentence) for any setting that cannot train, before anything is loaded or written.

    Also checks that ``cfg.out`` and its resume checkpoint can be written and that ``cfg.data`` is a folder.
    """
    def finite(name: str, value: float, low: float, *, low_open: bool = False, high: float = math.inf) -> None:
        bad_low = value <= low if low_open else value < low
        if not math.isfinite(value) or bad_low or value > high:
            rng = f"{'above' if low_open else 'at least'} {low:g}"
            rng += "" if high == math.inf else f" and at most {high:g}"
            raise ConfigError(f"{name} must be a finite number {rng}, not {value}.")

    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError("epochs and batch size must be at least 1.")
    # 0 is allowed: it refreshes only BatchNorm statistics; the optimizers compute in float32
    finite("the learning rate", cfg.lr, 0.0, high=FLOAT32_MAX)
    finite("the weight decay", cfg.weight_decay, 0.0, high=FLOAT32_MAX)
    finite("the momentum", cfg.momentum, 0.0, high=1.0)
    finite("the poly power", cfg.poly_power, 0.0)
    lo, hi = cfg.scale
    finite("the smallest scale", lo, 0.0, low_open=True, high=16.0)
    finite("the largest scale", hi, 0.0, low_open=True, high=16.0)
    if lo > hi:
        raise ConfigError(f"the smallest scale ({lo:g}) is larger than the largest ({hi:g}); swap them.")
    if not 0.0 <= cfg.ema < 1.0:
        raise ConfigError(f"the EMA decay must lie in [0, 1), not {cfg.ema}.")
    for name, value in (("data-loading workers", cfg.workers), ("the seed", cfg.seed)):
        if value < 0:
            raise ConfigError(f"{name} must be 0 or more, not {value}.")
    if cfg.seed > MAX_SEED:  # the per-epoch generators are seeded with seed × 1000 + epoch, an int64
        raise ConfigError(f"the seed must be at most {MAX_SEED:,}, not {cfg.seed:,}.")
    if cfg.data is None and min(cfg.synthetic_train, cfg.synthetic_val) < 1:
        raise ConfigError("synthetic training and validation scenes must be at least 1 each.")
    if cfg.data is None and cfg.synthetic_val > SYNTHETIC_VAL_SEED:
        raise ConfigError(f"synthetic validation scenes must be at most {SYNTHETIC_VAL_SEED:,}, "
                          f"not {cfg.synthetic_val:,}.")
    if cfg.max_steps_per_epoch is not None and cfg.max_steps_per_epoch < 1:
        raise ConfigError(f"max steps per epoch must be at least 1, not {cfg.max_steps_per_epoch}.")
    for name, value, allowed in (("optimizer", cfg.optimizer, ("sgd", "adamw")), ("loss", cfg.loss, ("ce", "ohem")),
                                 ("class weights", cfg.class_weights, ("none", "median-frequency")),
                                 ("the kept epoch", cfg.keep, ("best", "last"))):
        if value not in allowed:
            raise ConfigError(f"{name} must be {' or '.join(allowed)}, not {value!r}.")
    finite("the share of rare-class crops", cfg.rare_crop_p, 0.0, high=1.0)
    label_names = get_label_set(cfg.label_set).names
    unknown = [c for c in cfg.rare_classes if c not in label_names]
    if unknown:
        raise ConfigError(f"rare class {unknown[0]!r} is not a class of {cfg.label_set}; its classes are "
                          f"{', '.join(label_names)}.")
    if not cfg.train_splits or len(set(cfg.train_splits)) != len(cfg.train_splits):
        raise ConfigError(f"training splits must be one or more different names, not {','.join(cfg.train_splits)!r}.")
    if cfg.data is None and cfg.val_sequences:
        raise ConfigError("held-out validation sequences need a dataset folder (--data).")
    if cfg.data is not None:
        require_dir(cfg.data, "dataset folder")
    check_output_file(cfg.out, "model file")
    check_output_file(cfg.checkpoint, "resume checkpoint")
