"""Training: any registry model on a CamVid-layout folder or on synthetic scenes.

The recipe follows LiteSeg: SGD with Nesterov momentum (or AdamW), poly
learning-rate decay per iteration, random scale / crop / flip, cross-entropy
with the ignore id, mixed precision on CUDA. Validation mIoU is computed after
every epoch on full frames; the best model is written as a model file with its
provenance, and a resume checkpoint (also safetensors, nothing pickled) after
every epoch.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from seg_ros.core.errors import ConfigError, SegRosError
from seg_ros.core.labels import LabelSet, get_label_set
from seg_ros.core.machine import cpu_name
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.paths import check_output_file, require_dir
from seg_ros.core.staging import atomic_path
from seg_ros.io.datasets import Augment, FolderDataset, SyntheticDataset
from seg_ros.models import build, get_spec
from seg_ros.models.modelfile import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelMeta,
    file_sha256,
    load_model,
    resolve_model,
    save_model,
)
from seg_ros.models.pretrained import init_backbone
from seg_ros.runtime import resolve_device
from seg_ros.train.class_balance import class_weights

CHECKPOINT_KEY = "seg_ros_checkpoint"


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and the model's provenance)."""

    out: str
    """Path of the best model file (``.safetensors``)."""
    architecture: str = "liteseg_mobilenetv2"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    """CamVid-layout root folder; None trains on synthetic scenes."""
    train_split: str = "train"
    val_split: str = "val"
    label_set: str = "camvid"
    synthetic_train: int = 2000
    """Synthetic scenes per epoch when ``data`` is None; epoch e sees fresh seeds e·n .. (e+1)·n − 1."""
    synthetic_val: int = 100
    """Held-out synthetic validation scenes (seeds from 1,000,000)."""
    synthetic_size: tuple[int, int] = (360, 640)
    crop: tuple[int, int] = (360, 480)
    val_size: tuple[int, int] | None = None
    """Inference size (H, W) for validation, also written as the model's default inference size;
    None = the validation frames' own size."""
    scale: tuple[float, float] = (0.5, 2.0)
    epochs: int = 50
    batch_size: int = 8
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
    """Mixed precision (fp16 autocast) on CUDA; ignored on the CPU."""
    workers: int = 2
    seed: int = 0
    half: bool = True
    """Store the model file's weights as fp16."""
    max_steps_per_epoch: int | None = None
    command: str = field(default_factory=lambda: shlex.join(["seg-ros", *sys.argv[1:]]))

    @property
    def checkpoint(self) -> Path:
        return Path(self.out).with_suffix(".ckpt.safetensors")


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_miou: float
    seconds: float


@dataclass
class TrainResult:
    best_miou: float
    best_epoch: int
    history: list[EpochRecord]
    model_path: Path


class _Augmented(Dataset):
    """Wraps a source with augmentation; the random stream depends only on (seed, epoch, index)."""

    def __init__(self, source, augment: Augment, seed: int):
        self.source, self.augment, self.seed, self.epoch = source, augment, seed, 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return self.augment(*self.source[i], rng)


SYNTHETIC_VAL_SEED = 1_000_000
"""Synthetic validation scenes start at this seed; training seeds stay below it."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest learning rate or weight decay: the optimizers apply them to float32 weights."""
MAX_SEED = 2**32 - 1
"""The largest training seed (numpy's legacy seed range)."""


