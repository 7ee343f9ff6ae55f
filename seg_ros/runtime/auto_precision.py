"""``precision=auto``: the fastest precision whose labels stay within a tolerance of fp32's, else fp32.

The rule, for the backend chosen for fp32 on the device:

1. Candidates, fastest first, among the precisions that backend runs there: ``int8`` (only when
   ``runtime.calibration`` names frames to calibrate on), then ``bf16`` (openvino on a CPU with native
   bfloat16) or ``fp16`` (CUDA).
2. Check frames: up to :func:`check_count` of the calibration frames, or, without calibration frames, that
   many synthetic street scenes at the inference size (8 up to 360x640, fewer above, at least 2).
3. A candidate is taken when its labels (the argmax at the network's resolution) equal fp32's on at least
   :data:`MIN_AGREEMENT` of the check frames' pixels **and** its fastest network run on them is at least
   :data:`MIN_SPEEDUP` times shorter than fp32's (a CPU that emulates bf16, say, gains nothing); the first one
   taken wins. Otherwise fp32 runs.

Each candidate is built like any backend (compiled models and engines come from the cache on later starts),
so the check costs a few network runs per candidate at start-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from seg_ros.core.preprocess import FramePreprocessor
from seg_ros.runtime.base import Backend, ModelSource, RuntimeOptions

log = logging.getLogger("seg_ros.runtime")

MIN_AGREEMENT = 0.99
"""Share of the check frames' pixels whose label must equal fp32's for a faster precision to be taken."""
MIN_SPEEDUP = 1.1
"""How many times faster than fp32 (fastest run over the check frames) a candidate must run to be taken."""
CHECK_FRAMES = 8
"""How many frames the check runs on (at most)."""
CHECK_PIXELS = CHECK_FRAMES * 360 * 640
"""Pixels of all check frames together at most: 8 frames at 360x640, 2 at 1024x2048 and above."""
SPEED_ORDER = ("int8", "bf16", "fp16")
"""Candidate precisions, fastest first."""


def check_count(input_size: tuple[int, int]) -> int:
    """How many check frames at ``input_size`` (h, w): :data:`CHECK_FRAMES`, fewer (at least 2) where they would
    hold more than :data:`CHECK_PIXELS`, so the start-up check costs about the same at any resolution."""
    h, w = input_size
    return max(2, min(CHECK_FRAMES, CHECK_PIXELS // max(h * w, 1)))


def check_frames(input_size: tuple[int, int], options: RuntimeOptions) -> tuple[list[np.ndarray], str]:
    """(frames, what they are): calibration frames when given, else synthetic scenes at ``input_size`` (h, w);
    :func:`check_count` of them."""
    count = check_count(input_size)
    if options.calibration.strip():
        from seg_ros.runtime.calibration import read_calibration_frames

        frames = read_calibration_frames(options.calibration, min(count, options.calibration_frames),
                                         options.calibration_topic)
        return frames, f"{len(frames)} calibration frames"
    from seg_ros.synthetic import generate_scene

    return [generate_scene(seed, input_size).image for seed in range(count)], f"{count} synthetic scenes"


@dataclass(frozen=True)
class Comparison:
    """A candidate against fp32 on the check frames: ``agreement``, the share of pixels (0..1) with equal labels;
    ``speedup``, fp32's fastest time per frame over the candidate's."""

    agreement: float
    speedup: float


def compare(fp32: Backend, candidate: Backend, inputs: list[torch.Tensor]) -> Comparison:
    """Labels (argmax over classes, or the labels themselves) and times of both backends on ``inputs``; the
    first input warms them up and is not timed (unless it is the only one)."""
    same = total = 0
    times: tuple[list[float], list[float]] = ([], [])
    for i, x in enumerate(inputs):
        labels = []
        for be, spent in zip((fp32, candidate), times):
            x_dev = x.to(be.device)
            t0 = time.perf_counter()
            out = be.infer(x_dev)
            if be.device.type == "cuda":
                torch.cuda.synchronize(be.device)
            if i or len(inputs) == 1:
                spent.append(time.perf_counter() - t0)
            labels.append(_labels(be, out))
        same += int((labels[0] == labels[1]).sum())
        total += labels[0].numel()
    # The fastest run of each: what the hardware can do, least disturbed by other load on the machine.
    return Comparison(same / max(total, 1), float(min(times[0]) / max(min(times[1]), 1e-9)))


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
        c = compare(fp32, candidate, inputs)
        verdict = (f"{precision}: labels equal fp32's on {100 * c.agreement:.2f}% of the pixels of {what}, "
                   f"{c.speedup:.2f}x its speed")
        if c.agreement >= MIN_AGREEMENT and c.speedup >= MIN_SPEEDUP:
            log.info("precision auto chose %s", verdict)
            candidate.note = _joined(candidate.note, f"precision auto: {verdict}")
            return candidate
        log.info("precision auto passed over %s (needs %.0f%% and %.2fx)", verdict, 100 * MIN_AGREEMENT,
                 MIN_SPEEDUP)
    fp32.note = _joined(fp32.note, "precision auto: fp32 (no faster precision kept fp32's labels and ran faster)")
    return fp32


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
