"""``seg-ros demo``: a synthetic drive written to a bag, replayed through the shipped model and scored.

The demo is the replay workflow of ``seg-ros bag-from-dataset`` + ``seg-ros evaluate`` on generated data:

1. a temporally coherent synthetic drive (:func:`seg_ros.synthetic.generate_drive`) is written as a ROS 2 bag,
   ``<out>/drive_bag`` (camera images, ground-truth labels and camera_info with identical stamps);
2. every frame of that bag is segmented with the shipped model, configured through the node's parameter schema,
   and scored against the ground truth;
3. the report (``report.md``, ``report.json``, per-class IoU, confusion matrix and latency charts) lands in
   ``<out>/`` and the segmentation in ``<out>/segmented_bag`` (labels / color / overlay topics with the input
   stamps), ready for ``ros2 bag play`` or Foxglove;
4. what the model saw is drawn from the two bags: ``<out>/overlay.mp4`` (the overlay of every frame) and
   ``<out>/contact_sheet.png`` (input | overlay | ground truth for a few frames, with a colour legend).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import CAMVID, LabelSet
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.paths import check_output_dir
from seg_ros.core.staging import VideoWriter, staged_output
from seg_ros.evaluate import EvalOptions, EvaluationReport, evaluate_bag, segmenter_from_params
from seg_ros.io.bags import BagReader, DatasetBagSummary, write_dataset_bag
from seg_ros.io.datasets import SyntheticDriveSource, write_image
from seg_ros.models.modelfile import DEFAULT_MODEL

DRIVE_BAG = "drive_bag"
SEGMENTED_BAG = "segmented_bag"
OVERLAY_VIDEO = "overlay.mp4"
CONTACT_SHEET = "contact_sheet.png"
DEMO_FPS = 10.0
"""Frame rate of the drive: its bag stamps and the overlay video."""
SHEET_ROWS = 4
SHEET_TITLES = ("input", "overlay (prediction)", "ground truth")
PANEL_MAX_WIDTH = 480
"""Wider frames are scaled down to this width on the contact sheet (the video keeps the full size)."""

_GAP = 6  # px of background between panels, rows and the sheet's border
_PAD = 4  # px around a line of text
_FONT, _FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.5
_PAPER, _INK = (255, 255, 255), (0, 0, 0)


def run_demo(out: str | os.PathLike = "demo_out", frames: int = 60, size: tuple[int, int] = (360, 640),
             model: str = DEFAULT_MODEL, device: str = "auto", seed: int = 2024, progress: bool = True,
             log: Callable[[str], None] = print) -> EvaluationReport:
    """Run the demo; returns the evaluation report that is also written to ``<out>/report.json``."""
    if frames < 1:
        raise ConfigError(f"the demo needs at least one frame, not {frames}.")
    out = check_output_dir(out, "demo output folder")
    seg, _ = segmenter_from_params(None, {"model": str(model), "device": device})
    if seg.label_set.names != CAMVID.names:
        raise ConfigError(f"the demo scores against CamVid-11 synthetic ground truth, but model {model!r} "
                          f"predicts the {seg.label_set.name!r} label set.")
    log(f"1/3 writing a {frames}-frame synthetic drive ({size[0]}x{size[1]}) to the bag {out / DRIVE_BAG}")
    bag = write_dataset_bag(SyntheticDriveSource(seed, frames, size), out / DRIVE_BAG, fps=DEMO_FPS,
                            overwrite=True, progress=progress)
    log(f"2/3 replaying it through {seg.describe()}")
    opts = EvalOptions(bag=bag.path, out=out, out_bag=out / SEGMENTED_BAG, overwrite=True, progress=progress)
    report = evaluate_bag(
        opts, seg, settings={"demo": True, "model": str(model), "device": device},
        command=f"seg-ros demo --out {out} --frames {frames} --size {size[0]}x{size[1]}", log=log)
    log(f"3/3 drawing the overlay video and the contact sheet from {out / SEGMENTED_BAG}")
    video, sheet = write_media(bag, opts.out_bag, opts.out_prefix, out, seg.label_set)
    log("")
    log(f"Video:   {video} (the overlay of every frame, {DEMO_FPS:g} fps)")
    log(f"Sheet:   {sheet} ({' | '.join(SHEET_TITLES)} for {min(frames, SHEET_ROWS)} frames)")
    log(f"Report:  {out / 'report.md'} (mIoU, per-class IoU, latency p50/p90/p99 per stage), {out / 'report.json'}")
    log(f"Charts:  {', '.join(str(out / chart) for chart in report.charts)}")
    log(f"Bags:    {out / DRIVE_BAG} (input: {bag.image_topic}, {bag.gt_topic}, {bag.camera_info_topic})")
    log(f"         {out / SEGMENTED_BAG} (/segmentation_node/labels, /color, /overlay with the input stamps)")
    log(f"Replay:  ros2 bag play {out / SEGMENTED_BAG}   (or open it in Foxglove Studio)")
    log("Note: synthetic scenes are a smoke test of the pipeline, not a measure of accuracy on real data.")
    return report


def write_media(drive: DatasetBagSummary, segmented_bag: Path, prefix: str, out: Path, label_set: LabelSet,
                rows: int = SHEET_ROWS) -> tuple[Path, Path]:
    """Write ``<out>/overlay.mp4`` and ``<out>/contact_sheet.png`` from the drive bag and the segmented bag.

    The video holds every overlay frame of ``<prefix>/overlay`` at :data:`DEMO_FPS`; the sheet the middle frame
    of each of ``rows`` equal stretches of the drive, paired with their input and ground truth by header stamp.
    Both files are staged and appear together, or not at all. Returns their paths (video, sheet).
    """
    prefix = prefix.rstrip("/")
    index: dict[int, int] = {}  # header stamp (ns) -> frame index, of the frames on the sheet
    picked: dict[int, dict[str, np.ndarray]] = {}  # header stamp (ns) -> overlay, labels, image, gt
    with BagReader(segmented_bag) as seg_bag, staged_output(out) as stage:
        n = seg_bag.require_topic(f"{prefix}/overlay").count
        shown = min(rows, n)
        picks = {int((k + 0.5) * n / shown) for k in range(shown)}  # the middle frame of each stretch
        writer: VideoWriter | None = None
        start_ns = 0
        try:
            for m in seg_bag.images(f"{prefix}/overlay"):
                rgb = m.to_rgb()
                if writer is None:
                    writer = VideoWriter(stage.path(OVERLAY_VIDEO), DEMO_FPS, rgb.shape[:2])
                    start_ns = m.stamp_ns
                writer.write(rgb)
                if m.index in picks:
                    index[m.stamp_ns], picked[m.stamp_ns] = m.index, {"overlay": rgb}
        finally:
            if writer is not None:
                writer.close()
        _collect(seg_bag, f"{prefix}/labels", picked, "labels", labels=True)
        with BagReader(drive.path) as src:
            _collect(src, drive.image_topic, picked, "image", labels=False)
            _collect(src, drive.gt_topic, picked, "gt", labels=True)
        sheet_rows = [SheetRow(_caption(index[stamp], (stamp - start_ns) / 1e9, p["labels"], p["gt"], label_set),
                               p["image"], p["overlay"], p["gt"])
                      for stamp, p in sorted(picked.items())]
        write_image(stage.path(CONTACT_SHEET), contact_sheet(sheet_rows, label_set))
    return out / OVERLAY_VIDEO, out / CONTACT_SHEET


def _collect(reader: BagReader, topic: str, picked: dict[int, dict[str, np.ndarray]], key: str,
             labels: bool) -> None:
    """Decode the frames of ``topic`` whose stamps are in ``picked`` into ``picked[stamp][key]``."""
    for m in reader.images(topic):
        if m.stamp_ns in picked:
            picked[m.stamp_ns][key] = m.to_labels() if labels else m.to_rgb()


def _caption(index: int, t_s: float, pred: np.ndarray, gt: np.ndarray, label_set: LabelSet) -> str:
    """One row's caption: frame index, time into the drive (s) and the frame's pixel accuracy."""
    cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
    cm.update(pred, gt)
    return f"frame {index}, t = {t_s:.1f} s, pixel accuracy {cm.pixel_accuracy():.3f}"


@dataclass(frozen=True)
class SheetRow:
    """One row of a contact sheet: (H, W, 3) uint8 RGB input and overlay, (H, W) uint8 ground-truth ids."""

    caption: str
    image: np.ndarray
    overlay: np.ndarray
    gt: np.ndarray


@dataclass(frozen=True)
class SheetLayout:
    """Geometry of a contact sheet in pixels: a title line, then per row a caption line above three panels,
    then a legend of the classes' colours."""

    panel_hw: tuple[int, int]
    rows: int
    line_px: int
    """Height of a line of text (titles, captions, legend entries)."""
    legend: tuple[tuple[int, int], ...]
    """Top-left (y, x) of each class's legend entry."""
    size: tuple[int, int]
    """(H, W) of the whole sheet."""

    def panel(self, row: int, col: int) -> tuple[slice, slice]:
        """The (rows, columns) slices of panel ``col`` (0 input, 1 overlay, 2 ground truth) of row ``row``."""
        ph, pw = self.panel_hw
        y = self.line_px + row * (self.line_px + ph + _GAP) + self.line_px
        x = _GAP + col * (pw + _GAP)
        return slice(y, y + ph), slice(x, x + pw)


