"""seg-ros tune-crf: grid search on the even frames, held-out score on the odd ones, a preset file."""

from __future__ import annotations

from dataclasses import replace

import cv2
import pytest

from seg_ros.cli import main
from seg_ros.config import crf_config, load_params_file
from seg_ros.core.errors import ConfigError
from seg_ros.crf import CRFConfig
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_scene
from seg_ros.tools.crfbench import crf_accuracy
from seg_ros.tools.crftune import grid_configs, parse_grid, tune_crf


@pytest.fixture(scope="module")
def scenes():
    return [(s.image, s.labels) for s in (generate_scene(3000 + i, (72, 96)) for i in range(4))]


@pytest.fixture(scope="module")
def seg():
    return Segmenter("liteseg_mobilenetv2_synthetic", resolution=(72, 96), device="cpu")


def test_grid_parsing_and_its_errors():
    assert parse_grid(["w1=1,2.5", "crf.theta_beta=3"]) == {"w1": [1.0, 2.5], "theta_beta": [3.0]}
    configs = grid_configs(CRFConfig(method="fast"), {"w1": [1, 2], "iterations": [3, 5]})
    assert [(c.w1, c.iterations) for c in configs] == [(1, 3), (1, 5), (2, 3), (2, 5)]
    assert all(c.method == "fast" and c.theta_alpha == 121.0 for c in configs)
    for bad, match in ((["band=1"], "NAME one of"), (["w1"], "NAME one of"), (["w1=a"], "must be numbers"),
                       (["w1="], "lists no values"), (["w1=1", "w1=2"], "twice")):
        with pytest.raises(ConfigError, match=match):
            parse_grid(bad)
    with pytest.raises(ConfigError, match="crf.w1 must lie in"):
        grid_configs(CRFConfig(), {"w1": [-1.0]})
    with pytest.raises(ConfigError, match="iterations must be an integer"):
        grid_configs(CRFConfig(), {"iterations": [2.5]})


@pytest.mark.slow
def test_tune_crf_ranks_the_grid_on_even_frames_and_scores_the_winner_on_odd_ones(seg, scenes):
    base = CRFConfig(method="fast", iterations=3)
    result = tune_crf(seg, scenes, base, {"w1": [0.0, 6.0], "w2": [0.0, 3.0]}, progress=False)
    assert result.frames == {"tuning": 2, "held_out": 2}
    rows = result.grid
    assert len(rows) == 4 and [r.miou for r in rows] == sorted((r.miou for r in rows), reverse=True)
    # No pairwise term: the CRF leaves the network's labels alone.
    off = next(r for r in rows if r.name == "w1=0 w2=0")
    assert off.gain == pytest.approx(0.0, abs=1e-9)
    # The top row is what crf_accuracy gives for those settings on the tuning frames alone.
    best = replace(base, **result.best)
    again = crf_accuracy(seg, [scenes[0], scenes[2]], {"b": best}, reference=None)
    assert rows[0].miou == pytest.approx(again.variants["b"].miou, abs=1e-9)
    held = crf_accuracy(seg, [scenes[1], scenes[3]], {"b": best}, reference=None)
    assert result.held_out["best"].miou == pytest.approx(held.variants["b"].miou, abs=1e-9)
    assert result.held_out["none"].miou == pytest.approx(held.variants["none"].miou, abs=1e-9)
    # The JSON report: every grid point and both halves, with the variants' scores as crf_accuracy's.
    data = result.to_json()
    assert list(data) == ["grid", "best", "tuning", "held_out", "frames"]
    assert list(data["grid"][0]) == ["name", "settings", "miou", "gain"]
    assert list(data["held_out"]["best"]) == ["miou", "gain", "iou", "ms_per_frame"]
    assert "ms_per_frame" not in data["held_out"]["none"]
    with pytest.raises(ConfigError, match="at least 2 labelled frames"):
        tune_crf(seg, scenes[:1], base, {"w1": [1.0]}, progress=False)


def test_cli_tune_crf_writes_a_preset_the_node_reads(tmp_path, scenes, capsys):
    root = tmp_path / "data"
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "labels").mkdir(parents=True)
    for i, (image, labels) in enumerate(scenes):
        cv2.imwrite(str(root / "val" / "images" / f"f{i}.png"), image[..., ::-1])
        cv2.imwrite(str(root / "val" / "labels" / f"f{i}.png"), labels)
    preset = tmp_path / "tuned.yaml"
    rc = main(["tune-crf", "--data", str(root), "--model", "liteseg_mobilenetv2_synthetic", "--resolution", "72x96",
               "--method", "fast", "--set", "crf.iterations=2", "--grid", "w1=0,5", "--grid", "theta_beta=3,13",
               "--preset", str(preset), "--json", str(tmp_path / "t.json"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| none |" in out and "| best |" in out and "best: iterations=2" in out
    values = load_params_file(preset)
    assert values["model"] == "liteseg_mobilenetv2_synthetic" and values["resolution"] == "72x96"
    cfg = crf_config(values)
    assert cfg.method == "fast" and cfg.iterations == 2
    assert cfg.w1 in (0.0, 5.0) and cfg.theta_beta in (3.0, 13.0)
    import json

    report = json.loads((tmp_path / "t.json").read_text())
    assert report["command"].startswith("seg-ros tune-crf --data") and report["frames"] == {"tuning": 2, "held_out": 2}
    header = preset.read_text().splitlines()[:3]
    assert header[0].startswith("# Dense CRF settings cross-validated with `seg-ros tune-crf` on ")
    assert "held-out frames: mIoU" in header[1] and header[2] == f"# {report['command']}"
    # A bad grid: exit 2, one sentence, nothing written.
    bad = tmp_path / "bad.yaml"
    assert main(["tune-crf", "--data", str(root), "--grid", "size=1", "--preset", str(bad), "--quiet"]) == 2
    assert "NAME one of" in capsys.readouterr().err
    assert not bad.exists()