def _sources(cfg: TrainConfig):
    if cfg.data is None:
        if cfg.epochs * cfg.synthetic_train > SYNTHETIC_VAL_SEED:
            raise ConfigError(f"epochs × synthetic scenes per epoch must stay below {SYNTHETIC_VAL_SEED:,} so that "
                              "training never sees a validation seed.")
        return (SyntheticDataset(0, cfg.synthetic_train, cfg.synthetic_size),
                SyntheticDataset(SYNTHETIC_VAL_SEED, cfg.synthetic_val, cfg.synthetic_size))
    return FolderDataset(cfg.data, cfg.train_split), FolderDataset(cfg.data, cfg.val_split)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_id: int, kind: str = "ce",
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise loss of (N, C, H, W) logits against (N, H, W) int64 targets; ``kind`` is ``ce`` or ``ohem``.

    ``weight`` (C,) scales each class's pixels; the result is the weighted mean over the
    counted pixels (all valid ones for ``ce``, the hard ones for ``ohem``, which are picked
    by their unweighted loss).
    """
    if kind == "ce":
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_id)
    if kind != "ohem":
        raise ConfigError(f"loss must be ce or ohem, not {kind!r}.")
    per_pixel = F.cross_entropy(logits, target, ignore_index=ignore_id, reduction="none").flatten()
    valid = (target != ignore_id).sum()
    n_min = max(int(valid) // 16, 1)
    hard = (per_pixel > -math.log(0.7)).nonzero().squeeze(1)
    if hard.numel() < n_min:
        hard = per_pixel.topk(min(n_min, per_pixel.numel())).indices
    if weight is None:
        return per_pixel[hard].mean()
    t = target.flatten()[hard]
    w = torch.where(t == ignore_id, 0.0, weight[t.clamp(max=len(weight) - 1)])  # ignored pixels weigh nothing
    return (per_pixel[hard] * w).sum() / w.sum().clamp(min=1e-12)


class Normalizer(nn.Module):
    """(N, H, W, 3) uint8 on any device → (N, 3, H, W) float normalised with ``mean``/``std`` of RGB/255."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(std).view(1, 3, 1, 1) * 255.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        return ((x - self.mean) * self.inv_std).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def validate(model: nn.Module, source, label_set: LabelSet, device: torch.device,
             norm: Normalizer | None = None, progress: bool = False,
             size: tuple[int, int] | None = None) -> ConfusionMatrix:
    """Confusion matrix of ``model`` on every full frame of ``source`` (frames run one at a time).

    ``size`` (H, W): run the network at this inference size as the Segmenter does (frame resized, logits
    upsampled bilinearly back to the frame), scoring at the labels' own resolution; None = the frame's size.
    """
    norm = (norm or Normalizer()).to(device)
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
    for i in tqdm(range(len(source)), desc="val", leave=False, disable=not progress):
        img, lab = source[i]
        h, w = lab.shape
        if size is not None and tuple(size) != (h, w):
            smaller = size[0] < h and size[1] < w
            img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR)
        logits = model(norm(torch.from_numpy(img)[None].to(device)))
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        cm.update(logits.argmax(1)[0].to(torch.uint8).cpu().numpy(), lab)
    model.train(was_training)
    return cm


def _poly(base: float, it: int, total: int, power: float) -> float:
    return base * (1.0 - min(it, total - 1) / total) ** power


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm parameters and biases.
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ConfigError(f"optimizer must be sgd or adamw, not {cfg.optimizer!r}.")


class TrainingDivergedError(SegRosError):
    """The training loss became NaN or infinite; the run stops before writing a broken model."""


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
                                 ("class weights", cfg.class_weights, ("none", "median-frequency"))):
        if value not in allowed:
            raise ConfigError(f"{name} must be {' or '.join(allowed)}, not {value!r}.")
    if cfg.data is not None:
        require_dir(cfg.data, "dataset folder")
    check_output_file(cfg.out, "model file")
    check_output_file(cfg.checkpoint, "resume checkpoint")


