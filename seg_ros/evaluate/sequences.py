"""Scores per dataset sequence: which sequence each frame of the image topic belongs to, one confusion matrix each."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from seg_ros.core.labels import LabelSet
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.evaluate.report import Accuracy, SequenceResult


class SequenceTally:
    """Frames, scored frames and a confusion matrix per sequence of one camera.

    ``runs``: (sequence, frame count) runs of consecutive image-topic frames in topic order, as
    :func:`seg_ros.io.bags.recorded_sequences` gives them; frame i (0-based position on the topic) belongs to the
    run that covers position i, frames past the last run to none.
    """

    def __init__(self, runs: Sequence[tuple[str, int]], label_set: LabelSet):
        self.label_set = label_set
        self._names = [name for name, _ in runs]
        self._ends = list(accumulate(count for _, count in runs))
        order = list(dict.fromkeys(self._names))
        self.frames = dict.fromkeys(order, 0)
        self.scored = dict.fromkeys(order, 0)
        self.matrices = {name: ConfusionMatrix(label_set.num_classes, label_set.ignore_id) for name in order}

    def sequence(self, index: int) -> str | None:
        """The sequence of image-topic frame ``index`` (0-based); None past the recorded runs."""
        run = bisect_right(self._ends, index)
        return self._names[run] if run < len(self._names) else None

    def add(self, index: int, labels: np.ndarray | None, gt: np.ndarray | None) -> None:
        """Count frame ``index``; with its (H, W) predicted ``labels`` and ground-truth ids ``gt``, score it."""
        name = self.sequence(index)
        if name is None:
            return
        self.frames[name] += 1
        if labels is not None and gt is not None:
            self.matrices[name].update(labels, gt)
            self.scored[name] += 1

    def results(self) -> tuple[SequenceResult, ...]:
        """One result per sequence that had frames, in first-seen order; empty when fewer than two had any."""
        seen = [name for name, n in self.frames.items() if n > 0]
        if len(seen) < 2:
            return ()
        names = self.label_set.names
        return tuple(SequenceResult(name=name, frames=self.frames[name], scored=self.scored[name],
                                    metrics=Accuracy.from_confusion(self.matrices[name], names)
                                    if self.scored[name] else None)
                     for name in seen)
