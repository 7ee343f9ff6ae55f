"""The benchmark's bookkeeping (it reports times; nothing here asserts on how fast anything is)."""

import json

import numpy as np
import pytest

from seg_ros.cli import main
from seg_ros.pipeline import Segmenter
from seg_ros.tools.bench import bench_devices, bench_segmenter
from seg_ros.tools.benchrow import BenchReport, format_table
from seg_ros.tools.reports import write_report


@pytest.mark.slow
def test_bench_rows_and_overhead(random_model_file):
    seg = Segmenter(random_model_file, resolution=(64, 96), device="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    model_row, e2e = bench_segmenter(seg, frame, frames=4, warmup=1)
    assert model_row.mode == "model" and e2e.mode == "e2e"
    assert model_row.resolution == e2e.resolution == "64x96" and model_row.frames == 4
    assert model_row.fps > 0 and model_row.p50_ms <= model_row.p99_ms
    for row in (model_row, e2e):  # fps is frames per second of the same samples the latencies come from
        assert 0.25 <= row.fps * row.p50_ms / 1000.0 <= 4.0
    assert set(e2e.stages_ms) == {"preprocess", "infer", "crf", "postprocess", "render"}
    st = e2e.stages_ms
    assert e2e.overhead_pct == pytest.approx(100 * (st["preprocess"] + st["postprocess"] + st["render"]) / st["infer"])


@pytest.mark.slow
def test_bench_command_prints_a_table_and_writes_json(random_model_file, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "speed", "--model", str(random_model_file), "--resolution", "64x96", "--device", "cpu",
               "--frames", "3", "--warmup", "1", "--json", str(out), "--backend", "torch", "--backend", "onnxruntime",
               "--precision", "fp32", "--precision", "fp16", "--accuracy-frames", "2", "--quiet",
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [(r["backend"], r["mode"]) for r in rows] == [
        ("naive", "model"), ("naive", "e2e"), ("torch", "model"), ("torch", "e2e"),
        ("onnxruntime", "model"), ("onnxruntime", "e2e")]
    assert all(r["device"] == "cpu" and r["precision"] == "fp32" and r["resolution"] == "64x96" for r in rows)
    e2e = [r for r in rows if r["mode"] == "e2e"]
    assert all(r["peak_host_mb"] > 50 and r["peak_gpu_mb"] is None and 0 <= r["miou"] <= 1 for r in e2e)
    naive_fps = e2e[0]["fps"]
    assert e2e[0]["vs_naive"] == 1.0
    for r in e2e[1:]:
        assert r["vs_naive"] == pytest.approx(r["fps"] / naive_fps)
    # torch and ONNX Runtime run the same network: the same accuracy on the same scenes
    assert e2e[1]["miou"] == pytest.approx(e2e[2]["miou"], abs=0.01)
    assert {(s["backend"], s["precision"]) for s in report["skipped"]} == {("torch", "fp16"), ("onnxruntime", "fp16")}
    printed = capsys.readouterr().out
    assert report["kind"] == "bench_speed" and report["command"].startswith("seg-ros bench speed --model ")
    written = {k: v for k, v in report.items() if k not in ("kind", "command")}
    assert BenchReport.from_json(report).to_json() == written  # the dataclasses carry every other key, in order
    assert format_table(BenchReport.from_json(report)).splitlines()[0] in printed
    assert printed.count("| 64x96 |") == 6 and "skipped torch fp16 on cpu at 64x96: torch fp16 needs CUDA" in printed


def test_write_report_is_atomic(tmp_path):
    p = write_report({"rows": []}, tmp_path / "sub" / "b.json")
    assert json.loads(p.read_text()) == {"rows": []}
    assert [x.name for x in p.parent.iterdir()] == ["b.json"]


def test_bag_read_benchmark_reads_every_frame_in_both_storages(tmp_path, capsys):
    out = tmp_path / "bags.json"
    assert main(["bench", "bag", "--frames", "6", "--resolution", "48x64", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report) == ["kind", "machine", "date", "torch", "bag_read", "command"]
    assert report["kind"] == "bag_read" and report["command"].startswith("seg-ros bench bag --frames 6 ")
    rows = report["bag_read"]
    assert [r["storage"] for r in rows] == ["sqlite3", "mcap"]
    for r in rows:
        assert (r["frames"], r["resolution"], r["encoding"]) == (6, "48x64", "rgb8")
        assert r["read_fps"] > 0 and r["write_fps"] > 0 and r["read_cpu_fps"] > 0
        assert r["bag_mb"] >= 6 * 48 * 64 * 3 / 1e6
    printed = capsys.readouterr().out
    assert "| sqlite3 | 6 | 48x64 | rgb8 |" in printed and "| mcap | 6 |" in printed


def test_evaluate_benchmark_splits_overhead_from_pipeline_time(random_model_file):
    from seg_ros.tools.bagbench import bench_evaluate, format_evaluate_table

    ev = bench_evaluate(str(random_model_file), frames=3, size=(48, 64), device="cpu")
    assert ev.frames == 3 and ev.resolution == "48x64"
    assert set(ev.overhead_ms) == {"read", "decode", "score", "write"}
    assert ev.overhead_total_ms == pytest.approx(sum(ev.overhead_ms.values()), abs=1e-2)
    assert ev.overhead_pct == pytest.approx(100 * ev.overhead_total_ms / ev.pipeline_ms, rel=0.05, abs=0.05)
    assert format_evaluate_table(ev).count("\n") == 2


@pytest.mark.slow
def test_evaluate_benchmark_command_writes_its_report(random_model_file, tmp_path, capsys):
    out = tmp_path / "ev.json"
    assert main(["bench", "evaluate", "--model", str(random_model_file), "--frames", "2", "--resolution", "48x64",
                 "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report) == ["kind", "machine", "date", "torch", "evaluate", "command"]
    assert report["kind"] == "evaluate_overhead" and report["evaluate"]["frames"] == 2
    assert "| 2 | 48x64 |" in capsys.readouterr().out


def test_auto_devices_are_the_cpu_and_the_first_gpu_when_there_is_one():
    import torch

    assert bench_devices(None) == bench_devices(["auto"]) == (["cpu", "cuda:0"] if torch.cuda.is_available()
                                                                else ["cpu"])
    assert bench_devices(["cpu", "auto", "cpu"])[0] == "cpu" and bench_devices(["cuda:1"]) == ["cuda:1"]


def test_a_speed_report_reads_back_into_the_dataclasses_it_was_written_from(tmp_path):
    from pathlib import Path

    from seg_ros.tools.benchdoc import doc_table, load_report

    path = Path(__file__).resolve().parents[1] / "docs" / "bench" / "bench_cpu_512x1024_1024x2048.json"
    data = json.loads(path.read_text())
    report = load_report(path)
    assert report.to_json() == {k: v for k, v in data.items() if k not in ("kind", "command")}
    assert report.skipped[0].line() == "skipped torch int8 on cpu at 512x1024: torch has no int8"
    table = doc_table(report).splitlines()
    assert len(table) == 2 + 8 and table[2].startswith("| 512×1024 | naive | fp32 |")
    assert write_report(report, tmp_path / "r.json", data["command"]).read_text() == json.dumps(data, indent=2)
