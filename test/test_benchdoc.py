"""docs/benchmarks.md's measurement tables are the renderings of the JSON reports under docs/bench/."""

import json
from pathlib import Path

import pytest

from seg_ros.evaluate import report as ev
from seg_ros.tools.benchdoc import main as benchdoc
from seg_ros.tools.benchdoc import marked_reports, render
from seg_ros.tools.doctables import TABLES, provenance, render_part, report_kind
from seg_ros.tools.reports import MachineHeader, report_json, write_report

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC = DOCS / "benchmarks.md"
HEAD = {"machine": "Test CPU (2 cores)", "date": "2026-01-02", "torch": "9.9"}


def table_lines(markdown: str) -> list[str]:
    return [ln for ln in markdown.splitlines() if ln.startswith("|")]


def test_every_marked_table_is_the_rendering_of_its_report():
    text = DOC.read_text()
    assert len(marked_reports(text)) >= 10
    assert render(text, DOC.parent) == text
    assert benchdoc(["--check", str(DOC)]) == 0


def test_every_report_under_docs_bench_is_rendered_in_the_docs():
    rendered = {(DOC.parent / path).resolve() for path, _ in marked_reports(DOC.read_text())}
    reports = {p.resolve() for p in (DOCS / "bench").glob("*.json")}
    assert reports and reports <= rendered
    assert all(p.exists() for p in rendered)


def test_every_report_under_docs_bench_says_which_benchmark_wrote_it_and_how():
    for path in (DOCS / "bench").glob("*.json"):
        data = json.loads(path.read_text())
        assert report_kind(data) in {kind for kind, _ in TABLES}, path.name
        assert data["command"].startswith("seg-ros "), path.name
        assert data["date"].startswith("20"), path.name


def test_a_table_edited_by_hand_is_put_back_and_check_fails_on_it(tmp_path):
    text = DOC.read_text()
    first = table_lines(text)[2]
    edited = text.replace(first, first.replace("|", "| 9 ", 1), 1)
    assert edited != text and render(edited, DOC.parent) == text
    copy = tmp_path / "benchmarks.md"
    copy.write_text(edited)
    for path, _ in marked_reports(text):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((DOC.parent / path).read_text())
    assert benchdoc(["--check", str(copy)]) == 1
    assert benchdoc([str(copy)]) == 0 and copy.read_text() == text


def test_the_kind_comes_first_and_the_command_last():
    data = report_json({"machine": "m", "date": "d", "rows": []}, command="seg-ros bench x")
    assert list(data) == ["machine", "date", "rows", "command"]
    data = report_json({"kind": "node_overhead", "rows": [], "command": "seg-ros a"}, command="seg-ros b")
    assert data == {"kind": "node_overhead", "rows": [], "command": "seg-ros a"}


def test_a_written_dataclass_report_carries_its_kind(tmp_path):
    from seg_ros.tools.bagbench import BagBenchReport

    path = write_report(BagBenchReport(MachineHeader(**HEAD), []), tmp_path / "b.json", command="seg-ros bench bag")
    assert json.loads(path.read_text()) == {"kind": "bag_read", **HEAD, "bag_read": [],
                                            "command": "seg-ros bench bag"}


def test_provenance_is_date_machine_versions_and_the_command():
    text = provenance({**HEAD, "command": "seg-ros bench node --frames 3"})
    assert text == ("2026-01-02, Test CPU (2 cores); torch 9.9:\n\n```bash\nseg-ros bench node --frames 3\n```")
    assert provenance({"date": "2026-01-02 10:00:00"}) == "2026-01-02 10:00:00:"


def test_an_unknown_kind_or_part_is_an_error():
    with pytest.raises(ValueError, match="no table for kind 'nothing'"):
        render_part({"kind": "nothing"})
    with pytest.raises(ValueError, match="part 'speed'"):
        render_part({"kind": "soak"}, "speed")


