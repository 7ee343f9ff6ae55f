"""The dense CRF: lattice, fast vs exact parity, the pipeline stage, parameters, and bad input."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from seg_ros.cli import main
from seg_ros.config import crf_config, defaults, validate, validate_all
from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.labels import CAMVID
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.crf import CRFConfig, CRFUnavailableError, DenseCRF, exact_available, fast_crf, uncertain_region
from seg_ros.crf.lattice import Permutohedral
from seg_ros.pipeline import STAGES, Segmenter
from seg_ros.synthetic import generate_scene
from seg_ros.tools.crfbench import (
    bench_crf_speed,
    crf_accuracy,
    format_accuracy_table,
    format_speed_table,
    synthetic_logits,
)

SIZE = (48, 64)
needs_exact = pytest.mark.skipif(not exact_available(), reason="pydensecrf2 is not installed")


@pytest.fixture(scope="module")
def scene():
    return generate_scene(3, (72, 96))


@pytest.fixture(scope="module")
def logits(scene):
    return torch.from_numpy(synthetic_logits(scene.labels, 11, seed=5))[None]


@pytest.fixture
def no_pydensecrf(monkeypatch):
    """pydensecrf2 made unimportable, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    assert not exact_available()


# -- the lattice -------------------------------------------------------------------------------------------------

def test_lattice_is_a_symmetric_positive_filter_that_decays_with_distance():
    g = torch.Generator().manual_seed(0)
    feats = torch.rand((300, 3), generator=g) * 6.0
    lat = Permutohedral(feats)
    # As a matrix K (apply it to the identity): positive diagonal, non-negative, decaying with distance.
    k = lat.filter(torch.eye(300))
    assert bool((k >= -1e-6).all()) and bool((torch.diagonal(k) > 0).all())
    dist = torch.cdist(feats, feats)
    near, far = k[dist < 0.5].mean(), k[(dist > 2.5) & (dist < 3.5)].mean()
    assert float(near) > 10 * float(far)
    assert float(k[dist > 6].abs().max()) == 0.0  # compact support: a few lattice cells
    # Barycentric weights are a partition of unity.
    assert torch.allclose(lat.weights.sum(dim=1), torch.ones(300), atol=1e-5)
    assert bool((lat.weights >= -1e-6).all())


def test_lattice_approximates_a_gaussian_of_the_features():
    """On a dense 1-D grid the lattice filter is a bell shape centred on the impulse, about 2 units wide."""
    x = torch.arange(-20, 20.01, 0.1)[:, None]
    lat = Permutohedral(x)
    impulse = torch.zeros((x.shape[0], 1))
    impulse[200] = 1.0
    resp = lat.filter(impulse)[:, 0]
    resp = resp / resp.max()
    assert int(resp.argmax()) == 200
    half = x[resp >= 0.5, 0]
    assert 1.5 < float(half.max() - half.min()) < 6.0  # full width at half maximum in feature units
    assert float(resp[(x[:, 0] - 0.0).abs() > 8].max()) < 1e-3


# -- parity with the exact CRF -------------------------------------------------------------------------------------

@needs_exact
def test_fast_crf_matches_the_exact_crf(scene, logits):
    cfg = CRFConfig(iterations=5)
    exact = DenseCRF(replace(cfg, method="exact"))(logits, scene.image[None])
    fast = DenseCRF(replace(cfg, method="fast"))(logits, scene.image[None])
    agree = float((exact.argmax(1) == fast.argmax(1)).float().mean())
    assert agree >= 0.995
    assert float((exact - fast).abs().mean()) < 2e-3
    # Both sharpen the network's decision: the CRF moved away from the plain softmax.
    soft = torch.softmax(logits, dim=1)
    assert float((exact - soft).abs().mean()) > 0.01


@pytest.mark.parametrize("size,step", [((72, 96), 1), ((360, 480), 1), ((360, 640), 2), ((720, 960), 3),
                                       ((512, 1024), 3), ((1080, 1920), 6)])
def test_auto_grid_step_keeps_the_grid_at_least_320_cells_long(size, step):
    assert CRFConfig().grid_step(*size) == step
    assert CRFConfig(downsample=4).grid_step(*size) == 4 and CRFConfig(downsample=1).grid_step(*size) == 1


