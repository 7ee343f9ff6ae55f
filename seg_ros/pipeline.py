"""The Segmenter: RGB frames in, labels / colour / overlay / confidence out.

ROS-free and shared by the node and every offline tool, so a result seen
offline is the result the robot gets::

    frame (H, W, 3) uint8 RGB
      → resize to the inference resolution → normalise → backend.infer
      → upsample logits to (H, W) → [dense CRF] → max over classes → labels, confidence
      → colour lookup, overlay
    = SegResult

The frame → network input and logits → labels steps live in
:mod:`seg_ros.core.preprocess`, which training's validation runs too.
Where the backend has them in its own graph (OpenVINO: normalise, upsample,
argmax and confidence compiled around the network,
:mod:`seg_ros.runtime.openvino_graph`) and the CRF is off, the Segmenter
only resizes and hands it the uint8 frames; the ``infer`` stage then holds
those steps too.
On CUDA every stage runs on the GPU and each requested output is copied back
once. On the CPU, resizing, colouring and blending use OpenCV/numpy, which are
faster there than torch for uint8 images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.labels import LabelSet
from seg_ros.core.limits import check_crf_size, format_resolution, parse_resolution
from seg_ros.core.preprocess import FramePreprocessor, inference_size, upsampled_argmax
from seg_ros.crf import CRFConfig, DenseCRF
from seg_ros.models.modelfile import DEFAULT_MODEL, ModelMeta, load_model, resolve_model
from seg_ros.runtime import Backend, ModelSource, RuntimeOptions, create_backend, resolve_device

OUTPUTS = frozenset({"labels", "color", "overlay", "confidence"})
STAGES = ("preprocess", "infer", "crf", "postprocess", "render")
"""Per-frame stage timings of :class:`SegResult`; ``crf`` is 0 while the CRF is off."""


@dataclass
class SegResult:
    """Outputs for one frame; arrays are at the input frame's resolution (H, W).

    ``labels``: (H, W) uint8 class ids. ``color``: (H, W, 3) uint8 RGB of the label colours.
    ``overlay``: (H, W, 3) uint8 RGB, the frame blended with ``color``.
    ``confidence``: (H, W) float32, the winning class's softmax probability in [1/C, 1] (with the CRF: its
    marginal probability).
    Outputs not asked for are None. ``timings``: milliseconds per stage and ``total``,
    per frame (a batch's stage time divided by the batch size).
    """

    labels: np.ndarray
    color: np.ndarray | None = None
    overlay: np.ndarray | None = None
    confidence: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Segmenter:
    """Semantic segmentation of RGB frames with a model file.

    Args:
        model: a model-file path, the name of a shipped model, or an ``.onnx`` file (with a sidecar
            description beside it, or one written by ``seg-ros export``; see :mod:`seg_ros.runtime.onnx_model`).
        resolution: inference size (height, width) or ``"HxW"``; None = the model's training size.
        keep_aspect: scale each frame to fit inside ``resolution`` keeping its aspect ratio
            (no distortion); False stretches it to exactly ``resolution``.
        device: ``auto``, ``cpu`` or ``cuda:N``.
        precision: ``fp32``, ``fp16`` (CUDA), ``bf16`` (openvino), ``int8`` (openvino or onnxruntime on the CPU,
            tensorrt; with ``runtime.calibration``), or ``auto`` (:mod:`seg_ros.runtime.auto_precision`).
        backend: ``torch``, ``onnxruntime``, ``openvino``, ``tensorrt`` or ``auto`` (the first of
            :data:`~seg_ros.runtime.AUTO_ORDER` that can run here).
        overlay_alpha: weight of the label colours in the overlay, 0..1.
        crf: dense CRF refinement settings; None = off. Can be changed between frames (:attr:`crf`).
        runtime: options of the accelerated backends (threads, CUDA graphs, int8 calibration, engine
            cache, fallback, shape policy); see :class:`~seg_ros.runtime.base.RuntimeOptions`.
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        resolution: tuple[int, int] | str | None = None,
        keep_aspect: bool = True,
        device: str = "auto",
        precision: str = "fp32",
        backend: str = "torch",
        overlay_alpha: float = 0.5,
        crf: CRFConfig | None = None,
        runtime: RuntimeOptions | None = None,
    ):
        self.device = resolve_device(device)
        onnx_model = None
        module = None
        if str(model).lower().endswith(".onnx"):
            from seg_ros.runtime.onnx_model import load_onnx_model

            onnx_model = load_onnx_model(model)
            self.model_path, self.meta = onnx_model.path, onnx_model.meta
        else:
            self.model_path = resolve_model(model)
            module, self.meta = load_model(self.model_path)
        self.resolution = (
            parse_resolution(resolution) if isinstance(resolution, str)
            else tuple(resolution) if resolution is not None else self.meta.input_size
        )
        parse_resolution(format_resolution(self.resolution))  # range check for tuples too
        if onnx_model is not None and onnx_model.fixed_size not in (None, self.resolution):
            fh, fw = onnx_model.fixed_size
            raise ConfigError(f"ONNX model {self.model_path.name} takes only {fh}x{fw} inputs, not "
                              f"{format_resolution(self.resolution)}; set resolution to {fh}x{fw} (or leave it "
                              "empty), or export the model with dynamic height and width.")
        self.keep_aspect = bool(keep_aspect)
        self.overlay_alpha = overlay_alpha
        source = ModelSource(self.model_path, self.meta, self.resolution, module=module, onnx=onnx_model)
        self.backend: Backend = create_backend(backend, source, self.device, precision, runtime)
        self.preprocessor = FramePreprocessor(self.meta.mean, self.meta.std, self.device,
                                              channels_last=self.backend.channels_last)
        self._palette = torch.from_numpy(self.label_set.palette.copy()).to(self.device)
        self._on_cuda = self.device.type == "cuda"
        self.crf = crf

    @property
    def label_set(self) -> LabelSet:
        return self.meta.label_set

    @property
    def overlay_alpha(self) -> float:
        return self._alpha

    @overlay_alpha.setter
    def overlay_alpha(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"overlay_alpha must lie in 0..1, not {value!r}.")
        self._alpha = float(value)

    @property
    def crf(self) -> CRFConfig | None:
        """The dense CRF settings, None when off; setting them applies from the next frame on.

        Raises:
            CRFUnavailableError: (on setting) ``method=exact`` without pydensecrf2 and no fallback.
        """
        return None if self._crf is None else self._crf.config

    @crf.setter
    def crf(self, config: CRFConfig | None) -> None:
        self._crf = None if config is None else DenseCRF(config, self.device)

    @property
    def crf_stage(self) -> DenseCRF | None:
        """The CRF stage in use (its ``method`` is resolved to exact or fast), None when off."""
        return self._crf

    def describe(self) -> str:
        crf = f", {self._crf.describe()}" if self._crf is not None else ""
        return (f"{self.meta.architecture} ({self.model_path.name}, {self.label_set.name}, "
                f"{self.label_set.num_classes} classes) at {format_resolution(self.resolution)} "
                f"on {self.backend.describe()}{crf}")

    def inference_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) a frame of (height, width) is resized to before inference."""
        return inference_size(height, width, self.resolution, self.keep_aspect)

    def network_input(self, frames: np.ndarray) -> torch.Tensor:
        """The backend's input for (N, H, W, 3) uint8 RGB frames: (N, 3, h, w) float32 on the device.

        Exactly what :meth:`segment_batch` hands ``backend.infer`` for these frames (resized to
        :meth:`inference_size`, normalised, in the backend's memory layout).
        """
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or len(frames) < 1:
            raise InputError(f"network input is made from an (N, H, W, 3) array of N ≥ 1 frames, not "
                             f"{getattr(frames, 'shape', type(frames).__name__)}.")
        _check_frame(frames[0])
        h, w = frames.shape[1:3]
        return self.preprocessor(self.preprocessor.upload(frames), self.inference_size(h, w))

    def __call__(self, frames, outputs: Iterable[str] = OUTPUTS):
        """``segment`` for one (H, W, 3) frame, ``segment_batch`` for (N, H, W, 3) or a list."""
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            return self.segment(frames, outputs)
        return self.segment_batch(frames, outputs)

    def segment(self, frame: np.ndarray, outputs: Iterable[str] = OUTPUTS) -> SegResult:
        """Segment one (H, W, 3) uint8 RGB frame."""
        _check_frame(frame)
        return self._run_shared([frame[None]], _check_outputs(outputs))[0][0]

    def segment_batch(
        self, frames: np.ndarray | Sequence[np.ndarray], outputs: Iterable[str] = OUTPUTS
    ) -> list[SegResult]:
        """Segment a batch: an (N, H, W, 3) array or a sequence of (H, W, 3) frames of any sizes.

        Frames are resized to their inference size; frames that share one run through the network together
        (one call), whatever their own sizes, and every result is at its own frame's size. Where the backend
        runs the whole pipeline in its graph (OpenVINO), it is handed the frames of one size together.
        """
        wanted = _check_outputs(outputs)
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            for f in frames[:1]:
                _check_frame(f)
            return self._run_shared([frames], wanted)[0] if len(frames) else []
        frames = list(frames)
        for f in frames:
            _check_frame(f)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            by_shape.setdefault(f.shape, []).append(i)
        by_size: dict[tuple[int, int], list[list[int]]] = {}
        for shape, idx in by_shape.items():
            by_size.setdefault(self.inference_size(shape[0], shape[1]), []).append(idx)
        results: list[SegResult | None] = [None] * len(frames)
        for groups in by_size.values():
            batches = [np.stack([frames[i] for i in idx]) for idx in groups]
            for idx, out in zip(groups, self._run_shared(batches, wanted)):
                for i, r in zip(idx, out):
                    results[i] = r
        return results  # type: ignore[return-value]

    # -- the pipeline ----------------------------------------------------------------------------

    def _run_shared(self, batches: list[np.ndarray], wanted: frozenset[str]) -> list[list[SegResult]]:
        """Results of same-size batches of frames (N_i, H_i, W_i, 3) whose inference size is the same.

        Each batch is resized and normalised on its own; the network runs once on all of them (the fused graph
        of :meth:`Backend.segment_resized`, where it applies, once per batch); logits are upsampled per batch to
        its frames' size. Stage times are per frame, the network's shared equally.
        """
        ih, iw = self.inference_size(*batches[0].shape[1:3])
        if self._crf is not None and self.backend.output_kind != "labels":
            for b in batches:
                _check_crf_size(self._crf, b.shape[1], b.shape[2], self.label_set.num_classes)
        fusable = self._crf is None and not self._on_cuda and self.backend.output_kind == "logits"
        results: list[list[SegResult] | None] = [None] * len(batches)
        prepared = []
        for k, frames in enumerate(batches):
            n, h, w, _ = frames.shape
            t0 = self._clock()
            if fusable:
                resized = self.preprocessor.resize(frames, (ih, iw))
                t1 = self._clock()
                fused = self.backend.segment_resized(resized, (h, w), "confidence" in wanted)
                if fused is not None:
                    t2 = self._clock()
                    labels, confidence = fused
                    results[k] = self._rendered_results(frames, labels, None, confidence, wanted,
                                                        [(t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, 0.0])
                    continue
                src, x = frames, self.preprocessor.normalise(resized)
            else:
                src = self.preprocessor.upload(frames)
                x = self.preprocessor(src, (ih, iw))
            # _clock() synchronises the device right after preprocessing, so the upload's asynchronous copy has
            # finished before the next batch refills its pinned buffer.
            prepared.append((k, src, x, (self._clock() - t0) * 1e3 / n))
        if prepared:
            x = torch.cat([p[2] for p in prepared]) if len(prepared) > 1 else prepared[0][2]
            t1 = self._clock()
            logits = self.backend.infer(x)
            infer_ms = (self._clock() - t1) * 1e3 / x.shape[0]
            first = 0
            for k, src, xk, pre_ms in prepared:
                part = logits[first:first + len(xk)]
                first += len(xk)
                results[k] = self._finish(batches[k], src, part, wanted, [pre_ms, infer_ms])
        return results  # type: ignore[return-value]

    def _finish(self, frames: np.ndarray, src, logits: torch.Tensor, wanted: frozenset[str],
                stage_ms: list[float]) -> list[SegResult]:
        """Labels, confidence, colour and overlay of one same-size batch from its network output;
        ``stage_ms``: its per-frame preprocess and infer times."""
        n, h, w, _ = frames.shape
        if self.backend.output_kind == "labels":
            return self._label_map_results(frames, src, logits, wanted, stage_ms)
        crf = self._crf
        crf_ms = 0.0
        conf_t = None
        t2 = self._clock()
        if crf is not None:
            if logits.shape[-2:] != (h, w):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            t_crf0 = self._clock()
            probs = crf(logits, src)
            crf_ms = (self._clock() - t_crf0) * 1e3 / n
            best, labels_t = probs.max(dim=1)  # (N, H, W) each; best: the CRF's marginal
            if "confidence" in wanted:
                conf_t = best.float()
        else:
            labels_t, conf_t = upsampled_argmax(logits, (h, w), "confidence" in wanted)
        labels_t = labels_t.to(torch.uint8)
        labels = labels_t.cpu().numpy()
        confidence = None if conf_t is None else conf_t.cpu().numpy()
        post_ms = (self._clock() - t2) * 1e3 / n - crf_ms
        return self._rendered_results(src, labels, labels_t, confidence, wanted, [*stage_ms, post_ms], crf_ms)

    def _label_map_results(self, frames: np.ndarray, src, ids: torch.Tensor, wanted: frozenset[str],
                           stage_ms: list[float]) -> list[SegResult]:
        """Results of a model that outputs class ids: nearest-neighbour resize; confidence 1 (no scores).

        The dense CRF needs class probabilities, so it is skipped for such models even when enabled.
        """
        n, h, w, _ = frames.shape
        t2 = self._clock()
        ids = ids.reshape(n, 1, *ids.shape[-2:])
        if ids.shape[-2:] != (h, w):
            ids = F.interpolate(ids.float(), size=(h, w), mode="nearest")
        ids = ids[:, 0]
        bad = (ids < 0) | (ids >= self.label_set.num_classes)
        labels_t = torch.where(bad, torch.full_like(ids, self.label_set.ignore_id), ids).to(torch.uint8)
        labels = labels_t.cpu().numpy()
        confidence = np.ones((n, h, w), np.float32) if "confidence" in wanted else None
        post_ms = (self._clock() - t2) * 1e3 / n
        # No CRF stage: a label map has no probabilities to refine.
        return self._rendered_results(src, labels, labels_t, confidence, wanted, [*stage_ms, post_ms])

    def _rendered_results(self, src, labels: np.ndarray, labels_t: torch.Tensor | None,
                          confidence: np.ndarray | None, wanted: frozenset[str], stage_ms: list[float],
                          crf_ms: float = 0.0) -> list[SegResult]:
        """Colour and overlay (as asked for), then per-frame results with the stage timings.

        ``stage_ms``: per-frame preprocess, infer and postprocess (without the CRF) times; ``crf_ms``: the CRF's.
        """
        t3 = self._clock()
        color = overlay = None
        if "color" in wanted or "overlay" in wanted:
            on_device = isinstance(src, torch.Tensor)
            color, overlay = render(src, labels_t if on_device else labels,
                                    self._palette if on_device else self.label_set.palette, self._alpha,
                                    color="color" in wanted, overlay="overlay" in wanted)
        n = len(labels)
        render_ms = (self._clock() - t3) * 1e3 / n
        pre_ms, infer_ms, post_ms = stage_ms
        return _split_batch(labels, color, overlay, confidence, [pre_ms, infer_ms, crf_ms, post_ms, render_ms])

    def _clock(self) -> float:
        if self._on_cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


def render(frames: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
           palette: np.ndarray | torch.Tensor, alpha: float, *, color: bool = True,
           overlay: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Colour masks and overlays of (N, H, W) class ids over (N, H, W, 3) uint8 RGB frames.

    ``palette``: (C, 3) uint8 RGB per class id; ``alpha``: weight of the colours in the overlay, 0..1.
    Numpy frames take the CPU path (``np.take``, ``cv2.addWeighted``, in uint8; labels and palette numpy too).
    Torch frames stay on their device until the single copy of each output (labels and palette are moved
    there). Returns (N, H, W, 3) uint8 ``(color, overlay)`` as numpy, each None unless asked for.
    """
    if isinstance(frames, torch.Tensor):
        device = frames.device
        palette_t = palette.to(device) if isinstance(palette, torch.Tensor) else torch.tensor(palette, device=device)
        labels_t = labels.to(device) if isinstance(labels, torch.Tensor) else torch.tensor(labels, device=device)
        color_t = palette_t[labels_t.long()]
        blend = (torch.lerp(frames.float(), color_t.float(), alpha).round_().to(torch.uint8).cpu().numpy()
                 if overlay else None)
        return (color_t.cpu().numpy() if color else None), blend
    color_np = np.take(palette, labels, axis=0)
    blend = None
    if overlay:
        blend = np.empty_like(frames)
        for i in range(len(frames)):
            cv2.addWeighted(frames[i], 1.0 - alpha, color_np[i], alpha, 0.0, dst=blend[i])
    return (color_np if color else None), blend


def _check_outputs(outputs: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(outputs) | {"labels"}
    unknown = wanted - OUTPUTS
    if unknown:
        raise ConfigError(f"unknown outputs {sorted(unknown)}; choose from {sorted(OUTPUTS)}.")
    return wanted


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray):
        raise InputError(f"a frame must be a numpy array, not {type(frame).__name__}.")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"a frame must be an H×W×3 RGB array, not shape {frame.shape}.")
    if frame.dtype != np.uint8:
        raise InputError(f"a frame must be uint8, not {frame.dtype}.")


