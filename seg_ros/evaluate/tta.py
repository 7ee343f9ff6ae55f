"""Test-time augmentation (TTA): an offline score and labelling aid, never the robot's pipeline.

Per frame (H, W, 3) uint8 RGB, for every scale s of :attr:`TTAConfig.scales` and, with ``flip``, for the frame
and its horizontal mirror::

    view: frame resized to the Segmenter's inference size at s × its resolution (keep-aspect as configured)
      → normalise → backend.infer → logits (1, C, h_s, w_s)
      → bilinear upsample to (H, W) → softmax over classes → mirrored back for a flipped view
    mean of the views' probabilities (C, H, W) → argmax: labels; its maximum: confidence

The logits are upsampled before the softmax, as the Segmenter does, so one view at scale 1.0 without flip gives
exactly the Segmenter's labels and confidence. The dense CRF is not part of TTA: a Segmenter with the CRF on is
refused. Only the Segmenter's public interface is used (its preprocessor, backend and resolution), so the views
run on whatever backend the Segmenter picked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.preprocess import inference_size
from seg_ros.pipeline import OUTPUTS, Segmenter, SegResult, render

DEFAULT_SCALES = (0.75, 1.0, 1.25)
"""Scales of the inference resolution that ``--tta`` runs by default."""
SCALE_RANGE = (0.25, 4.0)
"""Smallest and largest scale accepted."""


@dataclass(frozen=True)
class TTAConfig:
    """Which views TTA averages: the inference resolution times each of ``scales``, each also mirrored with
    ``flip``. Raises ConfigError for no scales, a repeated one or one outside :data:`SCALE_RANGE`."""

    scales: tuple[float, ...] = DEFAULT_SCALES
    flip: bool = True

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in self.scales)
        object.__setattr__(self, "scales", scales)
        if not scales:
            raise ConfigError("test-time augmentation needs at least one scale.")
        lo, hi = SCALE_RANGE
        bad = [s for s in scales if not (math.isfinite(s) and lo <= s <= hi)]
        if bad:
            raise ConfigError(f"test-time augmentation scales must lie in {lo:g}..{hi:g}, not {bad[0]:g}.")
        if len(set(scales)) < len(scales):
            raise ConfigError(f"test-time augmentation scale {next(s for s in scales if scales.count(s) > 1):g} "
                              "is given more than once.")

    @property
    def views(self) -> int:
        """Network runs per frame."""
        return len(self.scales) * (2 if self.flip else 1)

    def describe(self) -> str:
        """E.g. ``scales 0.75, 1, 1.25 with horizontal flip (6 network runs per frame)``."""
        flip = " with horizontal flip" if self.flip else ""
        return f"scales {', '.join(f'{s:g}' for s in self.scales)}{flip} ({self.views} network runs per frame)"

    def to_json(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "flip": self.flip}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TTAConfig:
        return cls(scales=tuple(d["scales"]), flip=bool(d["flip"]))


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0.75,1,1.25"`` → (0.75, 1.0, 1.25); ConfigError for anything that is not comma-separated numbers."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"test-time augmentation scales are comma-separated numbers such as 0.75,1,1.25, not "
                          f"{text!r}.") from None


class TTASegmenter:
    """Segments frames as the mean of several views through ``segmenter``'s backend (see the module docstring).

    Raises ConfigError when ``segmenter`` cannot take part: a model that outputs class ids (no probabilities to
    average), the dense CRF on, or scales other than 1.0 with an ONNX file fixed to one input size.
    """

    def __init__(self, segmenter: Segmenter, config: TTAConfig):
        self.segmenter = segmenter
        self.config = config
        name = segmenter.model_path.name
        if segmenter.backend.output_kind != "logits":
            raise ConfigError(f"test-time augmentation averages class probabilities, but model {name} outputs "
                              "class ids; evaluate it without --tta or export it without the argmax.")
        if segmenter.crf is not None:
            raise ConfigError("test-time augmentation averages the network's probabilities without the dense CRF; "
                              "turn it off (--set crf.enabled=false) or drop --tta.")
        if segmenter.model_path.suffix.lower() == ".onnx" and any(s != 1.0 for s in config.scales):
            from seg_ros.runtime.onnx_model import load_onnx_model

            fixed = load_onnx_model(segmenter.model_path).fixed_size
            if fixed is not None:
                raise ConfigError(f"ONNX model {name} takes only {fixed[0]}x{fixed[1]} inputs, so test-time "
                                  "augmentation can use only scale 1 with it (--tta-scales 1).")
        self._on_cuda = segmenter.device.type == "cuda"

    def describe(self) -> str:
        return f"test-time augmentation: {self.config.describe()}"

    def view_size(self, height: int, width: int, scale: float) -> tuple[int, int]:
        """The (h, w) a (``height``, ``width``) frame is resized to for the view at ``scale``: the Segmenter's
        inference size for its resolution times ``scale`` (exactly :meth:`Segmenter.inference_size` at 1.0)."""
        seg = self.segmenter
        rh, rw = seg.resolution
        return inference_size(height, width, (max(1, round(rh * scale)), max(1, round(rw * scale))), seg.keep_aspect)

    def probabilities(self, frame: np.ndarray) -> torch.Tensor:
        """(C, H, W) float32 class probabilities of one (H, W, 3) uint8 RGB frame, the mean over the views, on the
        Segmenter's device; every pixel's probabilities sum to 1."""
        return self._probabilities(_checked(frame), {})

    def segment(self, frame: np.ndarray, outputs: Iterable[str] = OUTPUTS) -> SegResult:
        """The :class:`SegResult` of one (H, W, 3) uint8 RGB frame from the mean of the views' probabilities.

        ``timings`` (ms, per frame) add up every view: ``preprocess`` (resize, normalise), ``infer`` (the
        network runs), ``postprocess`` (upsample, softmax, mean, argmax); ``crf`` is 0.
        """
        wanted = frozenset(outputs) | {"labels"}
        if wanted - OUTPUTS:
            raise ConfigError(f"unknown outputs {sorted(wanted - OUTPUTS)}; choose from {sorted(OUTPUTS)}.")
        frame = _checked(frame)
        timings = {"preprocess": 0.0, "infer": 0.0, "crf": 0.0, "postprocess": 0.0}
        probs = self._probabilities(frame, timings)
        t0 = self._clock()
        best, labels_t = probs.max(dim=0)
        labels = labels_t.to(torch.uint8).cpu().numpy()
        confidence = best.cpu().numpy() if "confidence" in wanted else None
        t1 = self._clock()
        timings["postprocess"] += (t1 - t0) * 1e3
        color = overlay = None
        if "color" in wanted or "overlay" in wanted:
            seg = self.segmenter
            colors, blends = render(frame[None], labels[None], seg.label_set.palette, seg.overlay_alpha,
                                    color="color" in wanted, overlay="overlay" in wanted)
            color = None if colors is None else colors[0]
            overlay = None if blends is None else blends[0]
        timings["render"] = (self._clock() - t1) * 1e3
        timings["total"] = sum(timings.values())
        return SegResult(labels=labels, color=color, overlay=overlay, confidence=confidence, timings=timings)

    def _probabilities(self, frame: np.ndarray, timings: dict[str, float]) -> torch.Tensor:
        seg = self.segmenter
        h, w = frame.shape[:2]
        mirrored = np.ascontiguousarray(frame[:, ::-1]) if self.config.flip else None
        total: torch.Tensor | None = None
        for scale in self.config.scales:
            size = self.view_size(h, w, scale)
            for view, flipped in ((frame, False), (mirrored, True)):
                if view is None:
                    continue
                t0 = self._clock()
                x = seg.preprocessor(seg.preprocessor.upload(view[None]), size)
                t1 = self._clock()
                logits = seg.backend.infer(x)
                t2 = self._clock()
                probs = _upsampled_softmax(logits, (h, w))
                if flipped:
                    probs = probs.flip(-1)
                total = probs if total is None else total.add_(probs)
                t3 = self._clock()
                _add(timings, preprocess=t1 - t0, infer=t2 - t1, postprocess=t3 - t2)
        assert total is not None  # TTAConfig holds at least one scale
        t0 = self._clock()
        total.div_(self.config.views)
        _add(timings, postprocess=self._clock() - t0)
        return total

    def _clock(self) -> float:
        if self._on_cuda:
            torch.cuda.synchronize(self.segmenter.device)
        return time.perf_counter()


def _upsampled_softmax(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) float32 softmax of (1, C, h, w) logits bilinearly upsampled to ``size`` (H, W)."""
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return torch.softmax(logits[0], dim=0)


def _add(timings: dict[str, float], **seconds: float) -> None:
    for stage, s in seconds.items():
        if stage in timings:
            timings[stage] += s * 1e3


def _checked(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 \
            or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"a frame must be an H×W×3 uint8 RGB array, not "
                         f"{getattr(frame, 'shape', type(frame).__name__)} {getattr(frame, 'dtype', '')}.")
    return frame


__all__ = ["DEFAULT_SCALES", "SCALE_RANGE", "TTAConfig", "TTASegmenter", "parse_scales"]
