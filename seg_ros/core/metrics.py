"""Dataset-level confusion matrix and the scores derived from it.

Scores follow cityscapesscripts' ``evalPixelLevelSemanticLabeling``: one
confusion matrix accumulated over every pixel of every frame (ignore id
excluded), per-class IoU = TP / (TP + FP + FN), and mIoU the mean over the
classes whose IoU is defined (a class that is neither in the ground truth nor
predicted anywhere has no IoU and is left out of the mean).
"""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """``matrix[g, p]`` counts pixels of ground-truth class g predicted as p (int64)."""

    def __init__(self, num_classes: int, ignore_id: int = 255):
        self.num_classes = num_classes
        self.ignore_id = ignore_id
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame (or a batch): ``pred`` and ``gt`` are integer arrays of equal shape.

        Ground-truth pixels equal to the ignore id are skipped; any other ground-truth or
        predicted id outside ``0 .. num_classes - 1`` raises ValueError.
        """
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}.")
        gt = gt.ravel()
        pred = pred.ravel()
        if gt.dtype == np.uint8 and pred.dtype == np.uint8 and self.num_classes <= 255 and self.ignore_id <= 255:
            self._update_uint8(pred, gt)
            return
        keep = gt != self.ignore_id
        if not keep.all():
            gt, pred = gt[keep], pred[keep]
        n = self.num_classes
        if gt.size and (int(gt.max()) >= n or int(gt.min()) < 0):
            bad = np.unique(gt[(gt >= n) | (gt < 0)])[:5].tolist()
            raise ValueError(f"ground truth holds label ids {bad} outside 0..{n - 1} (ignore id {self.ignore_id}).")
        if pred.size and (int(pred.max()) >= n or int(pred.min()) < 0):
            raise ValueError(f"prediction holds label ids outside 0..{n - 1}.")
        idx = gt.astype(np.int64) * n + pred.astype(np.int64)
        self.matrix += np.bincount(idx, minlength=n * n).reshape(n, n)

    def _update_uint8(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """``update`` for uint8 label images (the common case), about 6× faster: one uint16 index, one bincount
        over every (gt, pred) pair with gt in 0..255, no masking copy; rows of gt ids ≥ num_classes are checked
        (only the ignore id may occur there) and dropped."""
        n = self.num_classes
        if pred.size and int(pred.max()) >= n:
            raise ValueError(f"prediction holds label ids outside 0..{n - 1}.")
        idx = gt.astype(np.uint16)
        idx *= n
        idx += pred
        counts = np.bincount(idx, minlength=256 * n)
        extra = counts[n * n:].reshape(-1, n).sum(1)  # pixels per gt id n..255
        if self.ignore_id >= n:
            extra[self.ignore_id - n] = 0
        if extra.any():
            bad = (np.flatnonzero(extra)[:5] + n).tolist()
            raise ValueError(f"ground truth holds label ids {bad} outside 0..{n - 1} (ignore id {self.ignore_id}).")
        self.matrix += counts[: n * n].reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU, float64 (num_classes,); NaN where a class has no GT and no predictions."""
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes whose IoU is defined (NaN if none is)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.total
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall TP / (TP + FN); NaN for classes absent from the ground truth."""
        gt = self.matrix.sum(1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gt > 0, np.diag(self.matrix) / gt, np.nan)