def _check_crf_size(stage: DenseCRF, height: int, width: int, classes: int) -> None:
    """Refuse (InputError) a frame whose dense CRF would exceed the bounds of
    :func:`~seg_ros.core.limits.check_crf_size`."""
    if stage.method == "exact":
        check_crf_size(height, width, 1, classes, what="the exact dense CRF",
                       fix="use crf.method fast (its automatic grid), or smaller frames")
    else:
        check_crf_size(height, width, stage.config.grid_step(height, width), classes, what="the fast dense CRF",
                       fix="set crf.downsample to 0 (auto) or a coarser step, or use smaller frames")


def _split_batch(labels: np.ndarray, color: np.ndarray | None, overlay: np.ndarray | None,
                 confidence: np.ndarray | None, stage_ms: list[float]) -> list[SegResult]:
    """One :class:`SegResult` per frame of (N, ...) batch outputs; ``stage_ms`` per frame, in STAGES order."""
    timings = dict(zip(STAGES, stage_ms))
    timings["total"] = sum(stage_ms)
    return [
        SegResult(
            labels=labels[i],
            color=None if color is None else color[i],
            overlay=None if overlay is None else overlay[i],
            confidence=None if confidence is None else confidence[i],
            timings=dict(timings),
        )
        for i in range(len(labels))
    ]


__all__ = ["OUTPUTS", "STAGES", "ModelMeta", "SegResult", "Segmenter", "format_resolution", "parse_resolution",
           "render"]
