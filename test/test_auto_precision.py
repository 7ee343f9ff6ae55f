"""precision=auto: the fastest precision whose labels stay within the tolerance of fp32's, else fp32."""

from __future__ import annotations

import cv2
import pytest

from seg_ros.config import SPECS
from seg_ros.pipeline import Segmenter
from seg_ros.runtime import RuntimeOptions, auto_precision
from seg_ros.synthetic import generate_scene

ov = pytest.importorskip("openvino", reason="the openvino package is not installed (x86-64 Linux installs it)")

SIZE = (96, 160)


def native_bf16() -> bool:
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def seg(opts: RuntimeOptions, backend: str = "openvino", precision: str = "auto") -> Segmenter:
    return Segmenter(resolution=SIZE, keep_aspect=False, device="cpu", backend=backend, precision=precision,
                     runtime=opts)


def test_auto_is_a_precision_setting():
    assert SPECS["precision"].choices[0] == "auto" and SPECS["precision"].default == "auto"


def test_auto_takes_the_first_candidate_within_the_tolerance(tmp_path):
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)
    chosen = seg(opts).backend
    fp32 = seg(opts, precision="fp32").backend
    if not native_bf16():
        assert chosen.precision == "fp32" and "precision auto: fp32" in chosen.note
        return
    frames, what = auto_precision.check_frames(SIZE, opts)
    assert what == f"{auto_precision.CHECK_FRAMES} synthetic scenes" and frames[0].shape == (*SIZE, 3)
    bf16 = seg(opts, precision="bf16").backend
    inputs = [seg(opts, precision="fp32").network_input(f[None]) for f in frames]
    c = auto_precision.compare(fp32, bf16, inputs)
    assert 0.9 < c.agreement <= 1.0 and c.speedup > 0
    if chosen.precision == "bf16":
        assert c.agreement >= auto_precision.MIN_AGREEMENT
        assert "precision auto: bf16: labels equal fp32's on " in chosen.note
        assert f"% of the pixels of {auto_precision.CHECK_FRAMES} synthetic scenes, " in chosen.note
    else:  # the agreement or the speed-up (a busy machine, a CPU that emulates bf16) fell short
        assert chosen.precision == "fp32" and "no faster precision" in chosen.note


def test_a_candidate_that_is_not_faster_is_passed_over(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(auto_precision, "MIN_SPEEDUP", 1000.0)
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)
    with caplog.at_level("INFO", logger="seg_ros.runtime"):
        chosen = seg(opts).backend
    assert chosen.precision == "fp32"
    if native_bf16():
        assert "precision auto passed over bf16: labels equal fp32's on" in caplog.text
        assert "needs 99% and 1000.00x" in caplog.text


def test_auto_stays_fp32_when_no_candidate_keeps_the_labels(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(auto_precision, "MIN_AGREEMENT", 1.01)  # no precision can agree on more than all pixels
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)
    chosen = seg(opts).backend
    assert chosen.precision == "fp32"
    assert "no faster precision" in chosen.note


def test_int8_is_a_candidate_only_with_calibration_frames(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(generate_scene(40 + i, SIZE).image, cv2.COLOR_RGB2BGR))
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), calibration=str(folder), fallback=False)
    chosen = seg(opts).backend
    frames, what = auto_precision.check_frames(SIZE, opts)
    assert what == "4 calibration frames" and len(frames) == 4
    fp32 = seg(opts, precision="fp32")
    inputs = [fp32.network_input(f[None]) for f in frames]
    int8 = seg(opts, precision="int8").backend
    c = auto_precision.compare(fp32.backend, int8, inputs)
    if c.agreement >= auto_precision.MIN_AGREEMENT and c.speedup >= auto_precision.MIN_SPEEDUP:
        assert chosen.precision == "int8"
    else:
        assert chosen.precision in ("bf16", "fp32") and "int8" not in chosen.note.split("precision auto: ")[-1][:5]


def test_torch_on_the_cpu_has_no_faster_precision(tmp_path):
    chosen = seg(RuntimeOptions(cache_dir=str(tmp_path / "cache")), backend="torch").backend
    assert chosen.name == "torch" and chosen.precision == "fp32"
    assert chosen.note.endswith("precision auto: fp32, no faster precision here")


def test_the_check_costs_about_the_same_at_any_resolution():
    assert auto_precision.check_count((96, 160)) == auto_precision.CHECK_FRAMES
    assert auto_precision.check_count((360, 640)) == auto_precision.CHECK_FRAMES
    assert auto_precision.check_count((720, 1280)) == 2
    assert auto_precision.check_count((2048, 2048)) == 2  # never fewer than two
    assert auto_precision.check_count((512, 640)) * 512 * 640 <= auto_precision.CHECK_PIXELS
