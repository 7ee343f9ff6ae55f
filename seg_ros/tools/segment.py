"""Segment image files, image folders and video files (``seg-ros segment``).

Every input is checked before anything is written: a missing or unreadable
input, or two inputs that would write the same output name, stop the job
with one sentence and no output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
from tqdm import tqdm

from seg_ros.core.errors import InputError
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, check_frame_size
from seg_ros.core.paths import check_output_dir, require_file, require_file_or_dir
from seg_ros.core.staging import VideoWriter, staged_output
from seg_ros.io.datasets import IMAGE_SUFFIXES, check_image_file, read_image, write_image
from seg_ros.pipeline import Segmenter

if TYPE_CHECKING:
    from seg_ros.evaluate.tta import TTASegmenter

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass
class SegmentReport:
    frames: int = 0
    seconds: float = 0.0
    """Wall time spent in the Segmenter (excludes reading and writing files)."""
    written: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def collect_inputs(paths: list[str | os.PathLike], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Path]:
    """Expand folders into their image and video files (name order) and check that each input is readable.

    Every image's header and every video's first frame are read here, so a corrupt, truncated or oversized
    (more than ``max_pixels``) input stops the job before anything is written.
    """
    if not paths:
        raise InputError("no input given; name image files, folders or video files.")
    files: list[Path] = []
    for raw in paths:
        p = require_file_or_dir(raw, "input")
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            if not found:
                raise InputError(f"folder {p} holds no images or videos.")
            files += [require_file(q, "input") for q in found]
        else:
            files.append(p)
    stems: dict[str, Path] = {}
    for f in files:
        suffix = f.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            with _open_video(f, max_pixels) as cap:
                if not cap.read()[0]:
                    raise InputError(f"cannot read video {f}: not a video OpenCV can decode.")
        elif suffix in IMAGE_SUFFIXES:
            check_image_file(f, max_pixels)
        else:
            raise InputError(f"cannot read {f}: not an image or video file "
                             f"({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}).")
        if f.stem in stems:
            raise InputError(f"inputs {stems[f.stem]} and {f} would write the same output names; rename one.")
        stems[f.stem] = f
    return files


def segment_files(segmenter: Segmenter | TTASegmenter, inputs: list[Path], out: str | os.PathLike,
                  outputs: tuple[str, ...] = ("labels", "color", "overlay"), progress: bool = True,
                  log: Callable[[str], None] = print, max_pixels: int = DEFAULT_MAX_PIXELS) -> SegmentReport:
    """Write ``NAME_<output>.png`` per image (labels, color, overlay) and ``NAME_overlay.mp4`` per video.

    Frames larger than ``max_pixels`` are refused before they are decoded. ``segmenter`` may be a
    :class:`~seg_ros.evaluate.tta.TTASegmenter` (``--tta``: offline labelling with test-time augmentation).
    """
    check_output_dir(out, "output folder")
    report = SegmentReport()
    with staged_output(out) as stage:
        for path in tqdm(inputs, desc="segment", disable=not progress or len(inputs) < 2):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                _segment_video(segmenter, path, stage.path(f"{path.stem}_overlay.mp4"), report, progress,
                               max_pixels)
                continue
            frame = read_image(path, max_pixels)
            t0 = time.perf_counter()
            res = segmenter.segment(frame, outputs)
            report.seconds += time.perf_counter() - t0
            report.frames += 1
            for name in outputs:
                arr = getattr(res, name)
                write_image(stage.path(f"{path.stem}_{name}.png"), arr)
    report.written = sorted(Path(out) / p for p in _names(inputs, outputs))
    return report


def _names(inputs: list[Path], outputs: tuple[str, ...]) -> list[str]:
    names = []
    for p in inputs:
        if p.suffix.lower() in VIDEO_SUFFIXES:
            names.append(f"{p.stem}_overlay.mp4")
        else:
            names += [f"{p.stem}_{o}.png" for o in outputs]
    return names


@contextmanager
def _open_video(path: Path, max_pixels: int) -> Iterator[cv2.VideoCapture]:
    """An opened VideoCapture whose declared frame size is within ``max_pixels``; released on exit."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot read video {path}: not a video OpenCV can decode.")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        check_frame_size(h, w, max_pixels, what=f"video {path}")
        yield cap
    finally:
        cap.release()


def _segment_video(segmenter: Segmenter | TTASegmenter, path: Path, dst: Path, report: SegmentReport, progress: bool,
                   max_pixels: int) -> None:
    writer: VideoWriter | None = None
    with _open_video(path, max_pixels) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        try:
            with tqdm(total=total, desc=path.name, disable=not progress, leave=False) as bar:
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    # a stream may change size mid-file: each frame is held to the budget too
                    check_frame_size(bgr.shape[0], bgr.shape[1], max_pixels, what=f"a frame of video {path}")
                    frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    if writer is None:
                        writer = VideoWriter(dst, fps, frame.shape[:2])
                    t0 = time.perf_counter()
                    res = segmenter.segment(frame, ("overlay",))
                    report.seconds += time.perf_counter() - t0
                    report.frames += 1
                    writer.write(res.overlay)
                    bar.update()
        finally:
            if writer is not None:
                writer.close()
    if writer is None:
        raise InputError(f"video {path} has no frames.")
