"""Everything of the TensorRT backend up to the TensorRT calls: fingerprints, the engine cache, shape decisions,
calibration batches; plus the TensorRT calls themselves where TensorRT and a CUDA GPU exist."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

import numpy as np
import pytest
import torch

from seg_ros.core.cache_entry import CacheDirError, sha256_json
from seg_ros.core.errors import ConfigError
from seg_ros.runtime.calibration import BatchFeeder, CalibrationError, CalibrationSet
from seg_ros.runtime.engine_cache import FINGERPRINT, PLAN, EngineCache, EngineFingerprint
from seg_ros.runtime.tensorrt_backend import CalibrationFeed, decide_shape, make_fingerprint, tensorrt_status

FP = EngineFingerprint(onnx_sha256="a" * 64, tensorrt_version="10.13.0", gpu_name="NVIDIA H100 80GB HBM3",
                       compute_capability="9.0", precision="fp16", input_shape=(1, 3, 360, 640), model_stem="m")


def test_fingerprint_key_depends_on_every_field():
    keys = {FP.key()}
    for change in (dict(onnx_sha256="b" * 64), dict(tensorrt_version="10.14.1"), dict(gpu_name="NVIDIA L4"),
                   dict(compute_capability="8.9"), dict(precision="int8"), dict(input_shape=(1, 3, 512, 1024)),
                   dict(calibration_sha256="c" * 64)):
        keys.add(dataclasses.replace(FP, **change).key())
    assert len(keys) == 8
    assert dataclasses.replace(FP, model_stem="other").key() == FP.key()  # the stem only names the folder
    assert FP.dirname() == f"m-fp16-1x3x360x640-{FP.key()}"


def test_make_fingerprint_from_model_and_calibration(tmp_path):
    from seg_ros.runtime.onnx_model import OnnxModel

    model = OnnxModel(path=tmp_path / "net.onnx", sha256="d" * 64, meta=None, input_name="input",  # type: ignore
                      output_name="logits", output_kind="logits", fixed_size=None, fixed_batch=None, opset=18)
    calib = CalibrationSet(np.zeros((2, 3, 8, 8), np.float32), "frames/", "e" * 64)
    fp = make_fingerprint(model, "10.1", ("GPU", "8.6"), "int8", (1, 3, 8, 8), calib)
    assert (fp.onnx_sha256, fp.calibration_sha256, fp.input_shape, fp.model_stem) == ("d" * 64, "e" * 64,
                                                                                      (1, 3, 8, 8), "net")
    assert make_fingerprint(model, "10.1", ("GPU", "8.6"), "fp16", (1, 3, 8, 8), None).calibration_sha256 == ""


def test_cache_round_trip_is_atomic_and_verified(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.load(FP) is None
    built = []
    plan, new = cache.get_or_build(FP, lambda: built.append(1) or b"PLAN" * 1000)
    assert new and plan == b"PLAN" * 1000
    plan2, new2 = cache.get_or_build(FP, lambda: built.append(1) or b"other")
    assert not new2 and plan2 == plan and built == [1]
    d = cache.entry(FP)
    assert sorted(p.name for p in d.iterdir()) == [PLAN, FINGERPRINT]  # no temporary files left behind
    rec = json.loads((d / FINGERPRINT).read_text())
    assert rec["source"] == FP.fields() and rec["source"]["input_shape"] == [1, 3, 360, 640]
    assert (rec["content"], rec["content_bytes"], rec["key"]) == (PLAN, 4000, FP.key())
    assert rec["content_sha256"] == hashlib.sha256(b"PLAN" * 1000).hexdigest()
    # another fingerprint has its own entry
    other = dataclasses.replace(FP, precision="fp32")
    assert cache.load(other) is None


def _edit_manifest(d, **fields):
    rec = json.loads((d / FINGERPRINT).read_text())
    rec.update(fields)
    if "source" in fields and "source_sha256" not in fields:
        rec["source_sha256"] = sha256_json(fields["source"])
    (d / FINGERPRINT).write_text(json.dumps(rec))


@pytest.mark.parametrize("damage,reason", [
    (lambda d: (d / PLAN).write_bytes(b"PLAN" * 999 + b"PLAX"), "does not match the recorded SHA-256"),
    (lambda d: (d / PLAN).write_bytes(b"PLAN"), "does not match the recorded size (4 bytes, not 4000"),
    (lambda d: (d / PLAN).unlink(), "cannot be read"),
    (lambda d: (d / FINGERPRINT).write_text("{trunc"), "unreadable"),
    (lambda d: (d / FINGERPRINT).unlink(), "interrupted write"),
    (lambda d: (d / FINGERPRINT).write_text(json.dumps({"fingerprint": {}, "key": "x"})), "not a seg_ros cache"),
    (lambda d: _edit_manifest(d, source={**FP.fields(), "precision": "int8"}), "stale: precision differ"),
    (lambda d: _edit_manifest(d, source_sha256="0" * 64), "does not match its own source hash"),
])
def test_corrupt_or_stale_entries_are_rebuilt_with_a_log_line(tmp_path, caplog, damage, reason):
    cache = EngineCache(tmp_path)
    cache.store(FP, b"PLAN" * 1000)
    damage(cache.entry(FP))
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        plan, new = cache.get_or_build(FP, lambda: b"fresh")
    assert new and plan == b"fresh"
    assert reason in caplog.text and "rebuilding" in caplog.text
    (line,) = [r.getMessage() for r in caplog.records]  # one line, naming the entry
    assert line.startswith(f"TensorRT engine cache entry {cache.entry(FP) / PLAN} is unusable: ")
    assert cache.load(FP) == b"fresh"


def test_failed_build_leaves_no_entry(tmp_path):
    cache = EngineCache(tmp_path)

    def boom():
        raise RuntimeError("builder ran out of memory")

    with pytest.raises(RuntimeError):
        cache.get_or_build(FP, boom)
    assert not cache.entry(FP).exists() or not any(cache.entry(FP).iterdir())
    assert cache.load(FP) is None


def test_shape_decisions():
    built = {(1, 3, 360, 640)}
    assert decide_shape((1, 3, 360, 640), built, 1, "error", None) == ((1, 3, 360, 640), False)
    assert decide_shape((1, 3, 360, 640), set(), 1, "error", None) == ((1, 3, 360, 640), True)  # the first engine
    assert decide_shape((1, 3, 360, 480), built, 1, "rebuild", None) == ((1, 3, 360, 480), True)
    assert decide_shape((2, 3, 360, 640), {(4, 3, 360, 640)}, 4, "error", None) == ((4, 3, 360, 640), False)
    with pytest.raises(ConfigError, match="built for 360x640, not 360x480.*on_new_shape"):
        decide_shape((1, 3, 360, 480), built, 1, "error", None)
    with pytest.raises(ConfigError, match="exceeds the TensorRT engine's maximum batch 1"):
        decide_shape((2, 3, 360, 640), built, 1, "rebuild", None)
    with pytest.raises(ConfigError, match="takes only 360x640 inputs"):
        decide_shape((1, 3, 360, 480), built, 1, "rebuild", (360, 640))


def test_batch_feeder_and_calibration_feed(tmp_path):
    data = np.arange(5 * 3 * 4 * 4, dtype=np.float32).reshape(5, 3, 4, 4)
    feeder = BatchFeeder(data, 2)
    batches = list(feeder)
    assert len(feeder) == 2 and [b.shape for b in batches] == [(2, 3, 4, 4)] * 2  # the partial batch is dropped
    np.testing.assert_array_equal(batches[1], data[2:4])
    assert all(b.flags.c_contiguous for b in batches)
    with pytest.raises(CalibrationError, match="at least 8 frames"):
        BatchFeeder(data, 8)

    calib = CalibrationSet(data, "x", "f" * 64)
    cache = EngineCache(tmp_path)
    fp = dataclasses.replace(FP, precision="int8", calibration_sha256="f" * 64, input_shape=(2, 3, 4, 4))
    feed = CalibrationFeed(calib, 2, torch.device("cpu"), cache.calibration_cache(fp))
    ptrs = feed.next_pointers()
    assert ptrs == [feed.current.data_ptr()]
    np.testing.assert_array_equal(feed.current.numpy(), data[:2])
    assert feed.next_pointers() == ptrs  # one reused device buffer
    np.testing.assert_array_equal(feed.current.numpy(), data[2:4])
    assert feed.next_pointers() is None and feed.fed == 2
    assert feed.read_cache() is None
    feed.write_cache(memoryview(b"TRT-calibration-table"))
    assert feed.read_cache() == b"TRT-calibration-table"
    table = feed.cache.content
    assert sorted(p.name for p in (tmp_path / "calibration").iterdir()) == [table.name, feed.cache.manifest.name]
    # a damaged table is not handed to TensorRT: it calibrates anew
    table.write_bytes(b"TRT-calibration-tablf")
    assert feed.read_cache() is None and not table.exists()


def test_unusable_cache_folder_is_one_sentence_before_building(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    built = []
    with pytest.raises(CacheDirError, match=r"because .*file is a file; remove it or set runtime.cache_dir"):
        EngineCache(tmp_path / "file" / "tensorrt").get_or_build(FP, lambda: built.append(1) or b"PLAN")
    assert built == []  # refused before minutes of building
    cache = EngineCache(tmp_path / "c")
    cache.entry(FP).mkdir(parents=True)
    (cache.entry(FP) / PLAN).mkdir()  # a folder where the plan file belongs
    with pytest.raises(CacheDirError, match="is a folder where seg_ros keeps a TensorRT engine cache file"):
        cache.get_or_build(FP, lambda: b"PLAN")


_TRT_OK, _TRT_WHY = tensorrt_status()
needs_trt = pytest.mark.skipif(not _TRT_OK, reason=f"needs TensorRT and a CUDA GPU ({_TRT_WHY})")


@needs_trt
def test_tensorrt_engine_matches_torch_and_is_cached(random_model_file, tmp_path, caplog):
    from seg_ros.pipeline import Segmenter
    from seg_ros.runtime import RuntimeOptions

    opts = RuntimeOptions(cache_dir=str(tmp_path), fallback=False)
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    ref = Segmenter(random_model_file, device="cuda:0").segment(frame)
    seg = Segmenter(random_model_file, device="cuda:0", backend="tensorrt", precision="fp32", runtime=opts)
    got = seg.segment(frame)
    assert (got.labels == ref.labels).mean() >= 0.999
    np.testing.assert_allclose(got.confidence, ref.confidence, atol=1e-3)
    (entry,) = [p for p in (tmp_path / "tensorrt").iterdir() if p.name != "calibration"]
    plan = (entry / PLAN).read_bytes()
    (entry / PLAN).write_bytes(plan[: len(plan) // 2])  # corrupt: rebuilt with a log line, same answer
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        seg2 = Segmenter(random_model_file, device="cuda:0", backend="tensorrt", precision="fp32", runtime=opts)
    assert "rebuilding" in caplog.text
    assert (seg2.segment(frame).labels == ref.labels).mean() >= 0.999
    # another input size: rebuilt by default, an error when asked
    assert seg2.segment(np.zeros((64, 64, 3), np.uint8)).labels.shape == (64, 64)
    strict = Segmenter(random_model_file, device="cuda:0", backend="tensorrt", precision="fp32",
                       runtime=dataclasses.replace(opts, on_new_shape="error"))
    with pytest.raises(ConfigError, match="built for 64x96"):
        strict.segment(np.zeros((64, 64, 3), np.uint8))


@needs_trt
def test_tensorrt_fp16_and_int8(random_model_file, tmp_path):
    import cv2

    from seg_ros.pipeline import Segmenter
    from seg_ros.runtime import RuntimeOptions
    from seg_ros.synthetic import generate_scene

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i in range(8):
        cv2.imwrite(str(frames_dir / f"{i}.png"), generate_scene(i, (64, 96)).image[..., ::-1])
    frame = generate_scene(100, (64, 96)).image
    ref = Segmenter(random_model_file, device="cuda:0").segment(frame)
    for precision in ("fp16", "int8"):
        opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), calibration=str(frames_dir), fallback=False)
        seg = Segmenter(random_model_file, device="cuda:0", backend="tensorrt", precision=precision, runtime=opts)
        assert (seg.segment(frame).labels == ref.labels).mean() >= (0.99 if precision == "fp16" else 0.8)
    assert list((tmp_path / "cache" / "tensorrt" / "calibration").glob("*.cache"))