def train(cfg: TrainConfig, progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Run a training job; returns the best validation mIoU and where the model was written.

    Every setting and the output paths are checked first (:func:`check_config`). A loss that becomes NaN or
    infinite stops the run with :class:`TrainingDivergedError`; the model file and resume checkpoint of the
    epochs before stay as they were.
    """
    check_config(cfg)
    label_set = get_label_set(cfg.label_set)
    device = resolve_device(cfg.device)
    train_src, val_src = _sources(cfg)
    spec = get_spec(cfg.architecture)
    torch.manual_seed(cfg.seed)
    model = build(cfg.architecture, label_set.num_classes, **cfg.arch_kwargs)
    parent: dict[str, Any] | None = None
    if cfg.init:
        parent = _init_from_model_file(model, cfg, label_set)
        log(f"initialised every weight from {cfg.init} (val mIoU {parent.get('val_miou', '?')})")
    elif cfg.pretrained and spec.pretrained_backbone:
        n = init_backbone(model.backbone, spec.pretrained_backbone)
        log(f"initialised the backbone from ImageNet weights ({spec.pretrained_backbone}, {n} tensors)")
    model = model.to(device).to(memory_format=torch.channels_last)
    norm = Normalizer().to(device)
    optimizer = _make_optimizer(cfg, model)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
           if cfg.ema > 0 else None)
    evaluated = model if ema is None else ema.module
    use_amp = cfg.amp and device.type == "cuda"
    weight = _loss_weights(cfg, train_src, label_set, log)
    weight = None if weight is None else weight.to(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    dataset = _Augmented(train_src, Augment(cfg.crop, cfg.scale, True, label_set.ignore_id), cfg.seed)
    steps_per_epoch = len(dataset) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    if steps_per_epoch < 1:
        raise ConfigError(f"the training set has {len(dataset)} frames, fewer than one batch of {cfg.batch_size}.")
    total_steps = steps_per_epoch * cfg.epochs

    start_epoch, best, best_epoch, history = 0, -1.0, -1, []
    if cfg.checkpoint.exists():
        start_epoch, best, best_epoch, history = _load_checkpoint(cfg, model, optimizer, scaler, ema)
        log(f"resumed from {cfg.checkpoint} after epoch {start_epoch} (best val mIoU {best:.4f})")

    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
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
                group["lr"] = _poly(cfg.lr, it, total_steps, cfg.poly_power)
            x = norm(imgs.to(device, non_blocking=True))
            y = labels.to(device, non_blocking=True).long()
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
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
        _check_finite_weights(model, epoch + 1, cfg)
        cm = validate(evaluated, val_src, label_set, device, norm, progress, cfg.val_size)
        miou = cm.miou()
        rec = EpochRecord(epoch + 1, float(np.mean(losses)), miou, time.perf_counter() - t0)
        history.append(rec)
        log(f"epoch {rec.epoch}/{cfg.epochs}: loss {rec.loss:.4f}, val mIoU {miou:.4f} ({rec.seconds:.0f} s)")
        if miou > best:
            best, best_epoch = miou, epoch + 1
            meta = ModelMeta(
                architecture=cfg.architecture, arch_kwargs=cfg.arch_kwargs, label_set=label_set,
                input_size=tuple(cfg.val_size or (cfg.synthetic_size if cfg.data is None
                                                  else val_src[0][1].shape)),
                mean=IMAGENET_MEAN, std=IMAGENET_STD,
                provenance=_provenance(cfg, train_src, val_src, epoch + 1, miou, cm, device,
                                       time.perf_counter() - t_start, parent),
            )
            save_model(cfg.out, evaluated, meta, half=cfg.half)
            log(f"  new best: wrote {cfg.out}")
        _save_checkpoint(cfg, model, optimizer, scaler, epoch + 1, best, best_epoch, history, ema)
    return TrainResult(best, best_epoch, history, Path(cfg.out))


def _check_finite_weights(model: nn.Module, epoch: int, cfg: TrainConfig) -> None:
    """Raise TrainingDivergedError if the last step left a weight NaN or infinite (its loss was still finite)."""
    bad = [k for k, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise TrainingDivergedError(
            f"training diverged: {len(bad)} weight tensor(s) (first {bad[0]}) became NaN or infinite in epoch "
            f"{epoch}; start again with a lower learning rate (now {cfg.lr:g}) or weight decay "
            f"(now {cfg.weight_decay:g}).")


SYNTHETIC_WEIGHT_SCENES = 200
"""Synthetic training scenes sampled for class weights (the generator's class mix is stationary)."""


def _loss_weights(cfg: TrainConfig, train_src, label_set: LabelSet, log: Callable[[str], None]) -> torch.Tensor | None:
    count = len(train_src) if cfg.data is not None else min(len(train_src), SYNTHETIC_WEIGHT_SCENES)
    weights = class_weights(cfg.class_weights, train_src.labels, count, label_set.num_classes)
    if weights is None:
        return None
    log("class weights (" + cfg.class_weights + "): "
        + ", ".join(f"{n} {w:.2f}" for n, w in zip(label_set.names, weights)))
    return torch.from_numpy(weights)


def _init_from_model_file(model: nn.Module, cfg: TrainConfig, label_set: LabelSet) -> dict[str, Any]:
    """Load every weight of the model file ``cfg.init`` into ``model``; returns the parent's provenance summary."""
    path = resolve_model(cfg.init)
    parent, meta = load_model(path)
    if meta.architecture != cfg.architecture or meta.arch_kwargs != cfg.arch_kwargs:
        raise ConfigError(f"--init model {path} is {meta.architecture} {meta.arch_kwargs or ''}, "
                          f"not {cfg.architecture} {cfg.arch_kwargs or ''}.")
    if meta.label_set.names != label_set.names:
        raise ConfigError(f"--init model {path} predicts the {meta.label_set.name} classes, "
                          f"not those of {label_set.name}.")
    model.load_state_dict(parent.state_dict(), strict=True)
    prov = meta.provenance
    return {"file": path.name, "sha256": file_sha256(path),
            **{k: prov[k] for k in ("dataset", "epochs", "val_miou", "date", "command") if k in prov}}


def _provenance(cfg, train_src, val_src, epoch, miou, cm, device, seconds, parent=None) -> dict[str, Any]:
    return {
        "dataset": train_src.name if cfg.data is not None else
        f"synthetic[0:{cfg.epochs * cfg.synthetic_train}]@{cfg.synthetic_size[0]}x{cfg.synthetic_size[1]}",
        "val_dataset": val_src.name,
        "epochs": epoch,
        "epochs_planned": cfg.epochs,
        "val_miou": round(miou, 5),
        "val_iou": {n: (None if np.isnan(v) else round(float(v), 5))
                    for n, v in zip(get_label_set(cfg.label_set).names, cm.iou())},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": cfg.command,
        "pretrained": ("fine-tuned" if cfg.init else
                       "imagenet" if cfg.pretrained and get_spec(cfg.architecture).pretrained_backbone else "none"),
        **({"init": parent} if parent else {}),
        "recipe": {k: v for k, v in asdict(cfg).items() if k not in ("out", "command", "data")},
        "hardware": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "train_seconds": round(seconds, 1),
    }


# -- checkpoints: safetensors, never pickles ----------------------------------------------------

def _save_checkpoint(cfg, model, optimizer, scaler, epoch, best, best_epoch, history, ema=None) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in opt["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    state = {
        "epoch": epoch, "best": best, "best_epoch": best_epoch,
        "history": [asdict(h) for h in history],
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "optim_groups": groups, "optim_scalars": scalars,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }
    with atomic_path(cfg.checkpoint) as tmp:
        save_file(tensors, str(tmp), metadata={CHECKPOINT_KEY: json.dumps(state)})


def _load_checkpoint(cfg, model, optimizer, scaler, ema=None):
    path = cfg.checkpoint
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = json.loads((f.metadata() or {})[CHECKPOINT_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise SegRosError(f"checkpoint {path} cannot be read ({e}); delete it to start afresh.") from e
    # A setting that an older checkpoint does not record had its default value then.
    defaults = asdict(TrainConfig(out=cfg.out, command=cfg.command))
    mine = {k: state["config"].get(k, defaults[k]) for k in defaults
            if k not in ("epochs", "workers", "device", "command")}
    mine = json.loads(json.dumps(mine))
    theirs = {k: v for k, v in asdict(cfg).items() if k in mine}
    if json.loads(json.dumps(theirs)) != mine:
        diff = sorted(k for k in mine if json.loads(json.dumps(theirs.get(k))) != mine[k])
        raise SegRosError(f"checkpoint {path} belongs to a different run (settings differ: {', '.join(diff)}); "
                          "delete it or use another --out.")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True)
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    for idx, d in state["optim_scalars"].items():
        opt_state.setdefault(int(idx), {}).update(d)
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["optim_groups"]})
    if state.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    history = [EpochRecord(**h) for h in state["history"]]
    return state["epoch"], state["best"], state["best_epoch"], history