def _speed_row(mode, backend, resolution, fps, **extra):
    return {"mode": mode, "backend": backend, "device": "cpu", "precision": "fp32", "resolution": resolution,
            "frames": 5, "fps": fps, "p50_ms": 1000 / fps, "p99_ms": 1100 / fps, "stages_ms": {}, "overhead_pct": None,
            "peak_host_mb": 400.0, "peak_gpu_mb": None, "miou": None, "vs_naive": None, "note": "", **extra}


def test_a_speed_report_of_one_size_has_a_line_per_row():
    stages = {"preprocess": 0.5, "infer": 20.0, "crf": 0.0, "postprocess": 3.0, "render": 1.0}
    data = {"kind": "bench_speed", **HEAD, "model": "m", "versions": {"torch": "9.9", "onnxruntime": "1.0"},
            "accuracy_frames": 2, "skipped": [], "command": "seg-ros bench speed",
            "rows": [_speed_row("model", "torch", "360x640", 48.04),
                     _speed_row("e2e", "torch", "360x640", 37.1, stages_ms=stages, overhead_pct=22.5, miou=0.8081,
                                vs_naive=2.834),
                     _speed_row("e2e", "auto", "360x640", 40.0, p90_ms=26.0, e2e_over_model=1.2, miou=0.8,
                                miou_delta_pts=-0.81, precision="auto", resolved="openvino int8")]}
    text = render_part(data)
    assert text.startswith("2026-01-02, Test CPU (2 cores); torch 9.9, onnxruntime 1.0:")
    rows = table_lines(text)
    assert rows[0].startswith("| mode | backend | precision | fps | p50 ms | p90 ms | p99 ms |")
    assert rows[2] == "| model | torch | fp32 | 48.0 | 20.8 |  | 22.9 |  |  |  |  |  |  | 400 |  |  |  |"
    assert rows[3] == ("| e2e | torch | fp32 | 37.1 | 27.0 |  | 29.6 | 0.5 | 20.0 | 3.0 | 1.0 |  | 22.5% | 400 | 80.8 "
                       "|  | 2.83× |")
    assert rows[4] == ("| e2e | auto → openvino | auto → int8 | 40.0 | 25.0 | 26.0 | 27.5 |  |  |  |  | 1.20× |  "
                       "| 400 | 80.0 | -0.81 |  |")


def test_a_speed_report_of_several_sizes_pairs_model_and_e2e():
    data = {"kind": "bench_speed", **HEAD, "model": "m", "versions": {}, "accuracy_frames": 2, "skipped": [],
            "rows": [_speed_row("model", "naive", "512x1024", 5.851, p90_ms=180.0),
                     _speed_row("e2e", "naive", "512x1024", 4.63, resolved="openvino fp32"),
                     _speed_row("e2e+conf", "naive", "512x1024", 4.0),
                     _speed_row("model", "naive", "1024x2048", 0.8681),
                     _speed_row("e2e", "naive", "1024x2048", 0.6951)]}
    rows = table_lines(render_part(data))
    assert len(rows) == 4 and rows[2].startswith("| 512×1024 | naive → openvino | fp32 | 170.9 | 180.0 | 216.0 |")
    assert "| +34.0 |" in rows[2]  # e2e with confidence − e2e, medians
    assert rows[3].startswith("| 1024×2048 | naive | fp32 | 1151.9 |  | 1438.6 |")


def test_first_use_cost_and_the_targets_are_computed_from_the_rows():
    rows = [_speed_row("model", "openvino", "360x640", 200.0, build_cold_s=4.25, build_warm_s=0.5),
            _speed_row("model", "onnxruntime", "360x640", 100.0, build_cold_s=3.0, build_warm_s=0.25),
            _speed_row("model", "naive", "360x640", 400.0),
            _speed_row("e2e", "auto", "360x640", 180.0, precision="auto", resolved="openvino fp32", vs_naive=3.5)]
    data = {"kind": "bench_speed", **HEAD, "model": "m", "versions": {}, "accuracy_frames": 2, "skipped": [],
            "rows": rows}
    text = render_part(data)
    assert "| 360×640 | openvino | fp32 | 4.25 | 0.50 |" in text
    assert "| 360×640 | onnxruntime | fp32 | 3.00 | 0.25 |" in text
    targets = [ln for ln in text.splitlines() if ln.startswith("- ")]
    # the best bare network is openvino's 5.0 ms, not the naive baseline's 2.5 ms; auto takes 5.6 ms
    assert targets[0].endswith("5.6 ms vs 5.0 ms (openvino fp32) = 1.11×: **met**")
    assert targets[1].endswith("3.50×: **met**")
    data["rows"][3]["vs_naive"], data["rows"][3]["p50_ms"] = 2.9, 7.0
    targets = [ln for ln in render_part(data).splitlines() if ln.startswith("- ")]
    assert targets[0].endswith("= 1.40×: **not met**") and targets[1].endswith("2.90×: **not met**")
    del data["rows"][3]
    assert not [ln for ln in render_part(data).splitlines() if ln.startswith("- ")]


