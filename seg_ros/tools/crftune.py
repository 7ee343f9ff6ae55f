"""``seg-ros tune-crf``: cross-validate the dense CRF's kernel settings on labelled frames.

DeepLab chose its CRF settings (w1, θα, θβ; w2 and θγ fixed) by a grid search on a
held-out part of PASCAL VOC val. Settings tuned on one dataset do not carry to another:
on CamVid's thin poles and signs DeepLab's wide appearance kernel removes more than it
repairs. This module runs the same search on any labelled frames: every grid point is
scored on the even-numbered frames (the tuning half), and the winner is then scored on
the odd-numbered frames, which the search never saw, next to the untuned base settings,
so the reported gain is not the search's own optimism.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from seg_ros.core.errors import ConfigError
from seg_ros.core.staging import atomic_path
from seg_ros.crf import CRFConfig
from seg_ros.pipeline import Segmenter
from seg_ros.tools.crfaccuracy import VariantScore, crf_accuracy

TUNABLE = ("iterations", "w1", "theta_alpha", "theta_beta", "w2", "theta_gamma")
"""CRF settings a grid may vary."""


def parse_grid(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["w1=1,2,4", "theta_beta=3,5"]`` → ``{"w1": [1, 2, 4], "theta_beta": [3, 5]}`` (values checked later)."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().removeprefix("crf.")
        if not sep or name not in TUNABLE:
            raise ConfigError(f"a grid entry is NAME=V1,V2,... with NAME one of {', '.join(TUNABLE)}; got {spec!r}.")
        if name in grid:
            raise ConfigError(f"{name} appears twice in the grid.")
        try:
            parsed = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"grid values of {name} must be numbers, got {values!r}.") from None
        if not parsed:
            raise ConfigError(f"grid entry {spec!r} lists no values.")
        grid[name] = parsed
    return grid


def grid_configs(base: CRFConfig, grid: dict[str, list[float]]) -> list[CRFConfig]:
    """Every combination of the grid's values applied to ``base`` (each one validated)."""
    names = list(grid)
    configs = []
    for values in itertools.product(*(grid[n] for n in names)):
        changes: dict[str, Any] = dict(zip(names, values))
        if "iterations" in changes:
            if changes["iterations"] != int(changes["iterations"]):
                raise ConfigError(f"crf.iterations must be an integer, not {changes['iterations']!r}.")
            changes["iterations"] = int(changes["iterations"])
        configs.append(replace(base, **changes))
    return configs


@dataclass
class GridScore:
    """One grid point scored on the tuning half."""

    name: str
    """The grid's settings, e.g. ``w1=2 theta_alpha=40``."""
    settings: dict[str, Any]
    """Every tunable CRF setting (and ``reference_size``) of this point."""
    miou: float
    """mIoU in percent."""
    gain: float
    """mIoU minus the network's own, in points."""


@dataclass
class TuneResult:
    """:func:`tune_crf`'s result; ``model``, ``data`` and ``command`` describe the run."""

    KIND: ClassVar[str] = "crf_tuning"

    grid: list[GridScore]
    """Every grid point, best first."""
    best: dict[str, Any]
    """The winner's settings."""
    tuning: dict[str, VariantScore]
    """``none``, ``base`` and ``best`` on the tuning half."""
    held_out: dict[str, VariantScore]
    """The same on the held-out half."""
    frames: dict[str, int]
    """``tuning`` and ``held_out`` frame counts."""
    model: str = ""
    data: str = ""
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"grid": [asdict(g) for g in self.grid], "best": self.best,
               "tuning": {n: v.to_json() for n, v in self.tuning.items()},
               "held_out": {n: v.to_json() for n, v in self.held_out.items()}, "frames": self.frames}
        out.update({k: v for k, v in (("model", self.model), ("data", self.data), ("command", self.command)) if v})
        return out


def label(cfg: CRFConfig, names: Sequence[str]) -> str:
    """A short name of ``cfg`` by the grid's settings, e.g. ``w1=2 theta_alpha=40``."""
    return " ".join(f"{n}={getattr(cfg, n):g}" for n in names)


