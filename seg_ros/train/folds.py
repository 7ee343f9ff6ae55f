"""k-fold cross-validation by sequence: one training per fold, each holding out whole sequences.

Fold ``i`` (from 1) of a run with ``--out DIR/m.safetensors`` trains on every sequence but its own and writes
its best model to ``DIR/m.fold<i>.safetensors`` (its resume checkpoint beside it); the scores of all folds go to
``DIR/m.folds.json`` (:class:`FoldsReport`). A fold whose model exists and whose run finished is not trained
again, so an interrupted cross-validation continues with the fold it stopped in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from seg_ros.core.errors import ConfigError, InputError, SegRosError
from seg_ros.core.paths import check_output_file, read_text_file
from seg_ros.core.staging import atomic_path
from seg_ros.models.modelfile import read_meta
from seg_ros.train.checkpoint import RUN_INDEPENDENT_SETTINGS, checkpoint_epoch
from seg_ros.train.config import TrainConfig, check_config
from seg_ros.train.frames import PooledFrames
from seg_ros.train.loop import train
from seg_ros.train.sequences import parse_grouping, sequence_folds

REPORT_FORMAT = 1


def fold_model_path(out: str | Path, fold: int) -> Path:
    """The model file of fold ``fold`` (from 1) of a run writing ``out``: ``<stem>.fold<fold>.safetensors``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.fold{fold}{p.suffix or '.safetensors'}")


def folds_report_path(out: str | Path) -> Path:
    """The cross-validation report of a run writing ``out``: ``<stem>.folds.json`` beside it."""
    p = Path(out)
    return p.with_name(f"{p.stem}.folds.json")


@dataclass
class FoldScore:
    """One fold: its held-out sequences, frame counts, best validation mIoU, per-class IoU (None: class absent
    from both prediction and ground truth), the epoch (from 1) that scored it and its model file's name."""

    fold: int
    held_out: list[str]
    train_frames: int
    val_frames: int
    miou: float
    iou: dict[str, float | None]
    best_epoch: int
    model: str


