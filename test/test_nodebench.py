"""``seg-ros bench node``'s bookkeeping on real message types (it reports times; nothing asserts speed)."""

import json

import pytest

from seg_ros.cli import main
from seg_ros.pipeline import Segmenter
from seg_ros.ros.tools.nodebench import bench_node, format_node_table, rclpy_kit, rosbags_kit
from seg_ros.synthetic import generate_scene


@pytest.mark.parametrize("kit_name", ["rosbags", pytest.param("rclpy", marks=pytest.mark.ros)])
def test_node_overhead_row(random_model_file, kit_name):
    kit = rosbags_kit() if kit_name == "rosbags" else rclpy_kit()
    if kit is None:
        pytest.skip("rclpy is not importable")
    seg = Segmenter(random_model_file, resolution=(64, 96), device="cpu")
    row = bench_node(seg, generate_scene(1, (64, 96)).image, kit, frames=2, warmup=1)
    assert row.messages == kit_name and row.resolution == "64x96" and row.input_encoding == "bgr8"
    assert row.overhead_ms == pytest.approx(row.decode_ms + row.build_ms)
    assert row.overhead_pct == pytest.approx(100 * row.overhead_ms / row.pipeline_ms)
    assert min(row.pipeline_ms, row.decode_ms, row.build_ms, row.serialize_ms, row.deserialize_ms) > 0


def test_bench_node_command(random_model_file, tmp_path, capsys):
    out = tmp_path / "node.json"
    assert main(["bench", "node", "--model", str(random_model_file), "--resolution", "64x96", "--frames", "2",
                 "--warmup", "1", "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["kind"] == "node_overhead" and report["rows"][0]["messages"] == "rosbags"
    assert {r["messages"] for r in report["rows"]} <= {"rosbags", "rclpy"}
    assert format_node_table(report).splitlines()[0] in capsys.readouterr().out
