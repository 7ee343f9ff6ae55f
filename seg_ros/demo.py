"""``seg-ros demo``: segment a synthetic drive with the shipped model and score it.

Writes to the output folder: ``overlay.mp4`` (the drive with labels blended
in), ``frames/NNN.png`` (input | prediction | ground truth, side by side, for
a few frames), ``summary.json`` and ``summary.md`` (mIoU against the generated
ground truth, per-class IoU, fps and milliseconds per stage).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seg_ros.datasets import write_image
from seg_ros.errors import ConfigError
from seg_ros.labels import CAMVID
from seg_ros.metrics import ConfusionMatrix
from seg_ros.modelfile import DEFAULT_MODEL
from seg_ros.outputs import VideoWriter, staged_output
from seg_ros.pipeline import STAGES, Segmenter
from seg_ros.synthetic import generate_drive


def run_demo(out: str | os.PathLike = "demo_out", frames: int = 60, size: tuple[int, int] = (360, 640),
             model: str = DEFAULT_MODEL, device: str = "auto", seed: int = 2024, progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo; returns the summary that is also written to ``summary.json``."""
    if frames < 1:
        raise ConfigError(f"the demo needs at least one frame, not {frames}.")
    seg = Segmenter(model, device=device)
    if seg.label_set.names != CAMVID.names:
        raise ConfigError(f"the demo scores against CamVid-11 synthetic ground truth, but model {model!r} "
                          f"predicts the {seg.label_set.name!r} label set.")
    log(f"segmenting a {frames}-frame synthetic drive ({size[0]}x{size[1]}) with {seg.describe()}")
    cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    stage_ms: dict[str, list[float]] = {s: [] for s in (*STAGES, "total")}
    keep_every = max(1, frames // 6)
    with staged_output(out) as stage:
        with VideoWriter(stage.path("overlay.mp4"), 10.0, size) as video:
            drive = generate_drive(seed, frames, size)
            for i, scene in enumerate(tqdm(drive, total=frames, desc="demo", disable=not progress)):
                r = seg.segment(scene.image)
                cm.update(r.labels, scene.labels)
                for k in stage_ms:
                    stage_ms[k].append(r.timings[k])
                video.write(r.overlay)
                if i % keep_every == 0:
                    panel = np.concatenate([scene.image, r.overlay, CAMVID.colorize(scene.labels)], axis=1)
                    write_image(stage.path(f"frames/{i:03d}.png"), panel)
        summary = _summary(seg, cm, stage_ms, frames, size)
        stage.path("summary.json").write_text(json.dumps(summary, indent=2))
        stage.path("summary.md").write_text(_markdown(summary))
    log(_markdown(summary))
    log(f"wrote {Path(out) / 'overlay.mp4'}, {Path(out) / 'frames'}/ (input | overlay | ground truth) "
        f"and {Path(out) / 'summary.md'}")
    return summary


def _summary(seg: Segmenter, cm: ConfusionMatrix, stage_ms: dict[str, list[float]], frames: int,
             size: tuple[int, int]) -> dict:
    med = {k: round(float(np.median(v)), 2) for k, v in stage_ms.items()}
    return {
        "model": seg.describe(),
        "model_provenance": seg.meta.provenance,
        "frames": frames,
        "frame_size": f"{size[0]}x{size[1]}",
        "miou": round(cm.miou(), 4),
        "pixel_accuracy": round(cm.pixel_accuracy(), 4),
        "iou": {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(CAMVID.names, cm.iou())},
        "fps": round(1000.0 / med["total"], 1),
        "ms_per_stage": med,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "note": "synthetic scenes: a smoke test of the pipeline, not a measure of accuracy on real data",
    }


def _markdown(s: dict) -> str:
    lines = [
        "# seg_ros demo",
        "",
        f"Model: {s['model']}",
        f"Frames: {s['frames']} synthetic frames at {s['frame_size']} ({s['note']}).",
        "",
        f"**mIoU {s['miou']:.3f}**, pixel accuracy {s['pixel_accuracy']:.3f}, **{s['fps']} fps** end to end.",
        "",
        "| class | IoU |",
        "|---|---|",
        *[f"| {n} | {'n/a' if v is None else f'{v:.3f}'} |" for n, v in s["iou"].items()],
        "",
        "| stage | ms (median) |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in s["ms_per_stage"].items()],
    ]
    return "\n".join(lines) + "\n"