@needs_exact
@pytest.mark.parametrize("step", [2, 3])
def test_fast_crf_on_a_coarser_grid_keeps_parity_with_the_exact_crf(step):
    """The documented approximation: ≥ 98% of labels equal to the exact CRF's, and closer to them than no CRF."""
    scene = generate_scene(21, (240, 320))
    logits = torch.from_numpy(synthetic_logits(scene.labels, 11, seed=2))[None]
    cfg = CRFConfig(iterations=5)
    exact = DenseCRF(replace(cfg, method="exact"))(logits, scene.image[None]).argmax(1)
    fast = DenseCRF(replace(cfg, downsample=step))(logits, scene.image[None]).argmax(1)
    agree = float((fast == exact).float().mean())
    untouched = float((logits.argmax(1) == exact).float().mean())
    assert agree >= 0.98 and agree > untouched + 0.01, (agree, untouched)
    miou = {}
    for name, lab in (("none", logits.argmax(1)), ("exact", exact), ("fast", fast)):
        cm = ConfusionMatrix(11, CAMVID.ignore_id)
        cm.update(lab[0].numpy().astype(np.uint8), scene.labels)
        miou[name] = 100.0 * cm.miou()
    assert miou["exact"] - miou["none"] > 2.0, miou  # the CRF is worth something here ...
    assert abs(miou["fast"] - miou["exact"]) < 0.5, miou  # ... and the coarser grid keeps it


def test_coarser_grid_on_an_odd_frame_gives_probabilities_at_full_resolution():
    scene = generate_scene(5, (257, 333))
    logits = torch.from_numpy(synthetic_logits(scene.labels, 7, seed=1))[None]
    for cfg in (CRFConfig(iterations=3, downsample=3), CRFConfig(iterations=3, downsample=3, confidence_threshold=0.8,
                                                                 band=2)):
        q = DenseCRF(cfg)(logits, scene.image[None])
        assert q.shape == (1, 7, 257, 333) and bool(torch.isfinite(q).all())
        assert torch.allclose(q.sum(1), torch.ones(1, 257, 333), atol=1e-4)
    # Gated: outside the uncertain region the network's probabilities pass through exactly.
    soft = torch.softmax(logits[0], 0)
    active = uncertain_region(soft.amax(0), 0.8, 2)
    assert 0.0 < float(active.float().mean()) < 0.9
    assert torch.equal(q[0][:, ~active], soft[:, ~active])
    # The last update is at full resolution: the labels follow the network's full-resolution detail where
    # the pairwise message is flat, so they are not blocky copies of the grid.
    labels = q[0].argmax(0)
    assert not torch.equal(labels[0::3, 0::3].repeat_interleave(3, 0)[:257].repeat_interleave(3, 1)[:, :333], labels)


@needs_exact
def test_exact_and_fast_agree_on_a_single_message():
    """One iteration from a uniform prior exposes the normalised filter itself: both compute the same messages."""
    img = generate_scene(11, SIZE).image
    g = torch.Generator().manual_seed(1)
    logits = torch.randn((1, 4, *SIZE), generator=g) * 0.3
    cfg = CRFConfig(iterations=1, w1=4.0, w2=3.0)
    exact = DenseCRF(replace(cfg, method="exact"))(logits, img[None])
    fast = DenseCRF(replace(cfg, method="fast"))(logits, img[None])
    assert float((exact.log() - fast.log()).abs().max()) < 0.02


def test_crf_cleans_an_uncertain_blob_and_keeps_a_sharp_edge():
    """A two-region image: a wrong, weak blob inside the left region is removed; the colour edge stays put."""
    h, w = 40, 60
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :30] = (200, 60, 60)
    img[:, 30:] = (40, 90, 220)
    truth = np.zeros((h, w), np.int64)
    truth[:, 30:] = 1
    logits = torch.zeros((1, 2, h, w))
    logits[0, 0] = torch.from_numpy(np.where(truth == 0, 1.5, -1.5)).float()
    # Network error: a weak blob of class 1 in the left half, and a boundary smeared 4 px to the right.
    logits[0, 0, 12:20, 8:16] = -0.4
    logits[0, 0, :, 30:34] = 0.3
    before = logits.argmax(1)[0].numpy()
    assert (before != truth).sum() > 100
    q = fast_crf(torch.log_softmax(logits[0], 0), torch.from_numpy(img), CRFConfig(reference_size=0,
                                                                                  theta_alpha=40, iterations=10))
    after = q.argmax(0).numpy()
    assert (after != truth).sum() == 0


def test_spatial_widths_scale_with_the_frame():
    cfg = CRFConfig()
    assert cfg.widths(375, 500) == (121.0, 5.0, 3.0)
    a, b, g = cfg.widths(512, 1024)
    assert a == pytest.approx(121 * 1024 / 500) and b == 5.0 and g == pytest.approx(3 * 1024 / 500)
    assert replace(cfg, reference_size=0).widths(512, 1024) == (121.0, 5.0, 3.0)