@dataclass
class FoldsReport:
    """Cross-validation by sequence: every fold's scores and their mean mIoU (``<out stem>.folds.json``)."""

    dataset: str
    splits: list[str]
    group_by: str
    folds: list[FoldScore]
    command: str
    mean_miou: float = field(init=False)
    format: int = REPORT_FORMAT

    def __post_init__(self) -> None:
        self.mean_miou = sum(f.miou for f in self.folds) / len(self.folds) if self.folds else math.nan

    def to_json(self) -> str:
        """The report as indented JSON text."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FoldsReport:
        """A report from :meth:`to_json` text; ConfigError if it is not one."""
        try:
            d = json.loads(text)
            if d.get("format") != REPORT_FORMAT:
                raise ValueError(f"format {d.get('format')!r}")
            return cls(d["dataset"], list(d["splits"]), d["group_by"], [FoldScore(**f) for f in d["folds"]],
                       d["command"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"not a cross-validation report ({e.__class__.__name__}: {e}).") from None

    def table(self) -> str:
        """The per-fold scores and the mean as an aligned text table."""
        rows = [("fold", "held out", "train", "val", "epoch", "mIoU")]
        rows += [(str(f.fold), ",".join(f.held_out), str(f.train_frames), str(f.val_frames), str(f.best_epoch),
                  f"{f.miou:.4f}") for f in self.folds]
        rows.append(("mean", "", "", "", "", f"{self.mean_miou:.4f}"))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        return "\n".join("  ".join(v.ljust(w) if c == 1 else v.rjust(w) for c, (v, w) in enumerate(zip(r, widths)))
                         for r in rows)

    def provenance(self, report_name: str) -> dict[str, Any]:
        """The summary a model file records of this cross-validation (its ``validation.cross_validation``):
        each fold's held-out sequences, mIoU, (train, validation) frame counts and scored epoch, the mean and
        the command that ran the folds."""
        return {"report": report_name, "group_by": self.group_by, "splits": self.splits,
                "held_out": [f.held_out for f in self.folds], "fold_mious": [f.miou for f in self.folds],
                "fold_frames": [[f.train_frames, f.val_frames] for f in self.folds],
                "fold_epochs": [f.best_epoch for f in self.folds],
                "mean_miou": round(self.mean_miou, 5), "command": self.command}


def read_folds_report(path: str | Path) -> FoldsReport:
    """The :class:`FoldsReport` in the file ``path``; ConfigError if it cannot be read or is not one."""
    try:
        text = read_text_file(path, "cross-validation report")
    except InputError as e:
        raise ConfigError(str(e)) from None
    try:
        return FoldsReport.from_json(text)
    except ConfigError as e:
        raise ConfigError(f"{path} is {e}") from None


def fold_configs(cfg: TrainConfig, k: int | None) -> list[TrainConfig]:
    """One training configuration per fold of ``cfg``'s pooled splits: ``k`` folds (None: one per sequence),
    each holding out its sequences (:func:`~seg_ros.train.sequences.sequence_folds`) and writing
    :func:`fold_model_path`."""
    if cfg.data is None:
        raise ConfigError("cross-validation by sequence needs a dataset folder (--data).")
    if cfg.val_sequences:
        raise ConfigError("give either --folds or --val-sequences, not both.")
    pool = PooledFrames(cfg.data, cfg.train_splits)
    held = sequence_folds(parse_grouping(cfg.group_by).groups(pool.stems), k)
    return [replace(cfg, out=str(fold_model_path(cfg.out, i)), val_sequences=tuple(h)) for i, h in enumerate(held, 1)]


def _comparable(recipe: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in recipe.items() if k not in RUN_INDEPENDENT_SETTINGS}))


def fold_finished(cfg: TrainConfig) -> bool:
    """True when the fold of ``cfg`` has its model file and its run finished every epoch (or left no checkpoint).

    Raises:
        ConfigError: the existing model file was trained with other settings.
    """
    out = Path(cfg.out)
    if not out.is_file():
        return False
    recorded = read_meta(out).provenance.get("recipe", {})
    mine = _comparable({k: v for k, v in asdict(cfg).items() if k not in ("out", "command", "data")})
    # settings newer than the recorded model take their defaults, as a resumed checkpoint does
    defaults = {k: v for k, v in asdict(TrainConfig(out=cfg.out)).items() if k in mine}
    theirs = _comparable({**defaults, **recorded})
    if theirs != mine:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise ConfigError(f"fold model {out} was trained with other settings ({', '.join(diff)}); "
                          "delete it or use another --out.")
    return not cfg.checkpoint.exists() or checkpoint_epoch(cfg.checkpoint) >= cfg.epochs


def fold_score(fold: int, cfg: TrainConfig) -> FoldScore:
    """The scores that fold ``fold``'s model file records (its best epoch on its held-out sequences)."""
    prov = read_meta(cfg.out).provenance
    frames = prov.get("validation", {}).get("frames", {})
    return FoldScore(fold, list(cfg.val_sequences), int(frames.get("train", 0)), int(frames.get("val", 0)),
                     float(prov["val_miou"]), dict(prov["val_iou"]), int(prov["epochs"]), Path(cfg.out).name)


def cross_validate(cfg: TrainConfig, k: int | None, *, resume: bool = False, progress: bool = True,
                   log: Callable[[str], None] = print) -> FoldsReport:
    """Train every fold of ``cfg`` (see :func:`fold_configs`), write and return the :class:`FoldsReport`.

    Finished folds are skipped with a line. An unfinished fold with a checkpoint continues only with
    ``resume``. Every fold's settings and outputs are checked before the first one trains.

    Raises:
        SegRosError: a setting, an output path or a fold's existing files do not fit this run.
    """
    configs = fold_configs(cfg, k)
    report_path = folds_report_path(cfg.out)
    check_output_file(report_path, "cross-validation report")
    finished = []
    for i, fcfg in enumerate(configs, 1):
        check_config(fcfg)
        done = fold_finished(fcfg)
        if not done and fcfg.checkpoint.exists() and not resume:
            raise SegRosError(f"checkpoint {fcfg.checkpoint} of fold {i} exists; pass --resume to continue it "
                              "or delete it.")
        finished.append(done)
    scores = []
    for i, (fcfg, done) in enumerate(zip(configs, finished), 1):
        held = ",".join(fcfg.val_sequences)
        if done:
            log(f"fold {i}/{len(configs)} (held out {held}): {fcfg.out} exists, skipped")
        else:
            log(f"fold {i}/{len(configs)}: training without {held}")
            train(fcfg, progress=progress, log=log)
        scores.append(fold_score(i, fcfg))
        log(f"fold {i}/{len(configs)} (held out {held}): val mIoU {scores[-1].miou:.4f}")
    pool_name = f"{Path(cfg.data or '').name}/{'+'.join(cfg.train_splits)}"
    report = FoldsReport(pool_name, list(cfg.train_splits), cfg.group_by, scores, cfg.command)
    with atomic_path(report_path) as tmp:
        tmp.write_text(report.to_json())
    return report
