"""Where a trained model comes from: fine-tuning initialisation from a parent model file, and the provenance
record written into the model file."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import LabelSet
from seg_ros.core.machine import cpu_name
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.models import get_spec
from seg_ros.models.modelfile import file_sha256, load_model, resolve_model
from seg_ros.train.config import TrainConfig


def init_from_model_file(model: nn.Module, cfg: TrainConfig, label_set: LabelSet) -> dict[str, Any]:
    """Load every weight of the model file ``cfg.init`` into ``model``; returns the parent's provenance summary.

    Raises:
        ConfigError: the parent's architecture, its arguments or its label set differ from the run's.
    """
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


def training_provenance(cfg: TrainConfig, label_set: LabelSet, train_name: str, val_name: str, epoch: int,
                        cm: ConfusionMatrix, device: torch.device, seconds: float,
                        parent: dict[str, Any] | None = None,
                        validation: dict[str, Any] | None = None, precision: str = "fp32") -> dict[str, Any]:
    """The model file's provenance after ``epoch`` (from 1): data, validation scores ``cm`` per class of
    ``label_set``, recipe, hardware, the training steps' ``precision`` (``fp32``, ``bf16 mixed`` ...),
    training time in seconds and, when fine-tuned, the ``parent`` of
    :func:`init_from_model_file`; ``validation`` is the validation scheme (held-out sequences, pooled splits,
    cross-validation scores), recorded when given."""
    miou = cm.miou()
    return {
        "dataset": train_name if cfg.data is not None else
        f"synthetic[0:{cfg.epochs * cfg.synthetic_train}]@{cfg.synthetic_size[0]}x{cfg.synthetic_size[1]}",
        "val_dataset": val_name,
        "epochs": epoch,
        "epochs_planned": cfg.epochs,
        "val_miou": round(miou, 5),
        "val_iou": {n: (None if np.isnan(v) else round(float(v), 5)) for n, v in zip(label_set.names, cm.iou())},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": cfg.command,
        "pretrained": ("fine-tuned" if cfg.init else
                       "imagenet" if cfg.pretrained and get_spec(cfg.architecture).pretrained_backbone else "none"),
        **({"init": parent} if parent else {}),
        **({"validation": validation} if validation else {}),
        "recipe": {k: v for k, v in asdict(cfg).items() if k not in ("out", "command", "data")},
        "hardware": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "precision": precision,
        "train_seconds": round(seconds, 1),
    }


def validation_summary(provenance: Mapping[str, Any]) -> str | None:
    """One line on how honest a model file's validation score is, from its provenance; None when the record
    holds no validation scheme (a plain train / val split).

    E.g. ``held-out sequences 0016E5: val mIoU 0.61``, ``3-fold cross-validation by sequence: mean mIoU 0.58
    (0.55, 0.60, 0.59)`` or ``validation split val was also trained on: val mIoU 0.71 is not held out``.
    """
    scheme = provenance.get("validation")
    if not isinstance(scheme, Mapping):
        return None
    miou = provenance.get("val_miou")
    score = f"val mIoU {miou:.4f}" if isinstance(miou, (int, float)) else "val mIoU ?"
    parts = []
    if scheme.get("scheme") == "held-out sequences":
        parts.append(f"held-out sequences {', '.join(scheme.get('held_out', []))}: {score}")
    elif scheme.get("held_out") is False:
        parts.append(f"validation split {scheme.get('val_split')} was also trained on: {score} is not held out")
    cv = scheme.get("cross_validation")
    if isinstance(cv, Mapping) and cv.get("fold_mious"):
        folds = ", ".join(f"{m:.4f}" for m in cv["fold_mious"])
        parts.append(f"{len(cv['fold_mious'])}-fold cross-validation by sequence: mean mIoU "
                     f"{cv.get('mean_miou', float('nan')):.4f} ({folds})")
    return "; ".join(parts) or None