# -- confidence gating --------------------------------------------------------------------------------------------

def test_gated_crf_updates_only_the_uncertain_band(scene, logits):
    lp = torch.log_softmax(logits[0], 0)
    conf = lp.amax(0).exp()
    cfg = CRFConfig(iterations=5, confidence_threshold=0.8, band=2)
    active = uncertain_region(conf, 0.8, 2)
    assert 0.0 < float(active.float().mean()) < 0.8
    assert bool(active[conf < 0.8].all())
    q = DenseCRF(cfg)(logits, scene.image[None])[0]
    soft = torch.softmax(logits[0], 0)
    assert torch.equal(q[:, ~active], soft[:, ~active])
    full = DenseCRF(replace(cfg, confidence_threshold=0.0))(logits, scene.image[None])[0]
    inside = (q.argmax(0) == full.argmax(0))[active].float().mean()
    assert float(inside) > 0.97


def test_all_certain_and_all_uncertain_frames(scene):
    h, w = scene.labels.shape
    certain = torch.full((1, 3, h, w), -20.0)
    certain[0, 1] = 20.0
    for thr in (0.0, 0.9):
        q = DenseCRF(CRFConfig(confidence_threshold=thr))(certain, scene.image[None])
        assert bool((q.argmax(1) == 1).all()) and bool(torch.isfinite(q).all())
    # Gated and everything certain: the network's probabilities pass through untouched.
    q = DenseCRF(CRFConfig(confidence_threshold=0.9))(certain, scene.image[None])
    assert torch.equal(q, torch.softmax(certain, 1))
    # Every class equally likely everywhere: the mean field has nothing to prefer and stays uniform.
    flat = torch.zeros((1, 4, h, w))
    for thr in (0.0, 0.9):
        q = DenseCRF(CRFConfig(confidence_threshold=thr))(flat, scene.image[None])
        assert torch.allclose(q, torch.full_like(q, 0.25), atol=1e-5)


def test_one_class_is_probability_one(scene):
    h, w = scene.labels.shape
    q = DenseCRF(CRFConfig())(torch.randn((1, 1, h, w)), scene.image[None])
    assert q.shape == (1, 1, h, w) and bool((q == 1).all())


# -- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,reason", [
    ("iterations", -1, "crf.iterations must lie in [1, 100]"),
    ("iterations", 10**6, "crf.iterations must lie in [1, 100]"),
    ("iterations", 2.5, "crf.iterations must be an integer"),
    ("theta_alpha", 0.0, "crf.theta_alpha must lie in"),
    ("theta_alpha", 1e12, "crf.theta_alpha must lie in"),
    ("theta_beta", -5.0, "crf.theta_beta must lie in"),
    ("theta_gamma", float("nan"), "crf.theta_gamma must lie in"),
    ("w1", -1.0, "crf.w1 must lie in"),
    ("reference_size", 10, "crf.reference_size must be 0"),
    ("confidence_threshold", 1.5, "crf.confidence_threshold must lie in"),
    ("downsample", -1, "crf.downsample must lie in [0, 16]"),
    ("downsample", 64, "crf.downsample must lie in [0, 16]"),
    ("downsample", 2.5, "crf.downsample must be an integer"),
    ("method", "magic", "crf.method must be one of"),
])
def test_bad_settings_are_one_sentence(field, value, reason):
    with pytest.raises(ConfigError, match=r"^" + reason.replace("[", r"\[").replace("]", r"\]")) as e:
        CRFConfig(**{field: value})
    assert str(e.value).endswith(".") and "\n" not in str(e.value)


@pytest.mark.parametrize("name,value", [("crf.iterations", -3), ("crf.iterations", 1000), ("crf.theta_alpha", 1e9),
                                        ("crf.theta_beta", 0.0), ("crf.band", -1), ("crf.reference_size", 5),
                                        ("crf.method", "gpu")])
def test_the_parameter_schema_rejects_absurd_values(name, value):
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        validate(name, value)


def test_mismatched_sizes_are_refused(scene, logits):
    crf = DenseCRF(CRFConfig())
    with pytest.raises(InputError, match="same N, H and W"):
        crf(logits, scene.image[None, :-1])
    with pytest.raises(InputError, match="same N, H and W"):
        crf(logits[0], scene.image)
    with pytest.raises(InputError, match="same N, H and W"):
        crf(logits, np.concatenate([scene.image[None]] * 2))


