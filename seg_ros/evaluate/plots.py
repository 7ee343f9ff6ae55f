"""PNG charts for evaluation reports (matplotlib, Agg canvas: no display, no global pyplot state).

Each function writes one PNG and returns its path: per-class IoU bars, a
row-normalised confusion-matrix heat map and a latency histogram.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(str(path), dpi=100)
    return Path(path)


def plot_iou(names: Sequence[str], iou: Sequence[float | None], path: str | os.PathLike, title: str = "") -> Path:
    """Horizontal bars of per-class IoU (0..1), the mIoU as a dashed line; classes without an IoU show "n/a"."""
    vals = np.array([np.nan if v is None else float(v) for v in iou], np.float64)
    n = len(names)
    fig = Figure(figsize=(7.0, 1.2 + 0.32 * n), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    ax.barh(y, np.nan_to_num(vals), color="#4477aa")
    for yi, v in zip(y, vals):
        ax.text(min(v, 0.88) + 0.01 if np.isfinite(v) else 0.01, yi, f"{v:.3f}" if np.isfinite(v) else "n/a",
                va="center", fontsize=8)
    if np.isfinite(vals).any():
        miou = float(np.nanmean(vals))
        ax.axvline(miou, color="#cc3311", linestyle="--", linewidth=1)
        ax.text(miou, n - 0.4, f" mIoU {miou:.3f}", color="#cc3311", fontsize=8, va="bottom")
    ax.set_yticks(y, list(names), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, n + 0.2)
    ax.set_xlabel("IoU")
    ax.set_title(title or "Per-class IoU", fontsize=10)
    return _save(fig, path)


def plot_confusion(names: Sequence[str], matrix: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """Heat map of the confusion matrix (rows: ground truth, columns: prediction), each row normalised to 1."""
    m = np.asarray(matrix, np.float64)
    rows = m.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, m / rows, np.nan)
    n = len(names)
    side = max(4.5, 0.42 * n + 2.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the ground-truth class")
    if n <= 25:
        for g in range(n):
            for p in range(n):
                v = norm[g, p]
                if np.isfinite(v) and v >= 0.005:
                    ax.text(p, g, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if v > 0.6 else "black")
    ax.set_xticks(range(n), list(names), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), list(names), fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title or "Confusion matrix (rows normalised)", fontsize=10)
    return _save(fig, path)


def plot_latency(stage_ms: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> Path:
    """Histograms of per-frame milliseconds: one panel per stage (``total`` first), p50 and p99 marked."""
    stages = sorted(stage_ms, key=lambda s: (s != "total", list(stage_ms).index(s)))
    cols = 2 if len(stages) > 1 else 1
    rows = math.ceil(len(stages) / cols)
    fig = Figure(figsize=(5.0 * cols, 2.4 * rows + 0.6), layout="constrained")
    for i, s in enumerate(stages):
        ax = fig.add_subplot(rows, cols, i + 1)
        v = np.asarray(stage_ms[s], np.float64)
        if v.size:
            ax.hist(v, bins=min(50, max(5, v.size // 2)), color="#228833" if s == "total" else "#66ccee")
            for q, style in ((50, "-"), (99, "--")):
                x = float(np.percentile(v, q))
                ax.axvline(x, color="#cc3311", linestyle=style, linewidth=1, label=f"p{q} {x:.1f} ms")
            ax.legend(fontsize=7)
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("ms per frame", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or "Latency per stage", fontsize=10)
    return _save(fig, path)
