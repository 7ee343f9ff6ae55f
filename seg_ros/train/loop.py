"""The training loop: any registry model on a CamVid-layout folder or on synthetic scenes.

The recipe follows LiteSeg: SGD with Nesterov momentum (or AdamW), poly learning-rate decay per iteration,
random scale / crop / flip, cross-entropy with the ignore id, mixed precision on CUDA. After every epoch the
model is validated on full frames the way the Segmenter runs it from the model file; the best model is written
as a model file with its provenance, and a resume checkpoint after every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from seg_ros.core.errors import ConfigError, SegRosError
from seg_ros.core.labels import get_label_set
from seg_ros.core.machine import cpu_has_native_bf16
from seg_ros.core.preprocess import FramePreprocessor
from seg_ros.io.datasets import SyntheticDataset
from seg_ros.models import build, get_spec
from seg_ros.models.modelfile import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, save_model
from seg_ros.models.pretrained import init_backbone
from seg_ros.runtime import resolve_device
from seg_ros.train.augment import Augment, AugmentedDataset
from seg_ros.train.checkpoint import EpochRecord, TrainingState, load_checkpoint, save_checkpoint
from seg_ros.train.config import SYNTHETIC_VAL_SEED, TrainConfig, check_config
from seg_ros.train.frames import folder_sources
from seg_ros.train.loss import loss_weights, segmentation_loss
from seg_ros.train.provenance import init_from_model_file, training_provenance
from seg_ros.train.validate import validate


@dataclass
class TrainResult:
    """The written model's validation mIoU and epoch (the best, or the last with ``keep="last"``), every epoch's
    record and the model file's path."""

    best_miou: float
    best_epoch: int
    history: list[EpochRecord]
    model_path: Path


class TrainingDivergedError(SegRosError):
    """The training loss became NaN or infinite; the run stops before writing a broken model."""


def training_sources(cfg: TrainConfig) -> tuple[Any, Any, dict[str, Any] | None]:
    """The (train, validation) sources of ``cfg`` and its validation scheme for the provenance (None: the plain
    split): its dataset's splits or sequences (:func:`~seg_ros.train.frames.folder_sources`), or disjoint synthetic
    seed ranges."""
    if cfg.data is None:
        if cfg.epochs * cfg.synthetic_train > SYNTHETIC_VAL_SEED:
            raise ConfigError(f"epochs × synthetic scenes per epoch must stay below {SYNTHETIC_VAL_SEED:,} so that "
                              "training never sees a validation seed.")
        return (SyntheticDataset(0, cfg.synthetic_train, cfg.synthetic_size),
                SyntheticDataset(SYNTHETIC_VAL_SEED, cfg.synthetic_val, cfg.synthetic_size), None)
    return folder_sources(cfg)


