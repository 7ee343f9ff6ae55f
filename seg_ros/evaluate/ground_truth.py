"""Ground truth from a folder of label PNGs named by camera frame (:class:`GroundTruthDir`)."""

from __future__ import annotations

import os
from pathlib import Path

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.io.bags import ImageMessage

GT_MATCHES = ("stamp", "index")
"""How a label PNG's name identifies its camera frame: by header stamp (ns) or by position on the image topic."""


class GroundTruthDir:
    """Label PNGs (single-channel 8-bit class ids) named by an integer that identifies a camera frame.

    ``match="stamp"``: the frame's ``header.stamp`` in nanoseconds, e.g. ``1700000000100000000.png``.
    ``match="index"``: the frame's 0-based position on the image topic in log-time order, with any zero
    padding, e.g. ``000042.png`` or ``42.png``. Files whose stem is not an integer are ignored; two files
    for the same frame are an error. A frame without a file is counted as missing ground truth.
    """

    def __init__(self, path: str | os.PathLike, match: str = "stamp"):
        self.path = Path(path)
        if match not in GT_MATCHES:
            raise ConfigError(f"ground-truth matching must be one of {', '.join(GT_MATCHES)}, not {match!r}.")
        self.match = match
        if not self.path.is_dir():
            raise InputError(f"ground-truth folder {self.path} does not exist.")
        self.files: dict[int, Path] = {}
        for p in sorted(self.path.iterdir()):
            if p.suffix.lower() != ".png" or not p.stem.isdigit():
                continue
            key = int(p.stem)
            if key in self.files:
                raise InputError(f"ground-truth folder {self.path} has two files for {match} {key}: "
                                 f"{self.files[key].name} and {p.name}.")
            self.files[key] = p
        if not self.files:
            example = "1700000000100000000.png" if match == "stamp" else "000042.png"
            raise InputError(f"ground-truth folder {self.path} holds no label PNG named by a frame {match} "
                             f"(like {example}).")

    def lookup(self, frame: ImageMessage) -> Path | None:
        """The label PNG of ``frame``, or None when the folder has none for it."""
        return self.files.get(frame.stamp_ns if self.match == "stamp" else frame.index)
