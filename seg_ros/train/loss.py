"""The training loss: pixel-wise cross-entropy or OHEM with the ignore id, optionally class-weighted."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import LabelSet
from seg_ros.train.class_balance import class_weights

SYNTHETIC_WEIGHT_SCENES = 200
"""Synthetic training scenes sampled for class weights (the generator's class mix is stationary)."""


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


def loss_weights(kind: str, train_src, synthetic: bool, label_set: LabelSet,
                 log: Callable[[str], None]) -> torch.Tensor | None:
    """Per-class (C,) float32 loss weights of ``kind`` (see :mod:`~seg_ros.train.class_balance`), None for ``none``.

    ``train_src`` has ``labels(i)`` and a length; a synthetic source is sampled (its first
    :data:`SYNTHETIC_WEIGHT_SCENES` scenes), a dataset is counted whole. The weights are logged by class name.
    """
    count = min(len(train_src), SYNTHETIC_WEIGHT_SCENES) if synthetic else len(train_src)
    weights = class_weights(kind, train_src.labels, count, label_set.num_classes)
    if weights is None:
        return None
    log(f"class weights ({kind}): " + ", ".join(f"{n} {w:.2f}" for n, w in zip(label_set.names, weights)))
    return torch.from_numpy(weights)