def test_missing_pydensecrf2_is_a_clear_error_or_a_fallback(no_pydensecrf, scene, logits):
    with pytest.raises(CRFUnavailableError, match="pip install pydensecrf2") as e:
        DenseCRF(CRFConfig(method="exact"))
    assert "crf.exact_fallback=true" in str(e.value)
    crf = DenseCRF(CRFConfig(method="exact", exact_fallback=True))
    assert crf.method == "fast"
    assert DenseCRF(CRFConfig(method="auto")).method == "fast"
    assert crf(logits, scene.image[None]).shape == logits.shape


# -- the pipeline, the parameters, the node's engine, the CLI --------------------------------------------------

@pytest.mark.slow
def test_segmenter_crf_stage_and_runtime_switch(random_model_file):
    img = generate_scene(5, SIZE).image
    seg = Segmenter(random_model_file, device="cpu")
    plain = seg.segment(img)
    assert set(plain.timings) == {*STAGES, "total"} and plain.timings["crf"] == 0.0
    seg.crf = CRFConfig(iterations=3)
    refined = seg.segment(img)
    assert refined.timings["crf"] > 0 and "fast dense CRF (3 iterations" in seg.describe()
    assert refined.timings["total"] == pytest.approx(sum(refined.timings[s] for s in STAGES))
    assert refined.labels.shape == SIZE and refined.confidence.shape == SIZE
    assert float(refined.confidence.min()) >= 0 and float(refined.confidence.max()) <= 1 + 1e-6
    assert refined.color is not None and refined.overlay is not None
    seg.crf = None
    assert np.array_equal(seg.segment(img).labels, plain.labels)


def test_crf_parameters_become_the_segmenter_setting():
    vals = defaults()
    assert crf_config(vals) is None
    vals = validate_all({"crf.enabled": True, "crf.method": "fast", "crf.iterations": 4, "crf.w1": 5,
                         "crf.confidence_threshold": 0.7})
    cfg = crf_config(vals)
    assert cfg == CRFConfig(method="fast", iterations=4, w1=5.0, confidence_threshold=0.7)


def test_engine_applies_crf_changes_on_the_next_frame_without_a_rebuild(random_model_file, no_pydensecrf):
    from rosbags.typesys import Stores, get_typestore

    from seg_ros.io.messages import encode_rgb
    from seg_ros.ros.engine import SegmentationEngine

    ts = get_typestore(Stores.ROS2_KILTED)
    image_cls = ts.types["sensor_msgs/msg/Image"]
    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, image_cls, lambda o, m: None)
    try:
        seg = eng.segmenter
        assert eng.apply({"crf.enabled": True, "crf.iterations": 2}) == (True, "")
        assert eng.segmenter is seg and seg.crf == CRFConfig(iterations=2)
        assert eng.stats.counts()["reloads"] == 0 and eng.summary()
        ok, why = eng.apply({"crf.method": "exact"})
        assert not ok and "pydensecrf2" in why and seg.crf.method == "fast" and eng.values["crf.method"] == "fast"
        assert eng.apply({"crf.method": "exact", "crf.exact_fallback": True}) == (True, "")
        assert seg.crf_stage.method == "fast"
        assert eng.apply({"crf.enabled": False}) == (True, "") and seg.crf is None
        f = encode_rgb(generate_scene(2, SIZE).image, "rgb8")
        del f
    finally:
        eng.close()


