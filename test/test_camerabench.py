"""``seg-ros bench cameras``: its report and tables, its one-sentence error without ROS, and a tiny real run."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

from seg_ros.cli import main
from seg_ros.ros.tools.camerabench_report import (
    NODE_PER_CAMERA,
    ONE_NODE,
    CameraBenchReport,
    CameraComparison,
    CameraStats,
    LayoutRun,
)
from seg_ros.tools.doctables import render_part
from seg_ros.tools.reports import report_json

PIPELINE = "liteseg_mobilenetv2 (x.safetensors, camvid, 11 classes) at 360x640 on openvino on cpu (bf16)"


def layout_run(layout: str, fps_per_camera: list[float], rss_mb: float, note: str = "") -> LayoutRun:
    cams = [CameraStats(f"cam{i}", sent=300, frames=round(10 * fps), fps=fps, latency_p50_ms=40.0 + i,
                        latency_p99_ms=90.0 + i) for i, fps in enumerate(fps_per_camera)]
    return LayoutRun(layout=layout, cameras=len(cams), processes=1 if layout == ONE_NODE else len(cams),
                     pipelines=[PIPELINE + note], seconds=10.0, fps=sum(fps_per_camera), rss_mb_end=rss_mb,
                     rss_mb_peak=rss_mb + 5, per_camera=cams)


def hand_made_report() -> CameraBenchReport:
    comparisons = [
        CameraComparison(1, layout_run(ONE_NODE, [20.0], 500.0), layout_run(NODE_PER_CAMERA, [20.0], 500.0)),
        CameraComparison(4, layout_run(ONE_NODE, [10.0, 10.0, 10.0, 10.0], 600.0, " [precision auto: 1.6x]"),
                         layout_run(NODE_PER_CAMERA, [8.0, 8.0, 8.0, 8.0], 2000.0, " [precision auto: 1.7x]")),
    ]
    return CameraBenchReport(machine="Test CPU (2 cores)", date="2026-01-02", versions={"torch": "9.9", "rclpy": "1"},
                             model="m", device="cpu", backend="auto", precision="auto", resolution="360x640",
                             rate_hz=30.0, seconds=10.0, warmup_s=5.0, input_qos="reliable depth 1",
                             outputs=["labels"], comparisons=comparisons)


def table_rows(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in markdown.splitlines()
            if ln.startswith("|") and not ln.startswith("|---")]


def test_the_doc_table_shows_every_run_the_ratios_and_the_targets():
    report = hand_made_report()
    data = report_json(report, command="seg-ros bench cameras --seconds 10")
    assert data["kind"] == "camera_bench" and data["comparisons"][1]["fps_ratio"] == pytest.approx(1.25)
    text = render_part(json.loads(json.dumps(data)))
    assert text.startswith("2026-01-02, Test CPU (2 cores); torch 9.9, rclpy 1:")
    assert "seg-ros bench cameras --seconds 10" in text
    assert f"pipeline: {PIPELINE}." in text  # the notes that differ between processes are left out
    rows = table_rows(text)
    runs = [r for r in rows if r[1] in (ONE_NODE, NODE_PER_CAMERA)]
    assert [(r[0], r[1], r[2], r[4]) for r in runs] == [
        ("1", ONE_NODE, "1", "20.0"), ("1", NODE_PER_CAMERA, "1", "20.0"),
        ("4", ONE_NODE, "1", "40.0"), ("4", NODE_PER_CAMERA, "4", "32.0")]
    assert runs[3][5] == "8.0 / 8.0 / 8.0 / 8.0" and runs[3][6] == "40 / 41 / 42 / 43"
    assert runs[2][8:] == ["600", "605"]
    ratios = [r for r in rows if r[0] in ("1", "4") and r[1].count("/") == 1]
    assert ratios == [["1", "20.0 / 20.0", "1.00×", "500 / 500", "1.00×"],
                      ["4", "40.0 / 32.0", "1.25×", "600 / 2,000", "0.30×"]]
    assert "2,000 MB = 0.30×: **met**" in text
    assert "40.0 fps vs 32.0 fps = 1.25×: **not met**" in text


def test_the_report_reads_back_from_its_json():
    report = hand_made_report()
    back = CameraBenchReport.from_json(json.loads(json.dumps(report_json(report, command="seg-ros bench cameras"))))
    assert back == report
    assert back.comparisons[1].rss_ratio == pytest.approx(0.3) and back.comparisons[1].one_node.frames == 400


def test_without_rclpy_the_command_says_so_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rclpy", None)  # import rclpy now raises ImportError
    out = tmp_path / "cameras.json"
    assert main(["bench", "cameras", "--cameras", "1", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seg-ros bench: error: ") and "rclpy" in err[0], err
    assert not out.exists()


def test_memory_is_the_sum_over_live_processes_and_latency_percentiles_need_samples():
    import subprocess

    from seg_ros.ros.tools.camerabench import latency_percentiles, process_rss_mb

    own = process_rss_mb([os.getpid()])
    assert own is not None and own > 10 and process_rss_mb([os.getpid(), os.getpid()]) == pytest.approx(2 * own, 0.1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert process_rss_mb([os.getpid(), gone.pid]) is None
    assert latency_percentiles([]) == (None, None)
    assert latency_percentiles([float(v) for v in range(1, 101)]) == pytest.approx((50.5, 99.01))


def child_node_processes() -> list[int]:
    """Processes of seg_ros.ros.node whose parent is this process."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"seg_ros.ros.node" in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.ros
