"""The network's view of a frame, shared by the Segmenter and by training's validation.

A validation score is only the robot's score if validation feeds the network exactly what the Segmenter
feeds it and reads the logits back the same way; both go through this module::

    frames (N, H, W, 3) uint8 RGB
      → resize to the inference size (:func:`inference_size`: keep-aspect or stretched)
          numpy frames (CPU): OpenCV, INTER_AREA when both sides shrink, else INTER_LINEAR
          torch frames (device): bilinear, antialiased when a side shrinks
      → normalise with the model file's mean and std of RGB/255
      → (N, 3, h, w) float32, channels-last or planar NCHW as the backend reads it      (FramePreprocessor)
    logits (N, C, h, w) → bilinear upsample to (H, W) → argmax and max softmax           (upsampled_argmax)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

POSTPROCESS_BAND_BYTES = 256 << 20
"""Largest upsampled-logits tensor (N × C × H × W float32) built whole; beyond it, a few classes at a time."""


def inference_size(height: int, width: int, resolution: tuple[int, int], keep_aspect: bool) -> tuple[int, int]:
    """The (h, w) in pixels a frame of (``height``, ``width``) is resized to before inference.

    ``keep_aspect``: the largest size inside ``resolution`` (h, w) with the frame's aspect ratio; otherwise
    ``resolution`` itself (the frame is stretched).
    """
    rh, rw = resolution
    if not keep_aspect:
        return rh, rw
    scale = min(rh / height, rw / width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class FramePreprocessor:
    """uint8 RGB frames → the normalised network input on ``device``.

    Args:
        mean, std: per-channel mean and standard deviation of RGB/255 (the model file's normalisation).
        device: where the network runs; on CUDA, :meth:`upload` copies frames there through pinned memory.
        channels_last: hand the network a channels-last tensor (torch reads it without a copy); False gives
            contiguous planar NCHW (ONNX Runtime, TensorRT).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 channels_last: bool = True):
        self.device = torch.device(device)
        self.channels_last = bool(channels_last)
        mean_t = torch.tensor(mean, dtype=torch.float32) * 255.0
        inv_std_t = 1.0 / (torch.tensor(std, dtype=torch.float32) * 255.0)
        self._mean = mean_t.to(self.device)
        self._inv_std = inv_std_t.to(self.device)
        self._mean_np = mean_t.numpy()[:, None, None].copy()
        self._inv_std_np = inv_std_t.numpy()[:, None, None].copy()
        self._on_cuda = self.device.type == "cuda"
        self._pinned: torch.Tensor | None = None

    def upload(self, frames: np.ndarray) -> np.ndarray | torch.Tensor:
        """(N, H, W, 3) uint8 frames where preprocessing reads them.

        On CUDA: a uint8 device tensor, copied asynchronously from a reused pinned buffer; synchronise the
        device (or call this object on the result, which queues behind the copy) before the next upload.
        On the CPU: the numpy array itself.
        """
        if not self._on_cuda:
            return frames
        buf = self._pinned
        if buf is None or buf.shape != frames.shape:
            buf = self._pinned = torch.empty(frames.shape, dtype=torch.uint8).pin_memory()
        buf.numpy()[...] = frames
        return buf.to(self.device, non_blocking=True)

    def __call__(self, src: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, H, W, 3) uint8 frames → (N, 3, h, w) float32 normalised network input, ``size`` = (h, w).

        Numpy frames are resized with OpenCV on the CPU, torch tensors with torch on their own device (the
        Segmenter's CUDA path); see the module docstring for the interpolation each uses.
        """
        n, h, w, _ = src.shape
        ih, iw = size
        if isinstance(src, torch.Tensor):
            x = src.permute(0, 3, 1, 2).float()
            if (ih, iw) != (h, w):
                x = F.interpolate(x, size=(ih, iw), mode="bilinear", align_corners=False, antialias=ih < h or iw < w)
            x = (x - self._mean[:, None, None]) * self._inv_std[:, None, None]
            return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        return self.normalise(self.resize(src, size))

    @staticmethod
    def resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(N, H, W, 3) uint8 numpy frames resized to ``size`` (h, w) with OpenCV (the frames themselves when
        they already have that size): the first half of :meth:`__call__` for numpy frames."""
        n, h, w, _ = frames.shape
        ih, iw = size
        if (ih, iw) == (h, w):
            return frames
        interp = cv2.INTER_AREA if ih < h and iw < w else cv2.INTER_LINEAR
        resized = np.empty((n, ih, iw, 3), np.uint8)
        for i in range(n):
            cv2.resize(frames[i], (iw, ih), dst=resized[i], interpolation=interp)
        return resized

    def normalise(self, src: np.ndarray) -> torch.Tensor:
        """(N, h, w, 3) uint8 numpy frames at the inference size → (N, 3, h, w) float32 normalised network
        input in the backend's layout: the second half of :meth:`__call__` for numpy frames."""
        n, ih, iw, _ = src.shape
        if not self.channels_last:
            # Planar NCHW straight from the interleaved uint8 frame: one strided pass, no extra copy.
            planar = np.empty((n, 3, ih, iw), np.float32)
            np.subtract(src.transpose(0, 3, 1, 2), self._mean_np, out=planar)
            planar *= self._inv_std_np
            return torch.from_numpy(planar)
        out = torch.empty((n, ih, iw, 3), dtype=torch.float32)
        torch.sub(torch.from_numpy(np.ascontiguousarray(src)), self._mean, out=out).mul_(self._inv_std)
        # NHWC memory viewed as NCHW is exactly the channels-last layout.
        return out.permute(0, 3, 1, 2)


def upsampled_argmax(logits: torch.Tensor, size: tuple[int, int], confidence: bool,
                     band_bytes: int = POSTPROCESS_BAND_BYTES) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels and max softmax of (N, C, h, w) logits bilinearly upsampled to ``size`` (H, W).

    Returns (N, H, W) int64 labels and, if ``confidence``, (N, H, W) float32 max softmax. When the upsampled
    logits (N × C × H × W float32) would exceed ``band_bytes`` they are never built whole: classes are
    upsampled a few at a time with a running maximum and a running Σ exp (rescaled when the maximum grows),
    so memory stays bounded whatever the frame size and class count; the labels are the same.
    """
    n, c, h, w = logits.shape
    per_class = n * size[0] * size[1] * 4
    if c * per_class <= band_bytes:
        if (h, w) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return _max_and_confidence(logits, confidence)
    step = max(1, band_bytes // per_class)
    best = labels = sum_exp = None
    for k in range(0, c, step):
        up = F.interpolate(logits[:, k:k + step], size=size, mode="bilinear", align_corners=False).float()
        chunk_best, chunk_labels = up.max(dim=1)
        chunk_labels += k
        if best is None:
            best, labels = chunk_best, chunk_labels
            top = best
        else:
            labels = torch.where(chunk_best > best, chunk_labels, labels)  # ties keep the lower class id
            top = torch.maximum(best, chunk_best)
        if confidence:
            chunk_sum = up.sub_(top[:, None]).exp_().sum(dim=1)
            sum_exp = chunk_sum if sum_exp is None else sum_exp.mul_((best - top).exp_()).add_(chunk_sum)
        best = top
    return labels, None if sum_exp is None else sum_exp.reciprocal_()


def _max_and_confidence(logits: torch.Tensor, confidence: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, H, W) argmax over the classes of (N, C, H, W) logits and, if asked, the max softmax."""
    best, labels = logits.max(dim=1)
    if not confidence:
        return labels, None
    # max softmax = 1 / Σ_c exp(l_c − l_max), without materialising the softmax; in place after the
    # subtraction, so one C×H×W temporary.
    return labels, (logits.float() - best.float()[:, None]).exp_().sum(dim=1).reciprocal_()


__all__ = ["POSTPROCESS_BAND_BYTES", "FramePreprocessor", "inference_size", "upsampled_argmax"]
