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
    model_row, e2e, conf = bench_segmenter(seg, frame, frames=4, warmup=1)
    assert (model_row.mode, e2e.mode, conf.mode) == ("model", "e2e", "e2e+conf")
    assert model_row.resolution == e2e.resolution == "64x96" and model_row.frames == 4
    for row in (model_row, e2e, conf):  # fps is 1 / the median time; p50 ≤ p90 ≤ p99
        assert row.fps == pytest.approx(1000.0 / row.p50_ms)
        assert row.p50_ms <= row.p90_ms <= row.p99_ms
    assert set(e2e.stages_ms) == {"preprocess", "infer", "crf", "postprocess", "render"}
    st = e2e.stages_ms
    assert e2e.overhead_pct == pytest.approx(100 * (st["preprocess"] + st["postprocess"] + st["render"]) / st["infer"])
    assert e2e.e2e_over_model == pytest.approx(e2e.p50_ms / model_row.p50_ms)
    assert conf.e2e_over_model == pytest.approx(conf.p50_ms / model_row.p50_ms)


def test_percentiles_take_fps_from_the_median_so_one_spike_does_not_move_it():
    from seg_ros.tools.timing import percentiles

    fps, p50, p90, p99 = percentiles([0.010] * 9 + [1.0])
    assert fps == pytest.approx(100.0) and p50 == pytest.approx(10.0)
    assert p50 <= p90 <= p99 and p99 > 500


def test_the_naive_baseline_runs_onnx_runtimes_on_the_onnx_file_and_asks_for_confidence_only_when_told(
        random_model_file, tmp_path):
    import torch

    from seg_ros.runtime.export import export_onnx
    from seg_ros.tools.naive import NaivePipeline, bench_naive

    onnx = tmp_path / "m.onnx"
    export_onnx(random_model_file, onnx, dynamic=True)
    frame = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    eager = NaivePipeline(random_model_file, (64, 96), torch.device("cpu"))
    ref = eager.segment(frame, ("labels", "color", "overlay", "confidence"))
    for runtime in ("onnxruntime", "openvino"):
        pytest.importorskip(runtime)
        naive = NaivePipeline(random_model_file, (64, 96), torch.device("cpu"), runtime=runtime, onnx=onnx)
        out = naive.segment(frame)
        assert set(out) == {"labels", "color", "overlay"}
        assert (out["labels"] == ref["labels"]).mean() > 0.99
        assert runtime in naive.describe().lower().replace(" ", "")
        rows = bench_naive(naive, frame, frames=2, warmup=1)
        assert [r.mode for r in rows] == ["model", "e2e", "e2e+conf"]
        assert all(r.backend == "naive" and r.vs_naive in (None, 1.0) for r in rows)
    assert ref["overlay"].dtype == np.uint8 and ref["confidence"].shape == (64, 96)
    with pytest.raises(ValueError, match="needs an ONNX file"):
        NaivePipeline(random_model_file, (64, 96), torch.device("cpu"), runtime="openvino")


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
    modes = ["model", "e2e", "e2e+conf"]
    assert [r["mode"] for r in rows] == modes * 4
    assert [r["backend"] for r in rows[::3]] == ["naive", "torch", "onnxruntime", "auto"]
    assert all(r["device"] == "cpu" and r["resolution"] == "64x96" for r in rows)
    assert all(r["precision"] == "fp32" for r in rows[:9]) and rows[9]["precision"] == "auto"
    by = {(r["backend"], r["mode"]): r for r in rows}
    # the naive baseline is written around the runtime of the lowest fp32 bare-network median
    fastest = min(("torch", "onnxruntime"), key=lambda b: by[(b, "model")]["p50_ms"])
    assert by[("naive", "e2e")]["resolved"] == f"{fastest} fp32" and fastest in by[("naive", "e2e")]["note"]
    resolved = by[("auto", "e2e")]["resolved"]
    assert resolved.split()[0] in ("openvino", "onnxruntime", "torch") and all(
        by[("auto", m)]["resolved"] == resolved for m in modes)
    e2e = [r for r in rows if r["mode"] != "model"]
    assert all(r["peak_host_mb"] > 50 and r["peak_gpu_mb"] is None and 0 <= r["miou"] <= 1 for r in e2e)
    for r in e2e:  # vs naive: ratio of the medians of the same mode
        assert r["vs_naive"] == pytest.approx(by[("naive", r["mode"])]["p50_ms"] / r["p50_ms"])
        assert r["e2e_over_model"] == pytest.approx(r["p50_ms"] / by[(r["backend"], "model")]["p50_ms"])
    # mIoU against the same backend's fp32 row; torch and ONNX Runtime run the same network
    assert by[("torch", "e2e")]["miou_delta_pts"] == by[("onnxruntime", "e2e")]["miou_delta_pts"] == 0.0
    assert by[("torch", "e2e")]["miou"] == pytest.approx(by[("onnxruntime", "e2e")]["miou"], abs=0.01)
    # first use: onnxruntime builds into an empty cache, then from it; torch has no cache
    ort_model = by[("onnxruntime", "model")]
    assert ort_model["build_cold_s"] > 0 and 0 < ort_model["build_warm_s"]
    assert by[("torch", "model")]["build_cold_s"] is None
    assert {(s["backend"], s["precision"]) for s in report["skipped"]} == {("torch", "fp16"), ("onnxruntime", "fp16")}
    printed = capsys.readouterr().out
    assert report["kind"] == "bench_speed" and report["command"].startswith("seg-ros bench speed --model ")
    written = {k: v for k, v in report.items() if k not in ("kind", "command")}
    assert BenchReport.from_json(report).to_json() == written  # the dataclasses carry every other key, in order
    assert format_table(BenchReport.from_json(report)).splitlines()[0] in printed
    assert printed.count("| 64x96 |") == 12 and "skipped torch fp16 on cpu at 64x96: torch fp16 needs CUDA" in printed
    assert f"| auto → {resolved.split()[0]} |" in printed
    # the targets' contenders timed in turn: auto end to end, the bare networks, naive end to end
    [turns] = report["interleaved"]
    assert (turns["device"], turns["resolution"], turns["frames"]) == ("cpu", "64x96", 3)
    assert (turns["auto"], turns["naive"]) == (resolved, f"{fastest} fp32")
    assert f"{fastest} fp32" in turns["bare_candidates"] and set(turns["bare_candidates"]) <= {
        "torch fp32", "onnxruntime fp32"}
    assert turns["bare_ms"] == min(turns["bare_candidates"].values()) == turns["bare_candidates"][turns["bare"]]
    assert all(turns[k] > 0 for k in ("auto_ms", "bare_ms", "naive_ms"))
    turns_row = BenchReport.from_json(report).interleaved[0]
    assert turns_row.vs_naive == pytest.approx(turns["naive_ms"] / turns["auto_ms"])
    assert f"| cpu | 64×96 | 3 | {resolved} |" in printed


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

    bench = Path(__file__).resolve().parents[1] / "docs" / "bench"
    path = bench / "bench_cpu_360x640_epyc.json"
    data = json.loads(path.read_text())
    report = load_report(path)
    assert report.to_json() == {k: v for k, v in data.items() if k not in ("kind", "command")}
    assert report.skipped[0].line().startswith("skipped ") and " on cpu at 360x640: " in report.skipped[0].line()
    assert report.interleaved[0].bare_ms == min(report.interleaved[0].bare_candidates.values())
    e2e = [r for r in report.rows if r.mode == "e2e"]
    table = doc_table(report).splitlines()
    assert len(table) >= 2 + 3 * len(e2e) and table[2].startswith("| model | naive → ")
    assert write_report(report, tmp_path / "r.json", data["command"]).read_text() == json.dumps(data, indent=2)
    # reports written before the contenders were timed in turn read back without them
    older = load_report(bench / "bench_cpu_512x1024_1024x2048.json")
    assert older.interleaved == [] and doc_table(older).splitlines()[2].startswith("| 512×1024 | naive → ")


