"""Test-time augmentation: the averaged views, the refusals, and ``seg-ros evaluate --tta`` end to end."""

import json

import numpy as np
import pytest

from seg_ros.cli import main
from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import CAMVID
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.crf import CRFConfig
from seg_ros.evaluate import load_report
from seg_ros.evaluate.tta import DEFAULT_SCALES, TTAConfig, TTASegmenter, parse_scales
from seg_ros.io.datasets import read_labels, write_image
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_scene

SHIPPED = "liteseg_mobilenetv2_synthetic"


@pytest.fixture(scope="module")
def shipped():
    # Off-nominal: the model was trained at 360x640; frames of 240x320 run at 144x192.
    return Segmenter(SHIPPED, resolution=(144, 192), device="cpu")


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(seed, (240, 320)) for seed in range(4)]


def _mirror_symmetric(image: np.ndarray) -> np.ndarray:
    """The left half of ``image`` followed by its mirror: a frame equal to its horizontal flip."""
    half = image[:, : image.shape[1] // 2]
    return np.ascontiguousarray(np.concatenate([half, half[:, ::-1]], axis=1))


def test_one_view_is_exactly_the_segmenter(shipped, scenes):
    tta = TTASegmenter(shipped, TTAConfig(scales=(1.0,), flip=False))
    for s in scenes[:2]:
        plain, one = shipped.segment(s.image), tta.segment(s.image)
        assert np.array_equal(one.labels, plain.labels)
        assert np.allclose(one.confidence, plain.confidence, atol=1e-5)
        assert np.array_equal(one.color, plain.color) and np.array_equal(one.overlay, plain.overlay)


def test_flip_on_a_mirror_symmetric_frame_matches_plain_inference_and_averages_probabilities(shipped, scenes):
    frame = _mirror_symmetric(scenes[0].image)
    assert np.array_equal(frame, frame[:, ::-1])
    tta = TTASegmenter(shipped, TTAConfig(scales=(1.0,), flip=True))
    probs = tta.probabilities(frame)
    assert probs.shape == (CAMVID.num_classes, *frame.shape[:2])
    assert np.allclose(probs.sum(dim=0).numpy(), 1.0, atol=1e-5) and float(probs.min()) >= 0.0
    # The mean of a view and its mirror image is mirror symmetric, whatever the network does.
    assert np.allclose(probs.numpy(), probs.numpy()[:, :, ::-1], atol=1e-6)
    r = tta.segment(frame, ("labels", "confidence"))
    plain = shipped.segment(frame, ("labels",))
    top2 = np.sort(probs.numpy(), axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # pixels whose argmax is not a near-tie
    assert np.array_equal(r.labels[clear], r.labels[:, ::-1][clear])
    agree = float((r.labels == plain.labels).mean())
    print(f"flip on a symmetric frame: {100 * agree:.2f}% of the pixels keep their plain label")
    assert agree > 0.97
    assert np.allclose(r.confidence, probs.numpy().max(axis=0), atol=1e-6)


def test_tta_raises_the_score_of_the_shipped_model_on_the_fixture_scenes(shipped, scenes):
    tta = TTASegmenter(shipped, TTAConfig())
    plain_cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    tta_cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for s in scenes:
        plain_cm.update(shipped.segment(s.image, ("labels",)).labels, s.labels)
        r = tta.segment(s.image, ("labels",))
        tta_cm.update(r.labels, s.labels)
        assert r.color is None and r.overlay is None and r.confidence is None
        assert set(r.timings) == {"preprocess", "infer", "crf", "postprocess", "render", "total"}
        assert r.timings["crf"] == 0.0 and r.timings["total"] == pytest.approx(sum(
            v for k, v in r.timings.items() if k != "total"))
    plain, augmented = 100 * plain_cm.miou(), 100 * tta_cm.miou()
    print(f"mIoU plain {plain:.2f}, with TTA {augmented:.2f} (scales {DEFAULT_SCALES}, flip)")
    # Measured: 66.99 plain, 69.50 with TTA; a point of margin for other CPUs' float rounding.
    assert augmented >= plain + 1.0


def test_view_sizes_scale_the_inference_resolution(shipped):
    tta = TTASegmenter(shipped, TTAConfig())
    assert tta.view_size(240, 320, 1.0) == shipped.inference_size(240, 320) == (144, 192)
    assert tta.view_size(240, 320, 0.75) == (108, 144)
    assert tta.view_size(240, 320, 1.25) == (180, 240)
    assert TTAConfig().views == 6 and TTAConfig((1.0, 2.0), flip=False).views == 2
    assert TTAConfig().describe() == "scales 0.75, 1, 1.25 with horizontal flip (6 network runs per frame)"


@pytest.mark.parametrize("scales, message", [
    ((), "at least one scale"),
    ((0.1,), "must lie in 0.25..4, not 0.1"),
    ((float("nan"),), "must lie in"),
    ((1.0, 0.5, 1.0), "scale 1 is given more than once"),
])
def test_bad_scales_are_refused(scales, message):
    with pytest.raises(ConfigError, match=message):
        TTAConfig(scales)


def test_parse_scales():
    assert parse_scales("0.5,1,1.5") == (0.5, 1.0, 1.5)
    with pytest.raises(ConfigError, match="comma-separated numbers"):
        parse_scales("0.5;1")


def test_the_dense_crf_is_refused(random_model_file):
    seg = Segmenter(random_model_file, device="cpu", crf=CRFConfig())
    with pytest.raises(ConfigError, match="without the dense CRF"):
        TTASegmenter(seg, TTAConfig())


@pytest.fixture(scope="module")
def synthetic_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("tta") / "drive"
    assert main(["bag-from-dataset", "--synthetic", "4", "--size", "96x160", "--out", str(path), "--quiet"]) == 0
    return path


MODEL_KEYS = ["description", "path", "architecture", "label_set", "classes", "ignore_id", "resolution",
              "provenance", "backend", "precision"]
REPORT_KEYS = ["format", "seg_ros_version", "date", "command", "bag", "ground_truth", "model", "settings", "frames",
               "metrics", "latency_ms", "fps", "throughput_fps", "overhead_ms", "overhead_pct", "out_bag", "charts",
               "report_write_s", "wall_s"]


def _evaluate(bag, out, *extra):
    return main(["evaluate", "--bag", str(bag), "--out", str(out), "--model", SHIPPED, "--device", "cpu",
                 "--resolution", "96x160", "--no-charts", "--quiet", *extra])


def test_evaluate_tta_records_it_and_without_it_the_report_is_unchanged(tmp_path, synthetic_bag, capsys):
    assert _evaluate(synthetic_bag, tmp_path / "plain") == 0
    assert _evaluate(synthetic_bag, tmp_path / "tta", "--tta", "--tta-scales", "1,1.5") == 0
    out = capsys.readouterr().out
    assert "test-time augmentation: scales 1, 1.5 with horizontal flip (4 network runs per frame)" in out
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    tta = json.loads((tmp_path / "tta" / "report.json").read_text())
    assert list(plain) == list(tta) == REPORT_KEYS
    assert list(plain["model"]) == MODEL_KEYS
    assert list(tta["model"]) == [*MODEL_KEYS, "tta"] and tta["model"]["tta"] == {"scales": [1.0, 1.5], "flip": True}
    assert load_report(tmp_path / "tta" / "report.json").model.tta == TTAConfig((1.0, 1.5), True)
    assert tta["frames"]["scored"] == plain["frames"]["scored"] == 4
    print(f"synthetic bag mIoU plain {plain['metrics']['miou']:.4f}, TTA {tta['metrics']['miou']:.4f}")
    md, plain_md = (tmp_path / "tta" / "report.md").read_text(), (tmp_path / "plain" / "report.md").read_text()
    note = "with test-time augmentation (offline; the robot's score is the one without)"
    assert note in md and note not in plain_md
    assert "Pipeline with test-time augmentation (4 network runs per frame; not the robot's latency)" in md


@pytest.mark.parametrize("extra, message", [
    (["--tta-scales", "1,2"], "--tta-scales goes with --tta"),
    (["--tta", "--tta-scales", "x"], "comma-separated numbers"),
    (["--tta", "--tta-scales", "9"], "must lie in 0.25..4"),
    (["--tta", "--set", "crf.enabled=true"], "without the dense CRF"),
])
def test_bad_tta_options_are_one_sentence_exit_2_and_nothing_written(tmp_path, synthetic_bag, capsys, extra,
                                                                      message):
    assert _evaluate(synthetic_bag, tmp_path / "out", *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_segment_tta_writes_the_augmented_labels(tmp_path, shipped, scenes, capsys):
    write_image(tmp_path / "frame.png", scenes[1].image)
    rc = main(["segment", str(tmp_path / "frame.png"), "--out", str(tmp_path / "out"), "--tta", "--tta-scales",
               "0.75,1", "--model", SHIPPED, "--resolution", "144x192", "--device", "cpu", "--backend", "torch",
               "--precision", "fp32", "--outputs", "labels", "--quiet"])
    assert rc == 0
    assert "with test-time augmentation" in capsys.readouterr().out
    expected = TTASegmenter(shipped, TTAConfig((0.75, 1.0))).segment(scenes[1].image, ("labels",)).labels
    assert np.array_equal(read_labels(tmp_path / "out" / "frame_labels.png"), expected)
    assert main(["segment", str(tmp_path / "frame.png"), "--out", str(tmp_path / "crf"), "--tta", "--crf",
                 "--model", SHIPPED, "--device", "cpu", "--quiet"]) == 2
    assert "without the dense CRF" in capsys.readouterr().err and not (tmp_path / "crf").exists()