def test_cli_segment_with_crf_and_bad_crf_settings(tmp_path, random_model_file, capsys):
    import cv2

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), generate_scene(4, SIZE).image[:, :, ::-1])
    out = tmp_path / "out"
    assert main(["segment", str(src), "--out", str(out), "--model", str(random_model_file), "--device", "cpu",
                 "--crf", "--set", "crf.iterations=2", "--quiet"]) == 0
    assert "fast dense CRF (2 iterations" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir())
    bad = tmp_path / "bad"
    assert main(["segment", str(src), "--out", str(bad), "--model", str(random_model_file), "--device", "cpu",
                 "--crf", "--set", "crf.iterations=-2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "crf.iterations must lie in [1, 100]" in err and not bad.exists()
    assert main(["segment", str(src), "--out", str(bad), "--set", "crf.nope=1", "--quiet"]) == 2
    assert "unknown parameter 'crf.nope'" in capsys.readouterr().err and not bad.exists()


@pytest.mark.slow
def test_cli_evaluate_with_crf(tmp_path, random_model_file, capsys):
    from seg_ros.evaluate import load_report
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    bag = tmp_path / "bag"
    write_dataset_bag(SyntheticDriveSource(3, 2, SIZE), bag, progress=False)
    assert main(["evaluate", "--bag", str(bag), "--model", str(random_model_file), "--device", "cpu",
                 "--set", "crf.enabled=true", "--set", "crf.iterations=2", "--out", str(tmp_path / "r"),
                 "--no-charts", "--quiet"]) == 0
    rep = load_report(tmp_path / "r" / "report.json")
    assert rep.settings["values"]["crf.enabled"] is True and rep.latency_ms["crf"].p50 > 0
    assert main(["evaluate", "--bag", str(bag), "--model", str(random_model_file), "--set", "crf.theta_beta=0",
                 "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "crf.theta_beta" in capsys.readouterr().err and not (tmp_path / "r2").exists()


# -- the benchmark helpers (no timing asserted) ------------------------------------------------------------------

@pytest.mark.slow
def test_crf_bench_and_accuracy_helpers(random_model_file):
    rows = bench_crf_speed((40, 56), classes=5, iterations=2, frames=1, warmup=0, thresholds=(0.0, 0.9),
                           exact_frames=1, downsample=(0, 1, 2))
    fast = [r for r in rows if r.method == "fast"]
    # auto is full resolution at this size (one row for 0 and 1), then grid 1/2, then gated at the auto step
    assert [r.grid_step for r in fast] == [1, 2, 1] and fast[2].refined_pct <= 100.0
    assert [r.confidence_threshold for r in fast] == [0.0, 0.0, 0.9]
    if exact_available():
        assert rows[0].method == "exact" and fast[0].agreement_pct > 95.0 and fast[0].speedup > 0
    assert format_speed_table(rows).count("\n") == len(rows) + 1
    seg = Segmenter(random_model_file, device="cpu")
    frames = [(s.image, s.labels) for s in (generate_scene(i, (40, 56)) for i in range(2))]
    variants = {"fast": CRFConfig(iterations=2)}
    if exact_available():
        variants["exact"] = CRFConfig(method="exact", iterations=2)
    res = crf_accuracy(seg, frames, variants)
    assert res.frames == 2 and set(res.variants) == {"none", *variants}
    assert res.variants["none"].gain == 0.0 and 0 <= res.variants["fast"].miou <= 100
    assert "| none |" in format_accuracy_table(res)


def test_cli_crf_bench_scores_camvid_with_a_parameter_file(tmp_path, capsys):
    import json

    import cv2

    root = tmp_path / "camvid"
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "labels").mkdir(parents=True)
    for i in range(2):
        s = generate_scene(4000 + i, (72, 96))
        cv2.imwrite(str(root / "val" / "images" / f"f{i}.png"), s.image[..., ::-1])
        cv2.imwrite(str(root / "val" / "labels" / f"f{i}.png"), s.labels)
    params = tmp_path / "p.yaml"
    # No pairwise term: the CRF must give back the network's own labels (gain exactly 0).
    params.write_text("/**:\n  ros__parameters:\n    model: liteseg_mobilenetv2_synthetic\n"
                      '    resolution: "48x64"\n    crf:\n      w1: 0.0\n      w2: 0.0\n      iterations: 2\n')
    out = tmp_path / "b.json"
    assert main(["bench", "crf", "--device", "cpu", "--resolution", "64x96", "--classes", "3",
                 "--iterations", "1", "--frames", "1", "--warmup", "0", "--gate", "0", "--scenes", "0",
                 "--downsample", "2", "--camvid", str(root), "--camvid-params", str(params),
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())["accuracy"]["camvid"]
    assert res["frames"] == 2 and res["crf"] == f"CRF settings of {params}"
    assert "at 48x64" in res["model"] and "liteseg_mobilenetv2_synthetic" in res["model"]
    assert res["variants"]["fast"]["gain"] == pytest.approx(0.0, abs=1e-9)
    assert res["grid_step"] == 1 and "fast, full resolution" not in res["variants"]  # 72x96 frames: full resolution
    assert res["variants"]["fast, 1/2 grid"]["gain"] == pytest.approx(0.0, abs=1e-9)  # asked for; no pairwise either
    assert f"CRF settings of {params}" in capsys.readouterr().out
    assert main(["bench", "crf", "--downsample", "0", "--json", str(tmp_path / "c.json")]) == 2
    assert "--downsample takes grid steps from 1 to 16" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
