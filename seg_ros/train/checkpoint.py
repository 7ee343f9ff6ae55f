"""Resume checkpoints: safetensors files (nothing pickled) written after every epoch.

Tensors: ``model.*`` (the trained weights), ``ema.*`` (the weight average, when on) and ``optim.<param>.<name>``
(the optimizer's per-parameter state). Everything else (epoch, best score, history, settings, optimizer
groups and scalars, gradient scaler) is JSON under the metadata key :data:`CHECKPOINT_KEY`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel

from seg_ros.core.errors import SegRosError
from seg_ros.core.staging import atomic_path
from seg_ros.train.config import TrainConfig

CHECKPOINT_KEY = "seg_ros_checkpoint"

RUN_INDEPENDENT_SETTINGS = ("epochs", "workers", "device", "command")
"""Settings a resumed run may change: more epochs, other loading workers or device, another command line."""


@dataclass
class EpochRecord:
    """One finished epoch: its number (from 1), mean training loss, validation mIoU and duration in seconds."""

    epoch: int
    loss: float
    val_miou: float
    seconds: float


@dataclass
class TrainingState:
    """Where a run stands after an epoch: epochs done, best validation mIoU and its epoch, the history."""

    epoch: int
    best: float
    best_epoch: int
    history: list[EpochRecord]


def save_checkpoint(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, state: TrainingState, ema: AveragedModel | None = None) -> None:
    """Write ``cfg.checkpoint`` atomically (temporary file + rename)."""
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
    meta = {
        "epoch": state.epoch, "best": state.best, "best_epoch": state.best_epoch,
        "history": [asdict(h) for h in state.history],
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "optim_groups": groups, "optim_scalars": scalars,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }
    with atomic_path(cfg.checkpoint) as tmp:
        save_file(tensors, str(tmp), metadata={CHECKPOINT_KEY: json.dumps(meta)})


def load_checkpoint(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, ema: AveragedModel | None = None) -> TrainingState:
    """Restore ``model``, ``optimizer``, ``scaler`` and ``ema`` from ``cfg.checkpoint``; returns where the run stood.

    Raises:
        SegRosError: the file cannot be read, or it was written by a run with other settings (apart from
            :data:`RUN_INDEPENDENT_SETTINGS`; a setting it does not record had its default value then).
    """
    path = cfg.checkpoint
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[CHECKPOINT_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise SegRosError(f"checkpoint {path} cannot be read ({e}); delete it to start afresh.") from e
    defaults = asdict(TrainConfig(out=cfg.out, command=cfg.command))
    mine = {k: meta["config"].get(k, defaults[k]) for k in defaults if k not in RUN_INDEPENDENT_SETTINGS}
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
    for idx, d in meta["optim_scalars"].items():
        opt_state.setdefault(int(idx), {}).update(d)
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["optim_groups"]})
    if meta.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(meta["scaler"])
    history = [EpochRecord(**h) for h in meta["history"]]
    return TrainingState(meta["epoch"], meta["best"], meta["best_epoch"], history)


def checkpoint_epoch(path: str | Path) -> int:
    """Epochs finished by the run whose resume checkpoint is ``path`` (its metadata only; no tensor is read).

    Raises:
        SegRosError: the file cannot be read as a checkpoint.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return int(json.loads((f.metadata() or {})[CHECKPOINT_KEY])["epoch"])
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise SegRosError(f"checkpoint {path} cannot be read ({e}); delete it to start afresh.") from e
