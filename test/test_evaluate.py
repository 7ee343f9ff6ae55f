"""seg-ros evaluate on real bags written to tmp paths, with a real (random-weight) model file."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seg_ros.cli import main
from seg_ros.core.errors import InputError
from seg_ros.core.labels import CAMVID
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.evaluate import (
    Accuracy,
    BagSummary,
    CameraResult,
    EvalOptions,
    EvaluationReport,
    FrameCounts,
    GroundTruthDir,
    GroundTruthSource,
    LatencyStats,
    MissingFrame,
    ModelSummary,
    OutputBag,
    SequenceResult,
    compare_reports,
    evaluate_bag,
    load_report,
)
from seg_ros.io.bags import BagReader, BagWriter, write_dataset_bag, write_multi_camera_bag
from seg_ros.io.datasets import ImageFolderSource, SyntheticDriveSource
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_drive

SIZE = (48, 64)
T0 = 1_700_000_000_000_000_000
DT = 100_000_000


@pytest.fixture(scope="module")
def scenes():
    return list(generate_drive(21, 4, SIZE))


@pytest.fixture(scope="module")
def drive_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "drive"
    write_dataset_bag(SyntheticDriveSource(21, 4, SIZE), path, progress=False)
    return path


@pytest.fixture(scope="module")
def seg(random_model_file):
    return Segmenter(random_model_file, resolution=(32, 48), device="cpu")


def _reference(seg, scenes, outputs=("labels",)):
    results = [seg.segment(s.image, outputs) for s in scenes]
    cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for r, s in zip(results, scenes):
        cm.update(r.labels, s.labels)
    return results, cm


def _quiet(_line):
    pass


def test_evaluate_scores_every_frame_and_writes_report_and_bag(tmp_path, drive_bag, seg, scenes):
    out, out_bag = tmp_path / "report", tmp_path / "seg_bag"
    rep = evaluate_bag(EvalOptions(bag=drive_bag, out=out, out_bag=out_bag, progress=False), seg, log=_quiet)
    ref, cm = _reference(seg, scenes, ("labels", "color", "overlay"))
    assert rep.bag.image_topic == "/camera/image_raw"
    assert rep.ground_truth == GroundTruthSource(topic="/camera/gt_labels")
    assert rep.frames.total == rep.frames.scored == 4 and rep.frames.missing_gt == 0
    assert rep.frames.size == "48x64"
    m = rep.metrics
    assert [list(row) for row in m.confusion_matrix] == cm.matrix.tolist() and m.pixels == 4 * 48 * 64
    assert m.miou == pytest.approx(cm.miou()) and m.pixel_accuracy == pytest.approx(cm.pixel_accuracy())
    assert [m.iou[n] for n in CAMVID.names] == [None if np.isnan(v) else pytest.approx(v) for v in cm.iou()]
    for s in ("preprocess", "infer", "crf", "postprocess", "render", "total"):
        st = rep.latency_ms[s]
        assert 0 <= st.p50 <= st.p90 <= st.p99 <= st.max
    assert rep.fps > 0 and rep.overhead_pct >= 0
    assert set(rep.overhead_ms) == {"read", "decode", "score", "write"}
    assert rep.charts == ("iou_per_class.png", "confusion_matrix.png", "latency_histogram.png")
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "iou_per_class.png",
                                                      "latency_histogram.png", "report.json", "report.md"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == rep.to_json() and load_report(out / "report.json") == rep
    assert list(on_disk) == REPORT_KEYS and rep.cameras == ()  # one camera: no per-camera block
    for png in out.glob("*.png"):
        assert cv2.imread(str(png)).shape[0] > 200
    md = (out / "report.md").read_text()
    assert f"mIoU {m.miou:.3f}" in md and "| Sky |" in md and "| evaluate: read |" in md
    # the output bag: input images and camera_info copied, outputs with the input stamps and log times
    with BagReader(out_bag) as r:
        topics = {t.name: t.count for t in r.info.topics}
        assert topics == {"/camera/image_raw": 4, "/camera/camera_info": 4, "/segmentation_node/labels": 4,
                          "/segmentation_node/color": 4, "/segmentation_node/overlay": 4}
        labels = list(r.images("/segmentation_node/labels"))
        color = list(r.images("/segmentation_node/color"))
        overlay = list(r.images("/segmentation_node/overlay"))
        inputs = list(r.images("/camera/image_raw"))
    stamps = [T0 + i * DT for i in range(4)]
    for msgs in (labels, color, overlay, inputs):
        assert [x.stamp_ns for x in msgs] == [x.log_time_ns for x in msgs] == stamps
        assert all(x.frame_id == "camera" for x in msgs)
    for i, r in enumerate(ref):
        assert labels[i].encoding == "mono8" and np.array_equal(labels[i].to_labels(), r.labels)
        assert color[i].encoding == "rgb8" and np.array_equal(color[i].to_rgb(), CAMVID.colorize(r.labels))
        assert np.array_equal(overlay[i].to_rgb(), r.overlay)
        assert np.array_equal(inputs[i].to_rgb(), scenes[i].image)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_missing_ground_truth_is_counted_and_listed(tmp_path, seg, scenes, capsys):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "labs").mkdir()
    for i, s in enumerate(scenes):
        cv2.imwrite(str(tmp_path / "imgs" / f"{i}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        if i != 2:  # frame 2 has no label file
            cv2.imwrite(str(tmp_path / "labs" / f"{i}.png"), s.labels)
    write_dataset_bag(ImageFolderSource(tmp_path / "imgs", tmp_path / "labs"), tmp_path / "bag", progress=False)
    rep = evaluate_bag(EvalOptions(bag=tmp_path / "bag", out=tmp_path / "r", charts=False, progress=False), seg)
    fr = rep.frames
    assert (fr.total, fr.scored, fr.missing_gt) == (4, 3, 1)
    assert fr.missing_gt_frames == (MissingFrame(index=2, stamp_ns=T0 + 2 * DT),)
    assert rep.to_json()["frames"]["missing_gt_frames"] == [{"index": 2, "stamp_ns": T0 + 2 * DT}]
    _, cm = _reference(seg, [scenes[i] for i in (0, 1, 3)])
    assert rep.to_json()["metrics"]["confusion_matrix"] == cm.matrix.tolist()
    printed = capsys.readouterr().out
    assert "1 of 4 frames had no ground truth and were not scored" in printed
    assert "Frames without ground truth (first 1): 2 (" in (tmp_path / "r" / "report.md").read_text()


def _images_only_bag(path, scenes, storage="sqlite3", compressed=False):
    with BagWriter(path, storage=storage) as w:
        for i, s in enumerate(scenes):
            if compressed:
                w.write_compressed("/cam/image/compressed", s.image, T0 + i * DT, quality=100)
            else:
                w.write_image("/cam/image", s.image, T0 + i * DT)
    return path


@pytest.mark.parametrize("match", ["stamp", "index"])
@pytest.mark.slow
def test_ground_truth_from_a_folder(tmp_path, seg, scenes, match):
    bag = _images_only_bag(tmp_path / "bag", scenes)
    gt = tmp_path / "gt"
    gt.mkdir()
    for i in (0, 1, 3):
        name = str(T0 + i * DT) if match == "stamp" else f"{i:06d}"
        cv2.imwrite(str(gt / f"{name}.png"), scenes[i].labels)
    (gt / "notes.png").write_bytes(b"not a frame")  # ignored: not named by a number
    rep = evaluate_bag(EvalOptions(bag=bag, out=tmp_path / "r", gt_dir=gt, gt_match=match, charts=False,
                                   progress=False), seg, log=_quiet)
    assert rep.to_json()["ground_truth"] == {"dir": str(gt), "match": match, "files": 3}
    assert (rep.frames.scored, rep.frames.missing_gt) == (3, 1)
    _, cm = _reference(seg, [scenes[i] for i in (0, 1, 3)])
    assert rep.to_json()["metrics"]["confusion_matrix"] == cm.matrix.tolist()


def test_ground_truth_folder_errors(tmp_path):
    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "7.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "gt" / "007.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(Exception, match="two files for index 7"):
        GroundTruthDir(tmp_path / "gt", "index")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="holds no label PNG named by a frame stamp"):
        GroundTruthDir(tmp_path / "empty", "stamp")


def test_ground_truth_messages_are_paired_by_stamp_not_by_order(tmp_path, seg, scenes):
    """GT written before its image, or late within the window, still pairs; GT too late counts as missing."""
    with BagWriter(tmp_path / "bag") as w:
        for i, s in enumerate(scenes):
            stamp = T0 + i * DT
            if i == 0:  # ground truth logged 50 ms before the image
                w.write_image("/gt", s.labels, stamp, log_time_ns=stamp - 50_000_000)
            elif i == 1:  # 1.5 s late, inside the 2 s window
                w.write_image("/gt", s.labels, stamp, log_time_ns=stamp + 1_500_000_000)
            elif i == 2:  # 5 s late: outside the window
                w.write_image("/gt", s.labels, stamp, log_time_ns=stamp + 5_000_000_000)
            w.write_image("/cam", s.image, stamp)
    rep = evaluate_bag(EvalOptions(bag=tmp_path / "bag", out=tmp_path / "r", image_topics=("/cam",),
                                   gt_topics=("/gt",), charts=False, progress=False), seg, log=_quiet)
    fr = rep.frames
    assert (fr.scored, fr.missing_gt, fr.gt_without_frame) == (2, 2, 1)
    assert [x.index for x in fr.missing_gt_frames] == [2, 3]
    _, cm = _reference(seg, scenes[:2])
    assert rep.to_json()["metrics"]["confusion_matrix"] == cm.matrix.tolist()


def test_compressed_images_in_mcap_and_latency_only(tmp_path, seg, scenes):
    bag = _images_only_bag(tmp_path / "bag", scenes, storage="mcap", compressed=True)
    rep = evaluate_bag(EvalOptions(bag=bag, out=tmp_path / "r", out_bag=tmp_path / "o", charts=False,
                                   progress=False), seg, log=_quiet)
    assert rep.bag.image_type == "sensor_msgs/msg/CompressedImage" and rep.bag.storage == "mcap"
    assert rep.ground_truth is None and rep.metrics is None and rep.charts == ()
    assert rep.frames.total == 4 and rep.frames.missing_gt == 0
    assert load_report(tmp_path / "r" / "report.json") == rep
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.json", "report.md"]
    assert "![" not in (tmp_path / "r" / "report.md").read_text()
    with BagReader(tmp_path / "o") as r:
        assert r.info.storage == "mcap"
        assert r.info.topic("/cam/image/compressed").count == 4 and r.info.topic("/segmentation_node/labels").count == 4


def _params(path, model, **extra):
    lines = ["segmentation_node:", "  ros__parameters:", f"    model: {model}", "    device: cpu"]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_the_node_parameter_file_configures_the_segmenter_and_flags_override_it(tmp_path, drive_bag,
                                                                              random_model_file, capsys):
    params = _params(tmp_path / "p.yaml", random_model_file, resolution='"32x48"', keep_aspect="false")
    assert main(["evaluate", "--bag", str(drive_bag), "--params", str(params), "--out", str(tmp_path / "a"),
                 "--no-charts", "--quiet"]) == 0
    a = load_report(tmp_path / "a" / "report.json")
    assert a.model.resolution == "32x48" and a.settings["values"]["keep_aspect"] is False
    assert a.settings["params_file"] == str(params)
    assert main(["evaluate", "--bag", str(drive_bag), "--params", str(params), "--resolution", "40x56",
                 "--out", str(tmp_path / "b"), "--no-charts", "--quiet"]) == 0
    b = load_report(tmp_path / "b" / "report.json")
    assert b.model.resolution == "40x56" and b.settings["overrides"] == {"resolution": "40x56"}
    capsys.readouterr()
    assert main(["evaluate", "--compare", str(tmp_path / "a/report.json"), str(tmp_path / "b/report.json")]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| mIoU |"))
    assert f"{a.metrics.miou:.3f}" in row and f"{b.metrics.miou - a.metrics.miou:+.3f}" in row
    assert "| IoU Sky |" in table and "| total p50 ms |" in table
    assert compare_reports(a, b).splitlines()[0] == "| | A | B | B − A |"


def _bad_bag(kind, tmp_path, scenes):
    bag = tmp_path / "bad"
    args = []
    if kind == "missing_topic":
        write_dataset_bag(SyntheticDriveSource(21, 2, SIZE), bag, progress=False)
        args = ["--image-topic", "/nope"]
    elif kind in ("truncated", "corrupt_metadata"):
        write_dataset_bag(SyntheticDriveSource(21, 4, SIZE), bag, progress=False)
        if kind == "truncated":
            db = bag / "bad.db3"
            db.write_bytes(db.read_bytes()[: db.stat().st_size * 2 // 3])
        else:
            (bag / "metadata.yaml").write_text("{{{ not yaml")
    elif kind == "bad_encoding":
        with BagWriter(bag) as w:
            w.write_image("/camera/image_raw", np.zeros(SIZE, np.float32), T0)
            w.write_image("/camera/gt_labels", scenes[0].labels, T0)
        args = ["--gt-topic", "/camera/gt_labels"]
    elif kind in ("gt_size", "bad_label"):
        labels = scenes[0].labels.copy()
        if kind == "gt_size":
            labels = labels[:24, :32].copy()
        else:
            labels[5, 5] = 40
        with BagWriter(bag) as w:
            w.write_image("/camera/image_raw", scenes[0].image, T0)
            w.write_image("/camera/gt_labels", labels, T0)
        args = ["--image-topic", "/camera/image_raw", "--gt-topic", "/camera/gt_labels"]
    elif kind == "empty":
        with BagWriter(bag):
            pass
    elif kind == "label_set_mismatch":
        custom = {"seg_ros.gt_label_set": "cityscapes", "seg_ros.gt_topic": "/camera/gt_labels"}
        with BagWriter(bag, custom=custom) as w:
            w.write_image("/camera/image_raw", scenes[0].image, T0)
            w.write_image("/camera/gt_labels", scenes[0].labels, T0)
        args = ["--image-topic", "/camera/image_raw"]
    return bag, args


BAD = {
    "missing_topic": r"image topic /nope is not in bag .*; its image topics are: "
                     r"/camera/gt_labels \(sensor_msgs/Image, 2 messages\), /camera/image_raw \(sensor_msgs/Image, "
                     r"2 messages\)\.",
    "truncated": r"bag .* is truncated or corrupt",
    "corrupt_metadata": r"bag .* cannot be opened, it is truncated or corrupt",
    "bad_encoding": r"frame 0 of /camera/image_raw .*: image encoding '32FC1' is not supported",
    "gt_size": r"the ground truth of frame 0 of /camera/image_raw .* is 32x24 but the camera image is 64x48\.",
    "bad_label": r"the ground truth of frame 0 .* holds label ids \[40\] outside the camvid label set",
    "empty": r"bag .* is empty: it holds no messages\.",
    "label_set_mismatch": r"uses the cityscapes label set but the model predicts camvid",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(kind, tmp_path, scenes, random_model_file, capsys):
    bag, extra = _bad_bag(kind, tmp_path, scenes)
    out, out_bag = tmp_path / "report", tmp_path / "seg_bag"
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(["evaluate", "--bag", str(bag), "--model", str(random_model_file), "--device", "cpu", "--out", str(out),
               "--resolution", "32x48", "--out-bag", str(out_bag), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("seg-ros evaluate: error: ")
    assert re.search(BAD[kind], err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no report, no output bag, no staging folder


def test_unknown_parameter_and_conflicting_options_exit_2(tmp_path, drive_bag, random_model_file, capsys):
    rc = main(["evaluate", "--bag", str(drive_bag), "--model", str(random_model_file), "--set", "crf.bogus=1",
               "--out", str(tmp_path / "r")])
    assert rc == 2 and "unknown parameter 'crf.bogus'" in capsys.readouterr().err
    rc = main(["evaluate", "--bag", str(drive_bag), "--compare", "a.json", "b.json"])
    assert rc == 2 and "not both" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{}")
    rc = main(["evaluate", "--compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")])
    assert rc == 2 and "is not a report.json written by seg-ros evaluate" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_existing_output_bag_is_refused_before_any_work(tmp_path, drive_bag, random_model_file, capsys):
    (tmp_path / "o").mkdir()
    rc = main(["evaluate", "--bag", str(drive_bag), "--model", str(random_model_file), "--device", "cpu",
               "--out", str(tmp_path / "r"), "--out-bag", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_bag_from_dataset_and_evaluate_as_real_processes(tmp_path, random_model_file):
    """The console entry point end to end: a bag written by one process, a bad evaluate of it exiting 2."""
    exe = [sys.executable, "-m", "seg_ros.cli"]
    r = subprocess.run([*exe, "bag-from-dataset", "--synthetic", "2", "--size", "48x64", "--out",
                        str(tmp_path / "b"), "--storage", "mcap", "--distro", "humble", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 frames" in r.stdout and "rosbag2 metadata version 8 (humble)" in r.stdout
    r = subprocess.run([*exe, "evaluate", "--bag", str(tmp_path / "b"), "--image-topic", "/x",
                        "--model", str(random_model_file), "--out", str(tmp_path / "r2")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "/camera/image_raw (sensor_msgs/Image, 2 messages)" in r.stderr
    assert not (tmp_path / "r2").exists()


# -- the typed report and report.json ----------------------------------------------------------------------------

REPORT_KEYS = ["format", "seg_ros_version", "date", "command", "bag", "ground_truth", "model", "settings", "frames",
               "metrics", "latency_ms", "fps", "throughput_fps", "overhead_ms", "overhead_pct", "out_bag", "charts",
               "report_write_s", "wall_s"]
NESTED_KEYS = {
    "bag": ["path", "storage", "version", "duration_s", "messages", "image_topic", "image_type"],
    "model": ["description", "path", "architecture", "label_set", "classes", "ignore_id", "resolution",
              "provenance", "backend", "precision"],
    "frames": ["total", "scored", "missing_gt", "missing_gt_frames", "gt_without_frame", "gt_duplicate_stamps",
               "size"],
    "metrics": ["miou", "pixel_accuracy", "iou", "class_accuracy", "pixels", "confusion_matrix"],
    "out_bag": ["path", "topics"],
}


def _hand_made_report(scored: bool, ground_truth: GroundTruthSource | None) -> EvaluationReport:
    names = ("Sky", "Road", "Car")
    cm = ConfusionMatrix(3, 3)
    cm.update(np.array([[0, 1], [1, 2]], np.uint8), np.array([[0, 1], [2, 3]], np.uint8))
    stats = LatencyStats.of([1.0, 2.5, 4.0])
    return EvaluationReport(
        seg_ros_version="0.1.0", date="2026-12-05 12:00:00", command="seg-ros evaluate --bag b",
        bag=BagSummary("/b", "mcap", 9, 1.5, 12, "/cam", "sensor_msgs/msg/Image"), ground_truth=ground_truth,
        model=ModelSummary("m at 32x48", "/m.safetensors", "liteseg_mobilenetv2", "toy", names, 3, "32x48",
                           {"dataset": "synthetic", "epochs": 2}),
        settings={"params_file": None, "overrides": {"device": "cpu"}},
        frames=FrameCounts(3, 2, 1, (MissingFrame(2, T0 + 2 * DT),), 1, 0, "48x64"),
        metrics=Accuracy.from_confusion(cm, names) if scored else None,
        latency_ms={"infer": stats, "crf": None, "total": stats}, fps=400.0, throughput_fps=350.5,
        overhead_ms={"read": stats}, overhead_pct=12.5,
        out_bag=OutputBag("/o", ("/s/labels", "/s/color", "/s/overlay")) if scored else None,
        charts=("latency_histogram.png",), report_write_s=0.25, wall_s=1.75)


@pytest.mark.parametrize("scored, ground_truth", [
    (True, GroundTruthSource(topic="/gt")),
    (True, GroundTruthSource(dir="/labels", match="index", files=2)),
    (False, None),
])
def test_report_json_round_trip_keeps_every_value_and_key(scored, ground_truth, tmp_path):
    rep = _hand_made_report(scored, ground_truth)
    d = rep.to_json()
    assert list(d) == REPORT_KEYS
    for key, keys in NESTED_KEYS.items():
        assert d[key] is None or list(d[key]) == keys, key
    assert list(d["latency_ms"]["infer"]) == ["p50", "p90", "p99", "max", "mean"] and d["latency_ms"]["crf"] is None
    assert d["frames"]["missing_gt_frames"] == [{"index": 2, "stamp_ns": T0 + 2 * DT}]
    assert d["ground_truth"] == (None if ground_truth is None else
                                 {"topic": "/gt"} if ground_truth.topic else
                                 {"dir": "/labels", "match": "index", "files": 2})
    if scored:
        assert d["metrics"]["iou"] == {"Sky": 1.0, "Road": 0.5, "Car": 0.0}
        assert d["metrics"]["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert EvaluationReport.from_json(d) == rep
    (tmp_path / "report.json").write_text(json.dumps(rep.to_json(), indent=2))
    back = load_report(tmp_path / "report.json")
    assert back == rep and back.to_json() == rep.to_json()
    assert "| fps (pipeline) | 400.0 | 400.0 | +0.0 |" in compare_reports(back, rep).splitlines()


def test_compare_reports_shows_n_a_for_a_latency_only_run():
    scored, latency_only = _hand_made_report(True, GroundTruthSource(topic="/gt")), _hand_made_report(False, None)
    table = compare_reports(scored, latency_only, names=("gt", "none")).splitlines()
    assert table[0] == "| | gt | none | none − gt |"
    assert "| mIoU | 0.500 | n/a |  |" in table and "| IoU Car | 0.000 | n/a |  |" in table
    assert "| infer p50 ms | 2.50 | 2.50 | +0.00 |" in table and "| crf p50 ms | n/a | n/a |  |" in table


def test_load_report_refuses_a_truncated_report(tmp_path):
    d = _hand_made_report(True, GroundTruthSource(topic="/gt")).to_json()
    del d["frames"]
    (tmp_path / "r.json").write_text(json.dumps(d))
    with pytest.raises(InputError, match="incomplete or malformed"):
        load_report(tmp_path / "r.json")



# -- several cameras ---------------------------------------------------------------------------------------------

CAMERAS = {"front": 31, "rear": 32}  # name → synthetic drive seed


@pytest.fixture(scope="module")
def camera_scenes():
    return {n: list(generate_drive(seed, 4, SIZE)) for n, seed in CAMERAS.items()}


@pytest.fixture(scope="module")
def two_camera_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "two"
    write_multi_camera_bag([(n, SyntheticDriveSource(seed, 4, SIZE)) for n, seed in CAMERAS.items()], path,
                           progress=False)
    return path


def test_evaluate_scores_every_camera_of_a_two_camera_bag(tmp_path, two_camera_bag, camera_scenes, seg, capsys):
    out, out_bag = tmp_path / "r", tmp_path / "o"
    rep = evaluate_bag(EvalOptions(bag=two_camera_bag, out=out, out_bag=out_bag, progress=False), seg)
    refs = {n: _reference(seg, sc) for n, sc in camera_scenes.items()}
    assert [(c.name, c.image_topic, c.gt_topic) for c in rep.cameras] == [
        ("front", "/front/image_raw", "/front/gt_labels"), ("rear", "/rear/image_raw", "/rear/gt_labels")]
    for c in rep.cameras:
        assert (c.frames.total, c.frames.scored, c.frames.missing_gt, c.frames.size) == (4, 4, 0, "48x64")
        assert [list(row) for row in c.metrics.confusion_matrix] == refs[c.name][1].matrix.tolist()
        assert c.metrics.miou == pytest.approx(refs[c.name][1].miou()) and c.latency_ms.p50 > 0
        assert c.output_topics == tuple(f"/segmentation_node/{c.name}/{t}" for t in ("labels", "color", "overlay"))
    assert rep.cameras[0].metrics.confusion_matrix != rep.cameras[1].metrics.confusion_matrix
    # the total: one confusion matrix summed over the cameras, the frames of both
    summed = np.sum([np.asarray(c.metrics.confusion_matrix) for c in rep.cameras], axis=0)
    assert np.array_equal(np.asarray(rep.metrics.confusion_matrix), summed)
    assert (rep.frames.total, rep.frames.scored, rep.metrics.pixels) == (8, 8, 8 * 48 * 64)
    assert rep.bag.image_topic == "/front/image_raw, /rear/image_raw"
    assert rep.ground_truth == GroundTruthSource(topic="/front/gt_labels, /rear/gt_labels")
    d = json.loads((out / "report.json").read_text())
    assert list(d) == [*REPORT_KEYS[:10], "cameras", *REPORT_KEYS[10:]]
    assert [c["frames"]["scored"] for c in d["cameras"]] == [4, 4] and load_report(out / "report.json") == rep
    md = (out / "report.md").read_text()
    assert "| class | IoU | accuracy | front IoU | rear IoU |" in md
    assert f"| rear | `/rear/image_raw` | `/rear/gt_labels` | 4 | 4 | {rep.cameras[1].metrics.miou:.3f} |" in md
    printed = capsys.readouterr().out
    assert f"camera front (/front/image_raw): mIoU {rep.cameras[0].metrics.miou:.3f}" in printed
    # each camera's outputs under its own namespace, with its frames' stamps
    with BagReader(out_bag) as r:
        assert {t.name: t.count for t in r.info.topics} == {
            **{f"/{n}/{t}": 4 for n in CAMERAS for t in ("image_raw", "camera_info")},
            **{f"/segmentation_node/{n}/{t}": 4 for n in CAMERAS for t in ("labels", "color", "overlay")}}
        for n, (results, _) in refs.items():
            labels = list(r.images(f"/segmentation_node/{n}/labels"))
            assert [m.stamp_ns for m in labels] == [T0 + i * DT for i in range(4)]
            assert all(m.frame_id == n for m in labels)
            assert all(np.array_equal(m.to_labels(), x.labels) for m, x in zip(labels, results))


def test_the_total_over_cameras_is_the_score_of_the_same_frames_as_one_camera(tmp_path, two_camera_bag,
                                                                               camera_scenes, seg):
    rep = evaluate_bag(EvalOptions(bag=two_camera_bag, out=tmp_path / "r", charts=False, progress=False), seg,
                       log=_quiet)
    with BagWriter(tmp_path / "one") as w:  # the same eight frames, one camera after the other
        for i, s in enumerate(camera_scenes["front"] + camera_scenes["rear"]):
            w.write_image("/cam", s.image, T0 + i * DT)
            w.write_image("/gt", s.labels, T0 + i * DT)
    one = evaluate_bag(EvalOptions(bag=tmp_path / "one", out=tmp_path / "r1", image_topics=("/cam",),
                                   gt_topics=("/gt",), charts=False, progress=False), seg, log=_quiet)
    assert one.cameras == () and one.frames.scored == 8
    assert rep.metrics.confusion_matrix == one.metrics.confusion_matrix
    assert rep.metrics.miou == one.metrics.miou and rep.metrics.pixel_accuracy == one.metrics.pixel_accuracy


def test_repeated_topic_options_choose_and_order_the_cameras(tmp_path, two_camera_bag, random_model_file):
    # fp32: precision=auto decides by timing, so two runs under load could pick different precisions
    common = ["--model", str(random_model_file), "--device", "cpu", "--resolution", "32x48", "--precision", "fp32",
              "--no-charts", "--quiet"]
    assert main(["evaluate", "--bag", str(two_camera_bag), "--out", str(tmp_path / "a"), *common,
                 "--image-topic", "/rear/image_raw", "--gt-topic", "/rear/gt_labels",
                 "--image-topic", "/front/image_raw", "--gt-topic", "/front/gt_labels"]) == 0
    both = load_report(tmp_path / "a" / "report.json")
    assert [(c.name, c.frames.scored) for c in both.cameras] == [("rear", 4), ("front", 4)]
    # one camera named: a one-camera report, its ground truth found among the recorded cameras
    assert main(["evaluate", "--bag", str(two_camera_bag), "--out", str(tmp_path / "b"), *common,
                 "--image-topic", "/rear/image_raw"]) == 0
    d = json.loads((tmp_path / "b" / "report.json").read_text())
    assert list(d) == REPORT_KEYS and d["ground_truth"] == {"topic": "/rear/gt_labels"}
    assert d["frames"]["scored"] == 4 and d["metrics"]["confusion_matrix"] == [
        list(row) for row in both.cameras[0].metrics.confusion_matrix]
    # --limit takes the first frames of each camera
    assert main(["evaluate", "--bag", str(two_camera_bag), "--out", str(tmp_path / "c"), *common, "--limit", "2"]) == 0
    limited = load_report(tmp_path / "c" / "report.json")
    assert [(c.name, c.frames.total, c.frames.scored) for c in limited.cameras] == [("front", 2, 2), ("rear", 2, 2)]
    assert limited.frames.total == 4


@pytest.mark.parametrize("extra,message", [
    (["--image-topic", "/front/image_raw", "--image-topic", "/rear/image_raw", "--gt-topic", "/front/gt_labels"],
     "give one --gt-topic per --image-topic, in the same order, not 1 ground-truth topics for 2 image topics."),
    (["--gt-topic", "/front/gt_labels", "--gt-topic", "/rear/gt_labels"],
     "name the camera of each --gt-topic with --image-topic, in the same order."),
    (["--gt-topic", "/front/gt_labels"], r"records 2 cameras \(front, rear\); name the camera of the ground truth"),
    (["--image-topic", "/front/image_raw", "--image-topic", "/front/image_raw"],
     "--image-topic /front/image_raw is given more than once."),
    (["--image-topic", "/front/image_raw", "--image-topic", "/rear/image_raw", "--gt-dir", "GT"],
     "--gt-dir holds the labels of one camera; give it with one --image-topic, not 2."),
    (["--image-topic", "/front/image_raw", "--image-topic", "/side/image_raw"],
     "image topic /side/image_raw is not in bag"),
])
def test_bad_camera_options_are_one_sentence_exit_2(tmp_path, two_camera_bag, random_model_file, capsys, extra,
                                                     message):
    (tmp_path / "GT").mkdir()
    cv2.imwrite(str(tmp_path / "GT" / "0.png"), np.zeros(SIZE, np.uint8))
    extra = [str(tmp_path / "GT") if x == "GT" else x for x in extra]
    rc = main(["evaluate", "--bag", str(two_camera_bag), "--model", str(random_model_file), "--device", "cpu",
               "--resolution", "32x48", "--out", str(tmp_path / "r"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("seg-ros evaluate: error: ")
    assert re.search(message if message.startswith("records") else re.escape(message), err[0]), err[0]
    assert not (tmp_path / "r").exists()


def test_report_json_round_trip_with_cameras():
    rep = _hand_made_report(True, GroundTruthSource(topic="/a/gt, /b/gt"))
    cams = tuple(CameraResult(n, f"/{n}/image", "sensor_msgs/msg/Image", f"/{n}/gt", rep.frames, rep.metrics,
                              LatencyStats.of([1.0, 2.0]), (f"/s/{n}/labels",)) for n in ("a", "b"))
    cams += (CameraResult("c", "/c/image", "sensor_msgs/msg/Image", None, rep.frames, None, None),)
    with_cameras = EvaluationReport(**{**rep.__dict__, "cameras": cams})
    d = with_cameras.to_json()
    assert list(d) == [*REPORT_KEYS[:10], "cameras", *REPORT_KEYS[10:]]
    assert list(d["cameras"][0]) == ["name", "image_topic", "image_type", "gt_topic", "frames", "metrics",
                                     "latency_ms", "output_topics"]
    assert d["cameras"][2]["metrics"] is None and d["cameras"][2]["latency_ms"] is None
    assert EvaluationReport.from_json(json.loads(json.dumps(d))) == with_cameras
    assert "cameras" not in rep.to_json() and EvaluationReport.from_json(rep.to_json()).cameras == ()


SEQUENCE_FRAMES = {"A": 3, "B": 2}


@pytest.fixture(scope="module")
def sequence_bag(tmp_path_factory):
    """A bag written by ``bag-from-dataset --camvid`` from a CamVid-layout folder of frames A_000.. and B_000..;
    its scenes in bag order."""
    root = tmp_path_factory.mktemp("camvid")
    scenes = list(generate_drive(33, sum(SEQUENCE_FRAMES.values()), SIZE))
    names = [f"{seq}_{i:03d}" for seq, n in SEQUENCE_FRAMES.items() for i in range(n)]
    for name, sc in zip(names, scenes):
        for folder, array in (("images", cv2.cvtColor(sc.image, cv2.COLOR_RGB2BGR)), ("labels", sc.labels)):
            (root / "val" / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / "val" / folder / f"{name}.png"), array)
    path = root / "bag"
    assert main(["bag-from-dataset", "--camvid", str(root), "--split", "val", "--out", str(path), "--quiet"]) == 0
    return path, scenes


def test_a_bag_of_two_sequences_is_scored_per_sequence(tmp_path, sequence_bag, seg, capsys):
    bag, scenes = sequence_bag
    rep = evaluate_bag(EvalOptions(bag=bag, out=tmp_path / "r", charts=False, progress=False), seg)
    assert [(q.name, q.frames, q.scored) for q in rep.sequences] == [("A", 3, 3), ("B", 2, 2)]
    _, cm_a = _reference(seg, scenes[:3])
    _, cm_b = _reference(seg, scenes[3:])
    assert [list(row) for row in rep.sequences[0].metrics.confusion_matrix] == cm_a.matrix.tolist()
    assert [list(row) for row in rep.sequences[1].metrics.confusion_matrix] == cm_b.matrix.tolist()
    summed = np.sum([np.asarray(q.metrics.confusion_matrix) for q in rep.sequences], axis=0)
    assert np.array_equal(np.asarray(rep.metrics.confusion_matrix), summed) and rep.frames.scored == 5
    assert rep.sequences[1].metrics.miou == pytest.approx(cm_b.miou())
    d = json.loads((tmp_path / "r" / "report.json").read_text())
    assert list(d) == [*REPORT_KEYS[:10], "sequences", *REPORT_KEYS[10:]]
    assert list(d["sequences"][0]) == ["name", "frames", "scored", "metrics"]
    assert load_report(tmp_path / "r" / "report.json") == rep
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"| B | 2 | 2 | {rep.sequences[1].metrics.miou:.3f} |" in md
    assert f"sequence A: mIoU {rep.sequences[0].metrics.miou:.3f}" in capsys.readouterr().out


def test_one_sequence_or_an_unscored_run_has_no_sequence_section(tmp_path, sequence_bag, seg):
    bag, scenes = sequence_bag
    limited = evaluate_bag(EvalOptions(bag=bag, out=tmp_path / "a", limit=3, charts=False, progress=False), seg,
                           log=_quiet)
    assert limited.sequences == () and list(json.loads((tmp_path / "a" / "report.json").read_text())) == REPORT_KEYS
    assert "Sequences:" not in (tmp_path / "a" / "report.md").read_text()
    with BagWriter(tmp_path / "images_only",
                   custom={"seg_ros.image_topic": "/cam", "seg_ros.sequences": '[["A", 1], ["B", 1]]'}) as w:
        for i, sc in enumerate(scenes[:2]):
            w.write_image("/cam", sc.image, T0 + i * DT)
    latency_only = evaluate_bag(EvalOptions(bag=tmp_path / "images_only", out=tmp_path / "b", charts=False,
                                            progress=False), seg, log=_quiet)
    assert latency_only.metrics is None and latency_only.frames.total == 2 and latency_only.sequences == ()


def test_report_json_round_trip_with_sequences():
    rep = _hand_made_report(True, GroundTruthSource(topic="/gt"))
    seqs = (SequenceResult("A", 2, 2, rep.metrics), SequenceResult("B", 1, 0, None))
    with_sequences = EvaluationReport(**{**rep.__dict__, "sequences": seqs})
    d = with_sequences.to_json()
    assert list(d) == [*REPORT_KEYS[:10], "sequences", *REPORT_KEYS[10:]] and d["sequences"][1]["metrics"] is None
    assert EvaluationReport.from_json(json.loads(json.dumps(d))) == with_sequences