def _text_size(text: str) -> tuple[int, int]:
    """(width, height including the descender) of ``text`` in pixels."""
    (w, h), baseline = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    return w, h + baseline


def sheet_layout(frame_hw: tuple[int, int], rows: int, label_set: LabelSet) -> SheetLayout:
    """Where everything goes on a contact sheet of ``rows`` frames of size ``frame_hw`` (H, W)."""
    h, w = frame_hw
    pw = min(w, PANEL_MAX_WIDTH)
    ph = max(1, round(h * pw / w))
    line_px = _text_size("Ag")[1] + 2 * _PAD
    width = 3 * pw + 4 * _GAP
    y, x = line_px + rows * (line_px + ph + _GAP), _GAP
    legend = []
    for name in label_set.names:
        entry_w = line_px + _PAD + _text_size(name)[0] + 3 * _PAD
        if x > _GAP and x + entry_w > width - _GAP:
            y, x = y + line_px, _GAP
        legend.append((y, x))
        x += entry_w
    return SheetLayout((ph, pw), rows, line_px, tuple(legend), (y + line_px + _GAP, width))


def contact_sheet(rows: Sequence[SheetRow], label_set: LabelSet) -> np.ndarray:
    """Draw ``rows`` (all of one frame size) as an (H, W, 3) uint8 RGB sheet; see :func:`sheet_layout`."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row.")
    lay = sheet_layout(rows[0].image.shape[:2], len(rows), label_set)
    ph, pw = lay.panel_hw
    sheet = np.full((*lay.size, 3), _PAPER, np.uint8)
    for col, title in enumerate(SHEET_TITLES):
        _put_text(sheet, title, lay.line_px - 1 - _PAD, lay.panel(0, col)[1].start)
    for r, row in enumerate(rows):
        ys, _ = lay.panel(r, 0)
        _put_text(sheet, row.caption, ys.start - 1 - _PAD, _GAP)
        for col, panel in enumerate((row.image, row.overlay, label_set.colorize(row.gt))):
            if panel.shape[:2] != (ph, pw):
                panel = cv2.resize(panel, (pw, ph), interpolation=cv2.INTER_AREA)
            sheet[lay.panel(r, col)] = panel
    sw = lay.line_px - 2 * _PAD
    for (y, x), name, color in zip(lay.legend, label_set.names, label_set.colors):
        cv2.rectangle(sheet, (x, y + _PAD), (x + sw, y + _PAD + sw), color, cv2.FILLED)
        cv2.rectangle(sheet, (x, y + _PAD), (x + sw, y + _PAD + sw), _INK, 1)
        _put_text(sheet, name, y + lay.line_px - 1 - _PAD, x + sw + 2 * _PAD)
    return sheet


def _put_text(img: np.ndarray, text: str, bottom: int, left: int) -> None:
    """Draw ``text`` with its descender's bottom at row ``bottom``, starting at column ``left``."""
    _, baseline = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    cv2.putText(img, text, (left, bottom - baseline), _FONT, _FONT_SCALE, _INK, 1, cv2.LINE_AA)