def test_a_node_overhead_report():
    row = {"messages": "rclpy", "device": "cpu", "resolution": "360x640", "input_encoding": "bgr8",
           "pipeline_ms": 72.94, "deserialize_ms": 0.12, "decode_ms": 0.02, "build_ms": 0.39, "serialize_ms": 0.33,
           "overhead_ms": 0.41, "overhead_pct": 0.56, "overhead_with_serialization_pct": 1.2}
    rows = table_lines(render_part({"kind": "node_overhead", **HEAD, "model": "m", "rows": [row]}))
    assert rows[2] == "| rclpy | cpu | 360x640 | bgr8 | 72.9 | 0.12 | 0.02 | 0.39 | 0.33 | 0.41 | 0.6% | 1.2% |"


def test_a_soak_report():
    data = {"kind": "soak", **HEAD, "frames": 6000, "seconds": 28.49, "submitted": 6000, "processed": 766,
            "dropped": 5228, "bad_frames": 6, "errors": 0, "published": {"labels": 766, "color": 193},
            "param_changes": 150, "params_rejected": 25, "reloads": 25, "rss_mb_at_1000": 338.3, "rss_mb_end": 346.8,
            "rss_growth_pct": 2.512, "rss_samples_mb": [[0, 300.0]], "problems": [], "rss_mb_start": 300.0,
            "rss_mb_peak": 347.0, "ok": True, "command": "seg-ros soak --frames 6000"}
    rows = table_lines(render_part(data))
    assert "| published color / labels |" in rows[0]
    assert rows[2] == ("| 6000 | 28.5 | 766 | 5228 | 6 | 0 | 150 | 25 | 25 | 193 / 766 | 338.3 MB "
                       "| 346.8 MB (+2.51%) | OK |")
    data["problems"] = ["a frame lost"]
    assert table_lines(render_part(data))[2].endswith("| 1 problem(s) |")


def test_bag_read_and_evaluate_overhead_reports():
    bag = {"storage": "mcap", "frames": 500, "resolution": "360x640", "encoding": "rgb8", "bag_mb": 345.7,
           "write_fps": 554.3, "read_fps": 894.4, "read_mb_s": 618.4, "read_cpu_fps": 969.2}
    rows = table_lines(render_part({"kind": "bag_read", **HEAD, "bag_read": [bag]}))
    assert rows[2] == "| mcap | 500 | 360x640 | rgb8 | 345.7 | 554.3 | 894.4 | 618.4 | 969.2 |"
    ev = {"model": "m", "frames": 20, "resolution": "360x640", "pipeline_ms": 143.7, "pipeline_fps": 6.96,
          "overhead_ms": {"read": 1.4, "decode": 0.26, "score": 1.23, "write": 5.15}, "overhead_total_ms": 8.04,
          "overhead_pct": 5.59, "report_write_s": 2.7, "miou": None}
    rows = table_lines(render_part({"kind": "evaluate_overhead", **HEAD, "evaluate": ev}))
    assert rows[2] == "| 20 | 360x640 | 143.7 | 1.40 | 0.26 | 1.23 | 5.15 | 8.04 | 5.6% | 2.70 |"