@pytest.mark.slow
def test_a_tiny_real_run_measures_both_layouts_for_every_camera(tmp_path):
    """1 and 2 cameras at 64x96, 3 s at 10 Hz; torch fp32 instead of auto, which would measure its precisions at
    every start."""
    pytest.importorskip("rclpy")
    from seg_ros.ros.tools.camerabench import run_camera_bench

    report = run_camera_bench((1, 2), model="liteseg_mobilenetv2_synthetic", resolution=(64, 96), rate_hz=10.0,
                              seconds=3.0, warmup_s=1.0, backend="torch", precision="fp32", log_dir=tmp_path)
    assert child_node_processes() == []
    assert report.problems == [], report.problems
    assert [c.cameras for c in report.comparisons] == [1, 2]
    for c in report.comparisons:
        for run, processes in ((c.one_node, 1), (c.node_per_camera, c.cameras)):
            assert (run.cameras, run.processes) == (c.cameras, processes)
            assert [s.camera for s in run.per_camera] == [f"cam{i}" for i in range(c.cameras)]
            assert run.pipelines and all("at 64x96 on torch on cpu (fp32)" in p for p in run.pipelines)
            for s in run.per_camera:
                assert 0 < s.frames <= s.sent, s
                assert 0 < s.latency_p50_ms <= s.latency_p99_ms and math.isfinite(s.latency_p99_ms), s
            assert run.fps == pytest.approx(run.frames / run.seconds)
            assert 50 * processes < run.rss_mb_end <= run.rss_mb_peak
        assert c.fps_ratio > 0 and c.rss_ratio > 0
    assert report.comparisons[1].node_per_camera.rss_mb_end > report.comparisons[1].one_node.rss_mb_end
    data = json.loads(json.dumps(report_json(report, command="seg-ros bench cameras")))
    assert CameraBenchReport.from_json(data) == report
    runs = [r for r in table_rows(render_part(data)) if r[1] in (ONE_NODE, NODE_PER_CAMERA)]
    assert [(r[0], r[1]) for r in runs] == [("1", ONE_NODE), ("1", NODE_PER_CAMERA), ("2", ONE_NODE),
                                            ("2", NODE_PER_CAMERA)]


@pytest.mark.ros
@pytest.mark.slow
def test_a_node_that_cannot_start_ends_the_run_with_one_sentence_and_no_process_left(tmp_path):
    pytest.importorskip("rclpy")
    from seg_ros.core.errors import SegRosError
    from seg_ros.ros.tools.camerabench import run_camera_bench

    with pytest.raises(SegRosError, match=r"node seg_cameras did not become ready \(exited with status 2\)"):
        run_camera_bench((2,), model="no_such_model", resolution=(64, 96), seconds=1.0, log_dir=tmp_path)
    assert child_node_processes() == []