def train(cfg: TrainConfig, progress: bool = True, log: Callable[[str], None] = print,
          cross_validation: dict[str, Any] | None = None) -> TrainResult:
    """Run a training job; returns the best validation mIoU and where the model was written.

    Every setting and the output paths are checked first (:func:`~seg_ros.train.config.check_config`). A loss
    that becomes NaN or infinite stops the run with :class:`TrainingDivergedError`; the model file and resume
    checkpoint of the epochs before stay as they were. ``cross_validation`` (a
    :meth:`~seg_ros.train.folds.FoldsReport.provenance` summary of folds run with the same recipe) is recorded
    in the model file's provenance as ``validation.cross_validation``.
    """
    check_config(cfg)
    label_set = get_label_set(cfg.label_set)
    device = resolve_device(cfg.device)
    train_src, val_src, validation = training_sources(cfg)
    if cross_validation is not None:
        validation = {**(validation or {"scheme": "split", "train_splits": list(cfg.train_splits),
                                        "val_split": cfg.val_split}), "cross_validation": cross_validation}
    if validation is not None and validation.get("held_out") is False:
        log(f"note: the validation split {cfg.val_split} is also trained on, so its score is not a held-out score")
    # What the model file will record; validation runs the model the way the Segmenter will run it from there.
    meta = ModelMeta(architecture=cfg.architecture, arch_kwargs=cfg.arch_kwargs, label_set=label_set,
                     input_size=tuple(cfg.val_size or (cfg.synthetic_size if cfg.data is None
                                                       else val_src.labels(0).shape)),
                     mean=IMAGENET_MEAN, std=IMAGENET_STD)
    spec = get_spec(cfg.architecture)
    torch.manual_seed(cfg.seed)
    model = build(cfg.architecture, label_set.num_classes, **cfg.arch_kwargs)
    parent: dict[str, Any] | None = None
    if cfg.init:
        parent = init_from_model_file(model, cfg, label_set)
        log(f"initialised every weight from {cfg.init} (val mIoU {parent.get('val_miou', '?')})")
    elif cfg.pretrained and spec.pretrained_backbone:
        n = init_backbone(model.backbone, spec.pretrained_backbone)
        log(f"initialised the backbone from ImageNet weights ({spec.pretrained_backbone}, {n} tensors)")
    model = model.to(device).to(memory_format=torch.channels_last)
    normalise = FramePreprocessor(meta.mean, meta.std, device)
    optimizer = make_optimizer(cfg, model)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
           if cfg.ema > 0 else None)
    evaluated = model if ema is None else ema.module
    autocast = mixed_precision(cfg.amp, device)
    use_scaler = autocast == torch.float16
    weight = loss_weights(cfg.class_weights, train_src, cfg.data is None, label_set, log)
    weight = None if weight is None else weight.to(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    augment = Augment(cfg.crop, cfg.scale, True, label_set.ignore_id, photometric=cfg.photometric,
                      rare_classes=tuple(label_set.names.index(c) for c in cfg.rare_classes),
                      rare_crop_p=cfg.rare_crop_p)
    dataset = AugmentedDataset(train_src, augment, cfg.seed)
    steps_per_epoch = len(dataset) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    if steps_per_epoch < 1:
        raise ConfigError(f"the training set has {len(dataset)} frames, fewer than one batch of {cfg.batch_size}.")
    total_steps = steps_per_epoch * cfg.epochs

    state = TrainingState(0, -1.0, -1, [])
    if cfg.checkpoint.exists():
        state = load_checkpoint(cfg, model, optimizer, scaler, ema)
        log(f"resumed from {cfg.checkpoint} after epoch {state.epoch} (best val mIoU {state.best:.4f})")

    t_start = time.perf_counter()
    for epoch in range(state.epoch, cfg.epochs):
        dataset.epoch = epoch
        if cfg.data is None:
            dataset.source = SyntheticDataset(epoch * cfg.synthetic_train, cfg.synthetic_train, cfg.synthetic_size)
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=g,
                            num_workers=cfg.workers, pin_memory=device.type == "cuda",
                            persistent_workers=False)
        model.train()
        t0, losses = time.perf_counter(), []
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for step, (imgs, labels) in enumerate(loader):
            if step >= steps_per_epoch:
                break
            it = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = poly_lr(cfg.lr, it, total_steps, cfg.poly_power)
            x = normalise(imgs.to(device, non_blocking=True), tuple(imgs.shape[1:3]))  # crops: no resize
            y = labels.to(device, non_blocking=True).long()
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                logits = model(x)
            loss = segmentation_loss(logits.float(), y, label_set.ignore_id, cfg.loss, weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"training diverged: the loss became {value} at epoch {epoch + 1}, step {step + 1}; start again "
                    f"with a lower learning rate (now {cfg.lr:g}).")
            losses.append(value)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            bar.update()
        bar.close()
        check_finite_weights(model, epoch + 1, cfg)
        cm = validate(evaluated, meta, val_src, device, progress=progress)
        miou = cm.miou()
        rec = EpochRecord(epoch + 1, float(np.mean(losses)), miou, time.perf_counter() - t0)
        state.history.append(rec)
        log(f"epoch {rec.epoch}/{cfg.epochs}: loss {rec.loss:.4f}, val mIoU {miou:.4f} ({rec.seconds:.0f} s)")
        if miou > state.best or cfg.keep == "last":
            state.best, state.best_epoch = miou, epoch + 1
            provenance = training_provenance(cfg, label_set, train_src.name, val_src.name, epoch + 1, cm, device,
                                             time.perf_counter() - t_start, parent, validation,
                                             precision_name(autocast))
            save_model(cfg.out, evaluated, replace(meta, provenance=provenance), half=cfg.half)
            if cfg.keep == "best":
                log(f"  new best: wrote {cfg.out}")
        state.epoch = epoch + 1
        save_checkpoint(cfg, model, optimizer, scaler, state, ema)
    return TrainResult(state.best, state.best_epoch, state.history, Path(cfg.out))


def mixed_precision(amp: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the training steps: fp16 on CUDA, bf16 on a CPU that computes bf16 in hardware
    (about 1.5× faster steps than fp32 on AVX-512 BF16), None (fp32) otherwise or with ``amp`` off.
    Validation always runs in fp32, as the Segmenter does."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def precision_name(autocast: torch.dtype | None) -> str:
    """How the training steps computed, for the provenance: ``fp32``, ``fp16 mixed`` or ``bf16 mixed``."""
    return {None: "fp32", torch.float16: "fp16 mixed", torch.bfloat16: "bf16 mixed"}[autocast]


def poly_lr(base: float, it: int, total: int, power: float) -> float:
    """The poly schedule's learning rate at iteration ``it`` of ``total``: base · (1 − it/total)^power."""
    return base * (1.0 - min(it, total - 1) / total) ** power


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW; no weight decay on BatchNorm parameters and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ConfigError(f"optimizer must be sgd or adamw, not {cfg.optimizer!r}.")


def check_finite_weights(model: nn.Module, epoch: int, cfg: TrainConfig) -> None:
    """Raise TrainingDivergedError if the last step left a weight NaN or infinite (its loss was still finite)."""
    bad = [k for k, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise TrainingDivergedError(
            f"training diverged: {len(bad)} weight tensor(s) (first {bad[0]}) became NaN or infinite in epoch "
            f"{epoch}; start again with a lower learning rate (now {cfg.lr:g}) or weight decay "
            f"(now {cfg.weight_decay:g}).")