def test_a_crf_report_gives_its_speed_and_each_accuracy_test_as_separate_tables():
    speed = [{"method": "exact", "device": "cpu", "resolution": "512x1024", "classes": 19, "iterations": 5,
              "grid_step": 1, "confidence_threshold": 0.0, "frames": 5, "p50_ms": 922.6, "mean_ms": 930.0,
              "cpu_ms": 936.5, "refined_pct": 100.0},
             {"method": "fast", "device": "cpu", "resolution": "512x1024", "classes": 19, "iterations": 5,
              "grid_step": 3, "confidence_threshold": 0.9, "frames": 5, "p50_ms": 276.5, "mean_ms": 280.0,
              "cpu_ms": 440.7, "refined_pct": 70.2, "speedup": 3.34, "cpu_speedup": 2.12, "agreement_pct": 99.6}]
    variants = {"none": {"miou": 80.53, "gain": 0.0, "iou": [0.9], "agreement_pct": 97.08},
                "exact": {"miou": 83.76, "gain": 3.23, "iou": [0.9], "ms_per_frame": 1417.2, "agreement_pct": 100.0}}
    data = {"kind": "bench_crf", **HEAD, "exact_available": True, "speed": speed,
            "accuracy": {"synthetic": {"frames": 8, "variants": variants}}}
    rows = table_lines(render_part(data, "speed"))
    assert rows[2] == "| exact | cpu | 512x1024 | 19 | 5 | full resolution | off | 100% | 922.6 | 936.5 |  |  |"
    assert rows[3] == ("| fast | cpu | 512x1024 | 19 | 5 | 1/3 grid | < 0.9 | 70% | 276.5 | 440.7 | 3.3× / 2.1× "
                       "| 99.60% |")
    rows = table_lines(render_part(data, "synthetic"))
    assert rows[2:] == ["| no CRF | 80.53 | — | 97.08% | 0 |", "| exact | 83.76 | +3.23 | 100.00% | 1,417 |"]
    with pytest.raises(KeyError):
        render_part(data, "camvid")


def _evaluation(params: str | None) -> dict:
    stats = ev.LatencyStats(p50=39.94, p90=41.0, p99=43.91, max=50.0, mean=40.0)
    report = ev.EvaluationReport(
        seg_ros_version="0", date="2026-01-02 10:00:00", command="seg-ros evaluate --bag b",
        bag=ev.BagSummary("b", "sqlite3", 9, 10.0, 303, "/camera/image_raw", "sensor_msgs/msg/Image"),
        ground_truth=ev.GroundTruthSource(topic="/gt"),
        model=ev.ModelSummary("d", "p", "a", "camvid", ("Sky", "Pole"), 255, "360x480", None, "openvino", "bf16"),
        settings={"params_file": params} if params else {},
        frames=ev.FrameCounts(101, 101, 0, (), 0, 0, "360x480"),
        metrics=ev.Accuracy(0.6853, 0.9332, {"Sky": 0.9316, "Pole": None}, {"Sky": 0.95, "Pole": None}, 10,
                         ((1, 0), (0, 1))),
        latency_ms={"total": stats}, fps=24.76, throughput_fps=24.0, overhead_ms={}, overhead_pct=3.44,
        out_bag=None)
    return report.to_json()


def test_an_evaluation_gives_a_summary_and_a_per_class_table():
    data = _evaluation("config/camvid.yaml")
    assert data["format"] == ev.REPORT_FORMAT and report_kind(data) == "evaluation"
    text = render_part(data, "summary")
    assert text.startswith("2026-01-02 10:00:00:\n\n```bash\nseg-ros evaluate --bag b\n```")
    assert table_lines(text)[2] == ("| `config/camvid.yaml` | openvino bf16 | 360x480 | 0.685 | 0.933 | 101 of 101 "
                                    "| 24.76 | 39.9 | 43.9 | 3.4% |")
    defaults = table_lines(render_part(_evaluation(None), "summary"))[2]
    assert defaults.startswith("| defaults | openvino bf16 | 360x480 |")
    rows = table_lines(render_part(data, "classes"))
    assert rows[0] == "| model resolution | mIoU | Sky | Pole |" and rows[2] == "| 360x480 | 0.685 | 0.932 |  |"
