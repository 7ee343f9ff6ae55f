"""``precision=auto``: the fastest precision whose labels stay within a tolerance of fp32's, else fp32.

The rule, for the backend chosen for fp32 on the device:

1. Candidates, fastest first, among the precisions that backend runs there: ``int8`` (only when
   ``runtime.calibration`` names frames to calibrate on), then ``bf16`` (openvino on a CPU with native
   bfloat16) or ``fp16`` (CUDA).
2. Check frames: up to :data:`CHECK_FRAMES` of the calibration frames, or, without calibration frames,
   :data:`CHECK_FRAMES` synthetic street scenes at the inference size.
3. A candidate is taken when its labels (the argmax at the network's resolution) equal fp32's on at least
   :data:`MIN_AGREEMENT` of the check frames' pixels; the first one taken wins. Otherwise fp32 runs.

Each candidate is built like any backend (compiled models and engines come from the cache on later starts),
so the check costs a few network runs per candidate at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from seg_ros.core.preprocess import FramePreprocessor
from seg_ros.runtime.base import Backend, ModelSource, RuntimeOptions

log = logging.getLogger("seg_ros.runtime")

MIN_AGREEMENT = 0.99
"""Share of the check frames' pixels whose label must equal fp32's for a faster precision to be taken."""
CHECK_FRAMES = 8
"""How many frames the check runs on."""
SPEED_ORDER = ("int8", "bf16", "fp16")
"""Candidate precisions, fastest first."""


def check_frames(input_size: tuple[int, int], options: RuntimeOptions) -> tuple[list[np.ndarray], str]:
    """(frames, what they are): calibration frames when given, else synthetic scenes at ``input_size`` (h, w)."""
    if options.calibration.strip():
        from seg_ros.runtime.calibration import read_calibration_frames

        frames = read_calibration_frames(options.calibration, min(CHECK_FRAMES, options.calibration_frames),
                                         options.calibration_topic)
        return frames, f"{len(frames)} calibration frames"
    from seg_ros.synthetic import generate_scene

    return [generate_scene(seed, input_size).image for seed in range(CHECK_FRAMES)], \
        f"{CHECK_FRAMES} synthetic scenes"


def agreement(a: Backend, b: Backend, inputs: list[torch.Tensor]) -> float:
    """Share of pixels whose label (argmax over classes, or the labels themselves) ``a`` and ``b`` agree on."""
    same = total = 0
    for x in inputs:
        la, lb = (_labels(be, be.infer(x.to(be.device))) for be in (a, b))
        same += int((la == lb).sum())
        total += la.numel()
    return same / max(total, 1)


def _labels(backend: Backend, out: torch.Tensor) -> torch.Tensor:
    return out.cpu() if backend.output_kind == "labels" else out.float().argmax(1).cpu()


def choose_precision(fp32: Backend, source: ModelSource, build: Callable[[str], Backend],
                     options: RuntimeOptions) -> Backend:
    """The backend to run: a faster precision of ``fp32``'s backend that passes the check (module doc), else
    ``fp32`` itself. ``build(precision)`` makes the same backend at another precision."""
    candidates = [p for p in SPEED_ORDER if p in fp32.precisions and (p != "int8" or options.calibration.strip())
                  and fp32.refusal(fp32.device, p, source.is_onnx) is None]
    if not candidates:
        fp32.note = _joined(fp32.note, "precision auto: fp32, no faster precision here")
        return fp32
    frames, what = check_frames(source.input_size, options)
    meta = source.meta
    pre = FramePreprocessor(meta.mean, meta.std, "cpu", channels_last=fp32.channels_last)
    inputs = [pre(f[None], source.input_size) for f in frames]
    for precision in candidates:
        candidate = build(precision)
        if candidate.precision != precision:  # e.g. bf16 asked, the CPU runs fp32
            continue
        share = agreement(fp32, candidate, inputs)
        verdict = f"{precision}: labels equal fp32's on {100 * share:.2f}% of the pixels of {what}"
        if share >= MIN_AGREEMENT:
            log.info("precision auto chose %s", verdict)
            candidate.note = _joined(candidate.note, f"precision auto: {verdict}")
            return candidate
        log.info("precision auto passed over %s (below %.0f%%)", verdict, 100 * MIN_AGREEMENT)
    fp32.note = _joined(fp32.note, "precision auto: fp32 (no faster precision kept fp32's labels)")
    return fp32


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
