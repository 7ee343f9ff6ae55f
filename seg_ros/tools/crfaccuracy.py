"""What the dense CRF is worth in mIoU: a model's scores without it and with each CRF variant, on the same logits."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.crf import CRFConfig, DenseCRF
from seg_ros.pipeline import Segmenter
from seg_ros.tools.reports import json_fields


@dataclass
class VariantScore:
    """The scores of one variant (``none`` = the network alone) over a set of labelled frames."""

    miou: float
    """mIoU in percent."""
    gain: float
    """mIoU minus the network's own, in points."""
    iou: list[float | None]
    """Per-class IoU (0..1); None for a class absent from both prediction and ground truth."""
    ms_per_frame: float | None = None
    """The CRF's mean milliseconds per frame; None for ``none``."""
    agreement_pct: float | None = None
    """Pixels whose label equals the reference variant's, percent; None without a reference."""

    def to_json(self) -> dict[str, Any]:
        return json_fields(self, omit_if_none=("ms_per_frame", "agreement_pct"))


@dataclass
class CRFAccuracy:
    """:func:`crf_accuracy`'s result; ``model``, ``data``, ``crf`` and ``grid_step`` describe the run."""

    frames: int
    variants: dict[str, VariantScore] = field(default_factory=dict)
    model: str | None = None
    data: str | None = None
    crf: str | None = None
    """Where the CRF settings came from."""
    grid_step: int | None = None
    """The fast CRF's automatic grid step at the frames' size."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frames": self.frames, "variants": {n: v.to_json() for n, v in self.variants.items()}}
        out.update({k: v for k, v in (("model", self.model), ("data", self.data), ("crf", self.crf),
                                      ("grid_step", self.grid_step)) if v is not None})
        return out


def network_logits(seg: Segmenter, frame: np.ndarray) -> torch.Tensor:
    """(1, C, H, W) logits of ``seg``'s network for one (H, W, 3) frame, upsampled to the frame's size."""
    h, w = frame.shape[:2]
    x = seg.network_input(frame[None])
    with torch.inference_mode():
        logits = seg.backend.infer(x)
    if logits.shape[-2:] != (h, w):
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.float()


def crf_accuracy(seg: Segmenter, frames: Iterable[tuple[np.ndarray, np.ndarray]], variants: dict[str, CRFConfig],
                 reference: str | None = "exact") -> CRFAccuracy:
    """mIoU of ``seg`` without the CRF and with each CRF variant, on (image, labels) pairs.

    Args:
        seg: the network (its own CRF setting is not used).
        frames: (H, W, 3) uint8 RGB images with (H, W) uint8 ground truth (the label set's ignore id skipped).
        variants: name → CRF settings, run on the same logits.
        reference: the variant that the others' labels (and the network's own) are compared with
            (``agreement_pct``), if present.

    Returns:
        the scores per variant, ``none`` (the network alone) first.
    """
    ls = seg.label_set
    stages = {name: DenseCRF(cfg, seg.device) for name, cfg in variants.items()}
    cms = {name: ConfusionMatrix(ls.num_classes, ls.ignore_id) for name in ("none", *stages)}
    ms: dict[str, list[float]] = {name: [] for name in stages}
    agree: dict[str, list[float]] = {name: [] for name in ("none", *stages)}
    n = 0
    for image, labels in frames:
        logits = network_logits(seg, image)
        pred = {"none": logits.argmax(dim=1)[0]}
        src = torch.from_numpy(image[None]).to(seg.device)
        for name, crf in stages.items():
            t0 = time.perf_counter()
            q = crf(logits, src)
            if seg.device.type == "cuda":
                torch.cuda.synchronize(seg.device)
            ms[name].append((time.perf_counter() - t0) * 1000.0)
            pred[name] = q.argmax(dim=1)[0]
        for name, p in pred.items():
            cms[name].update(p.to(torch.uint8).cpu().numpy(), labels)
        if reference in pred:
            for name in agree:
                agree[name].append(float((pred[name] == pred[reference]).float().mean()))
        n += 1
    base = cms["none"].miou() * 100.0
    out = CRFAccuracy(frames=n)
    for name, cm in cms.items():
        miou = cm.miou() * 100.0
        out.variants[name] = VariantScore(
            miou=miou, gain=miou - base, iou=[None if np.isnan(v) else float(v) for v in cm.iou()],
            ms_per_frame=(float(np.mean(ms[name])) if ms[name] else 0.0) if name in stages else None,
            agreement_pct=100.0 * float(np.mean(agree[name])) if agree[name] else None)
    return out


def format_accuracy_table(result: CRFAccuracy, title: str = "") -> str:
    """Markdown table of :func:`crf_accuracy`'s result."""
    lines = [f"| {title or 'variant'} | mIoU % | gain (points) | labels = exact | CRF ms/frame |",
             "|---|---|---|---|---|"]
    for name, r in result.variants.items():
        ag = f"{r.agreement_pct:.2f}%" if r.agreement_pct is not None else ""
        ms = f"{r.ms_per_frame:.0f}" if r.ms_per_frame is not None else "0"
        lines.append(f"| {name} | {r.miou:.2f} | {r.gain:+.2f} | {ag} | {ms} |")
    return "\n".join(lines)


__all__ = ["CRFAccuracy", "VariantScore", "crf_accuracy", "format_accuracy_table", "network_logits"]