def tune_crf(seg: Segmenter, frames: Sequence[tuple[np.ndarray, np.ndarray]], base: CRFConfig,
             grid: dict[str, list[float]], progress: bool = True) -> TuneResult:
    """Grid-search the CRF on the even frames, then score the winner on the odd ones.

    Args:
        seg: the network (its own CRF setting is not used).
        frames: (image (H, W, 3) uint8 RGB, labels (H, W) uint8) pairs, indexable; at least 2.
        base: the settings the grid varies; also scored as ``base`` on both halves.
        grid: setting name → values (see :func:`parse_grid`).

    Returns:
        the grid ranked on the tuning half, the winner, and none / base / best scored on both halves.
    """
    if len(frames) < 2:
        raise ConfigError("tuning the CRF needs at least 2 labelled frames (one to tune on, one held out).")
    configs = grid_configs(base, grid)
    names = list(grid)
    variants = {label(c, names): c for c in configs}
    tuning = [i for i in range(len(frames)) if i % 2 == 0]
    held_out = [i for i in range(len(frames)) if i % 2 == 1]

    def pairs(indices: list[int], desc: str):
        return (frames[i] for i in tqdm(indices, desc=desc, disable=not progress, leave=False))

    searched = crf_accuracy(seg, pairs(tuning, f"grid of {len(variants)} on {len(tuning)} frames"),
                            {"base": base, **variants}, reference=None)
    rows = [GridScore(n, _settings(variants[n]), r.miou, r.gain) for n, r in searched.variants.items() if n in variants]
    rows.sort(key=lambda r: -r.miou)
    best_cfg = variants[rows[0].name]
    compare = {"base": base, "best": best_cfg}
    tuning_summary = {n: searched.variants[k] for n, k in (("none", "none"), ("base", "base"), ("best", rows[0].name))}
    held = crf_accuracy(seg, pairs(held_out, f"held-out {len(held_out)} frames"), compare, reference=None)
    return TuneResult(grid=rows, best=_settings(best_cfg), tuning=tuning_summary, held_out=held.variants,
                      frames={"tuning": len(tuning), "held_out": len(held_out)})


def _settings(cfg: CRFConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in TUNABLE or f.name == "reference_size"}


def format_report(result: TuneResult, top: int = 10) -> str:
    """The best ``top`` grid points and the held-out comparison, as markdown tables."""
    lines = [f"grid on {result.frames['tuning']} tuning frames (best {min(top, len(result.grid))} "
             f"of {len(result.grid)}):", "", "| settings | mIoU % | gain (points) |", "|---|---|---|"]
    for r in result.grid[:top]:
        lines.append(f"| {r.name} | {r.miou:.2f} | {r.gain:+.2f} |")
    lines += ["", "| variant | tuning frames mIoU % | held-out frames mIoU % | held-out gain (points) |",
              "|---|---|---|---|"]
    for name in ("none", "base", "best"):
        t, h = result.tuning[name], result.held_out[name]
        lines.append(f"| {name} | {t.miou:.2f} | {h.miou:.2f} | {h.gain:+.2f} |")
    lines.append("")
    lines.append("best: " + ", ".join(f"{k}={v:g}" for k, v in result.best.items()))
    return "\n".join(lines)


def preset_yaml(model: str, resolution: str | None, cfg: CRFConfig, method: str, comment: str) -> str:
    """A node parameter file (``/**: ros__parameters:``) that runs ``model`` with the CRF at ``cfg``."""
    crf = {k: v for k, v in asdict(cfg).items() if k in TUNABLE or k == "reference_size"}
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
    lines += ["/**:", "  ros__parameters:", f"    model: {model}"]
    if resolution:
        lines.append(f'    resolution: "{resolution}"')
    lines += ["    crf:", "      enabled: true", f"      method: {method}"]
    lines += [f"      {k}: {v!r}" for k, v in crf.items()]
    return "\n".join(lines) + "\n"


def write_preset(path: str | os.PathLike, result: TuneResult, base: CRFConfig, resolution: str | None,
                 method: str, dataset: str, model: str) -> Path:
    """Write the node parameter file that runs ``model`` with ``base`` updated by the winner, atomically.

    Its header says how the settings were found: the data set's name, the frame counts, the held-out mIoU
    without and with the CRF, and ``result.command``. ``method`` is the file's ``crf.method``.
    """
    held = result.held_out
    comment = (f"Dense CRF settings cross-validated with `seg-ros tune-crf` on {dataset}\n"
               f"(grid searched on {result.frames['tuning']} frames, scored on {result.frames['held_out']} "
               f"held-out frames: mIoU {held['none'].miou:.2f} without CRF, {held['best'].miou:.2f} "
               f"with these settings).\n{result.command}")
    text = preset_yaml(model, resolution, replace(base, **result.best), method, comment)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


__all__ = ["TUNABLE", "GridScore", "TuneResult", "format_report", "grid_configs", "parse_grid", "preset_yaml",
           "tune_crf", "write_preset"]
