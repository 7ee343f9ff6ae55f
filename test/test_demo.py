"""``seg-ros demo``: the drive bag, the report, the segmented bag, the overlay video and the contact sheet."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seg_ros.core.labels import CAMVID
from seg_ros.io.bags import BagReader
from seg_ros.tools.demo import (
    CONTACT_SHEET,
    DEMO_FPS,
    OVERLAY_VIDEO,
    PANEL_MAX_WIDTH,
    SheetRow,
    contact_sheet,
    run_demo,
    sheet_layout,
)

FRAMES, SIZE = 4, (180, 320)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One small demo run on the CPU: (output folder, report, logged lines)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    lines: list[str] = []
    report = run_demo(out, frames=FRAMES, size=SIZE, device="cpu", progress=False, log=lines.append)
    return out, report, lines


def _frames(bag, topic: str, labels: bool = False) -> list[np.ndarray]:
    with BagReader(bag) as r:
        return [m.to_labels() if labels else m.to_rgb() for m in r.images(topic)]


@pytest.mark.slow  # the demo fixture runs the demo once (about 4 s)
def test_demo_writes_a_bag_evaluates_it_and_reports(demo):
    out, report, lines = demo
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.png", CONTACT_SHEET, "drive_bag", "iou_per_class.png", "latency_histogram.png",
        OVERLAY_VIDEO, "report.json", "report.md", "segmented_bag"]
    assert json.loads((out / "report.json").read_text()) == report.to_json()
    assert report.frames.scored == FRAMES and report.frames.missing_gt == 0
    assert set(report.latency_ms) == {"preprocess", "infer", "crf", "postprocess", "render", "total"}
    assert report.fps > 0
    assert "mIoU" in (out / "report.md").read_text()
    with BagReader(out / "segmented_bag") as r:
        assert r.info.topic("/segmentation_node/overlay").count == FRAMES
    assert any("report.md" in line for line in lines) and any("ros2 bag play" in line for line in lines)
    assert not list(out.glob(".seg-ros-partial-*"))
    assert report.metrics.miou > 0.6


@pytest.mark.slow
def test_demo_summary_names_the_video_and_the_sheet_first(demo):
    out, _, lines = demo
    summary = lines[lines.index("") + 1:]
    assert summary[0].startswith("Video:") and str(out / OVERLAY_VIDEO) in summary[0]
    assert summary[1].startswith("Sheet:") and str(out / CONTACT_SHEET) in summary[1]
    assert summary[2].startswith("Report:")
    assert summary[3] == "Charts:  " + ", ".join(str(out / name) for name in (
        "iou_per_class.png", "confusion_matrix.png", "latency_histogram.png"))


@pytest.mark.slow
def test_demo_video_holds_every_overlay_frame(demo):
    out, _, _ = demo
    overlays = _frames(out / "segmented_bag", "/segmentation_node/overlay")
    cap = cv2.VideoCapture(str(out / OVERLAY_VIDEO))
    try:
        assert cap.isOpened()
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
        assert (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))) == SIZE
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(DEMO_FPS)
        decoded = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            decoded.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    assert len(decoded) == FRAMES
    for i, got in enumerate(decoded):  # a lossy codec: each frame is close to its own overlay only
        errors = [np.abs(got.astype(int) - o.astype(int)).mean() for o in overlays]
        assert int(np.argmin(errors)) == i and errors[i] < 8.0, errors


@pytest.mark.slow
def test_demo_contact_sheet_shows_input_overlay_and_ground_truth(demo):
    out, _, _ = demo
    sheet = cv2.cvtColor(cv2.imread(str(out / CONTACT_SHEET)), cv2.COLOR_BGR2RGB)
    layout = sheet_layout(SIZE, FRAMES, CAMVID)
    assert sheet.shape == (*layout.size, 3)
    assert layout.size[1] > 3 * SIZE[1] and layout.size[0] > FRAMES * SIZE[0]
    images = _frames(out / "drive_bag", "/camera/image_raw")
    gts = _frames(out / "drive_bag", "/camera/gt_labels", labels=True)
    overlays = _frames(out / "segmented_bag", "/segmentation_node/overlay")
    for row in range(FRAMES):  # four frames: each one is its own row, in order, unscaled (320 <= 480 px)
        panels = [sheet[layout.panel(row, col)] for col in range(3)]
        np.testing.assert_array_equal(panels[0], images[row])
        np.testing.assert_array_equal(panels[1], overlays[row])
        np.testing.assert_array_equal(panels[2], CAMVID.colorize(gts[row]))
        assert not np.array_equal(panels[0], panels[1]) and not np.array_equal(panels[1], panels[2])
    for (y, x), color in zip(layout.legend, CAMVID.colors):  # each legend swatch is drawn in its class colour
        assert tuple(sheet[y + layout.line_px // 2, x + 3]) == color


def _rows(h: int, w: int, n: int) -> list[SheetRow]:
    rng = np.random.default_rng(0)
    return [SheetRow(f"row {i}", rng.integers(0, 256, (h, w, 3), np.uint8), np.full((h, w, 3), 40 * i, np.uint8),
                     rng.integers(0, CAMVID.num_classes, (h, w), np.uint8)) for i in range(n)]


def test_contact_sheet_scales_wide_frames_down():
    h, w = 270, 2 * PANEL_MAX_WIDTH
    rows = _rows(h, w, 2)
    sheet = contact_sheet(rows, CAMVID)
    layout = sheet_layout((h, w), 2, CAMVID)
    ph, pw = layout.panel_hw
    assert (ph, pw) == (h // 2, PANEL_MAX_WIDTH)
    assert sheet.shape == (*layout.size, 3) and 3 * pw < layout.size[1] < 3 * w
    np.testing.assert_array_equal(sheet[layout.panel(1, 1)], np.full((ph, pw, 3), 40, np.uint8))
    np.testing.assert_array_equal(sheet[layout.panel(0, 2)], cv2.resize(CAMVID.colorize(rows[0].gt), (pw, ph),
                                                                        interpolation=cv2.INTER_AREA))


def test_contact_sheet_wraps_the_legend_of_narrow_frames():
    wide = sheet_layout((360, 640), 1, CAMVID)
    narrow = sheet_layout((90, 160), 1, CAMVID)
    assert len({y for y, _ in wide.legend}) == 1  # all eleven classes on one line
    assert len({y for y, _ in narrow.legend}) > 1
    assert all(x < narrow.size[1] for _, x in narrow.legend)
    sheet = contact_sheet(_rows(90, 160, 1), CAMVID)
    assert sheet.shape == (*narrow.size, 3)
    for (y, x), color in zip(narrow.legend, CAMVID.colors):
        assert tuple(sheet[y + narrow.line_px // 2, x + 3]) == color