def _row(mode, backend, precision, p50, miou=None, resolved=""):
    from seg_ros.tools.benchrow import BenchRow

    return BenchRow(mode, backend, "cpu", precision, "64x96", frames=3, fps=1000 / p50, p50_ms=p50, p99_ms=p50,
                    miou=miou, resolved=resolved)


def test_rows_compare_with_their_fp32_row_and_the_naive_baseline_by_medians():
    from seg_ros.tools.benchrow import compare_with_fp32, compare_with_naive, fastest_fp32

    rows = [_row("model", "openvino", "fp32", 30.0), _row("e2e", "openvino", "fp32", 34.0, miou=0.80),
            _row("model", "openvino", "int8", 15.0), _row("e2e", "openvino", "int8", 20.0, miou=0.795),
            _row("model", "onnxruntime", "fp32", 28.0), _row("e2e", "onnxruntime", "fp32", 33.0, miou=0.81),
            _row("model", "auto", "auto", 14.0, resolved="openvino int8"),
            _row("e2e+conf", "auto", "auto", 22.0, miou=0.79, resolved="openvino int8")]
    # the lowest fp32 bare-network median, never an int8 or an auto row however fast
    assert fastest_fp32(rows) is rows[4]
    assert fastest_fp32([r for r in rows if r.precision != "fp32"]) is None
    compare_with_fp32(rows)
    assert rows[1].miou_delta_pts == 0.0 and rows[3].miou_delta_pts == pytest.approx(-0.5)
    assert rows[7].miou_delta_pts == pytest.approx(-1.0)  # auto against the fp32 row of what it resolved to
    assert rows[0].miou_delta_pts is None and rows[6].miou_delta_pts is None
    naive = [_row("model", "naive", "fp32", 27.0), _row("e2e", "naive", "fp32", 40.0),
             _row("e2e+conf", "naive", "fp32", 44.0)]
    compare_with_naive(rows, naive)
    assert rows[3].vs_naive == pytest.approx(2.0) and rows[7].vs_naive == pytest.approx(2.0)
    assert rows[0].vs_naive is None


def test_contenders_timed_in_turn_take_turns_in_a_rotating_order():
    from seg_ros.tools.timing import time_interleaved

    order = []
    samples = time_interleaved([lambda: order.append("a"), lambda: order.append("b"), lambda: order.append("c")], 4)
    assert "".join(order) == "abc" + "bca" + "cab" + "abc"
    assert [len(s) for s in samples] == [4, 4, 4] and all(t >= 0 for s in samples for t in s)
