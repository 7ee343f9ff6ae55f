"""The openvino backend: agreement with torch, bf16, the compiled-model cache, refusals, BYO ONNX files."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch
from scene_compare import compare_on_scenes, write_frames

from seg_ros.core.errors import ConfigError
from seg_ros.pipeline import Segmenter
from seg_ros.runtime import BackendUnavailableError, OpenvinoBackend, RuntimeOptions, can_run, choose_backend
from seg_ros.synthetic import generate_scene

ov = pytest.importorskip("openvino", reason="the openvino package is not installed (x86-64 Linux installs it)")

CPU = torch.device("cpu")
SIZE = (64, 96)


def has_native_bf16() -> bool:
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture
def opts(tmp_path):
    return RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)


@pytest.fixture
def plain_opts(opts):
    """The network alone in OpenVINO, the pipeline's own steps around it (no fused graph)."""
    return dataclasses.replace(opts, fuse_pre_post=False)


def test_auto_picks_openvino_on_the_cpu_and_says_why(random_model_file, opts, caplog):
    name, why = choose_backend(CPU, "fp32", False)
    assert name == "openvino" and why.startswith("auto: OpenVINO is the fastest CPU runtime")
    assert "not tensorrt: TensorRT needs a CUDA device" in why
    with caplog.at_level(logging.INFO, logger="seg_ros.runtime"):
        seg = Segmenter(random_model_file, device="cpu", backend="auto", runtime=opts)
    assert seg.backend.name == "openvino" and caplog.text.count("backend openvino chosen") == 1
    assert choose_backend(CPU, "int8", False)[0] == "openvino"


@pytest.mark.parametrize(("device", "precision", "reason"), [
    ("cuda:0", "fp32", "the openvino backend runs on the CPU, not cuda:0"),
    ("cpu", "fp16", "the openvino backend has no fp16"),
])
def test_openvino_refuses_what_it_cannot_run(device, precision, reason):
    assert can_run("openvino", torch.device(device), precision, False) == (False, reason)
    refused = OpenvinoBackend.refusal(torch.device(device), precision, False)
    assert isinstance(refused.error, ConfigError) and str(refused.error).endswith(".")
    if device == "cuda:0":
        assert isinstance(refused.error, BackendUnavailableError)


def test_openvino_fp32_matches_torch(random_model_file, opts):
    ref = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="torch")
    seg = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                    runtime=opts)
    assert seg.backend.name == "openvino" and seg.backend.precision == "fp32"
    frames = np.stack([generate_scene(s, SIZE).image for s in (1, 2, 3)])
    x = ref.network_input(frames)
    a = ref.backend.infer(x).float()
    b = seg.backend.infer(seg.network_input(frames)).float().clone()
    assert b.shape == a.shape == (3, 11, *SIZE)
    assert torch.allclose(a, b, atol=2e-3, rtol=1e-3), (a - b).abs().max()
    for r_ref, r_ov in zip(ref.segment_batch(frames), seg.segment_batch(frames)):
        assert (r_ref.labels == r_ov.labels).mean() > 0.999


def test_compiled_models_are_cached_verified_and_rebuilt(random_model_file, plain_opts, caplog):
    opts = plain_opts
    first = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                      runtime=opts)
    shape = (1, 3, *SIZE)
    assert first.backend.compiled_shapes == (shape,) and first.backend.compile_seconds[shape] > 0
    entry = first.backend.cache_entry(shape)
    assert entry.load() is not None and entry.record()["source"]["openvino"] == ov.get_version()
    frame = generate_scene(5, SIZE).image
    expected = first.segment(frame).labels
    second = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                       runtime=opts)
    assert second.backend.compile_seconds[shape] == 0.0  # imported, not compiled
    np.testing.assert_array_equal(second.segment(frame).labels, expected)
    blob = bytearray(entry.content.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.content.write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        third = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                          runtime=opts)
    assert "OpenVINO compiled model cache entry" in caplog.text and "does not match the recorded SHA-256" in caplog.text
    assert third.backend.compile_seconds[shape] > 0
    np.testing.assert_array_equal(third.segment(frame).labels, expected)
    # another input size compiles (and caches) one more model; the first stays
    third.segment(generate_scene(6, (48, 80)).image)
    assert len(third.backend.compiled_shapes) == 1  # keep_aspect=False at a fixed resolution: one shape
    batch = np.stack([frame, frame])
    third.segment_batch(batch)
    assert third.backend.compiled_shapes == (shape, (2, 3, *SIZE))


def test_bf16_is_close_to_fp32_or_says_it_runs_fp32(opts):
    """The shipped synthetic model on synthetic scenes: bf16 (native on AMX / AVX-512 BF16 CPUs) within a point of
    fp32's mIoU; on other CPUs the backend runs fp32 and notes it."""
    size = (180, 320)
    fp32 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="openvino", runtime=opts)
    bf16 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="openvino", precision="bf16",
                     runtime=opts)
    if not has_native_bf16():
        assert bf16.backend.precision == "fp32" and "no native bf16" in bf16.backend.note
        return
    assert bf16.backend.precision == "bf16"
    agree, miou_fp32, miou_bf16 = compare_on_scenes(fp32, bf16, range(700, 706), size)
    assert agree > 0.98
    assert abs(miou_fp32 - miou_bf16) < 0.01


@pytest.mark.slow
def test_int8_runs_the_calibrated_qdq_model_close_to_fp32(tmp_path):
    """The shipped model at a small size: OpenVINO int8 (the QDQ model calibrated on 8 frames, shared with the
    onnxruntime backend's cache) against OpenVINO fp32 on the same frames."""
    size = (96, 160)
    folder = write_frames(tmp_path / "calib", 8, size)
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), calibration=str(folder), fallback=False)
    fp32 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="openvino", runtime=opts)
    int8 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="openvino", precision="int8",
                     runtime=opts)
    assert int8.backend.precision == "int8" and int8.backend.network.parent.name == "int8"
    agree, miou_fp32, miou_int8 = compare_on_scenes(fp32, int8, range(500, 504), size)
    assert agree > 0.9
    assert abs(miou_fp32 - miou_int8) < 0.01  # within a point of fp32
    with pytest.raises(ConfigError, match="int8 needs calibration frames"):
        Segmenter(resolution=size, device="cpu", backend="openvino", precision="int8",
                  runtime=RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False))


def test_a_byo_onnx_file_runs_on_openvino(tmp_path, random_model_file, opts):
    from seg_ros.cli import main

    onnx_path = tmp_path / "net.onnx"
    assert main(["export", "--model", str(random_model_file), "--onnx", str(onnx_path), "--dynamic"]) == 0
    ref = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="torch")
    seg = Segmenter(str(onnx_path), resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                    runtime=opts)
    frame = generate_scene(8, SIZE).image
    assert (seg.segment(frame).labels == ref.segment(frame).labels).mean() > 0.999


def test_a_substituted_compiled_model_is_rebuilt(random_model_file, plain_opts, caplog):
    """Another shape's valid compiled model copied over an entry: the content hash differs, so it is rebuilt."""
    opts = plain_opts
    seg = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                    runtime=opts)
    seg.segment_batch(np.stack([generate_scene(1, SIZE).image] * 2))
    one, two = (seg.backend.cache_entry(s) for s in seg.backend.compiled_shapes)
    one.content.write_bytes(two.content.read_bytes())
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        again = Segmenter(random_model_file, resolution=SIZE, keep_aspect=False, device="cpu", backend="openvino",
                          runtime=opts)
    assert "does not match the recorded" in caplog.text
    assert again.backend.compile_seconds[(1, 3, *SIZE)] > 0


def test_without_openvino_a_named_backend_is_one_sentence_or_falls_back(random_model_file, tmp_path, monkeypatch,
                                                                         caplog):
    monkeypatch.setitem(__import__("sys").modules, "openvino", None)  # `import openvino` raises ImportError
    strict = RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)
    with pytest.raises(BackendUnavailableError) as e:
        Segmenter(random_model_file, device="cpu", backend="openvino", runtime=strict)
    assert str(e.value) == "the openvino backend needs the openvino package (pip install openvino)."
    assert choose_backend(CPU, "fp32", False)[0] == "onnxruntime"
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        seg = Segmenter(random_model_file, device="cpu", backend="openvino",
                        runtime=RuntimeOptions(cache_dir=str(tmp_path / "cache")))
    assert seg.backend.name == "onnxruntime" and "falling back to onnxruntime" in caplog.text


def test_evaluate_runs_on_openvino(tmp_path, random_model_file):
    from seg_ros.cli import main
    from seg_ros.evaluate import load_report
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    bag = tmp_path / "bag"
    write_dataset_bag(SyntheticDriveSource(3, 2, SIZE), bag, progress=False)
    assert main(["evaluate", "--bag", str(bag), "--model", str(random_model_file), "--device", "cpu",
                 "--set", "backend=openvino", "--set", f"runtime.cache_dir={tmp_path / 'cache'}",
                 "--out", str(tmp_path / "r"),
                 "--no-charts", "--quiet"]) == 0
    rep = load_report(tmp_path / "r" / "report.json")
    assert " on openvino on cpu (fp32)" in rep.model.description and rep.frames.scored == 2
    assert (rep.model.backend, rep.model.precision) == ("openvino", "fp32")


def test_frames_of_ever_new_shapes_share_one_dynamic_model(random_model_file, plain_opts):
    """keep_aspect with frames of changing aspect ratios (a hostile or misconfigured camera): past
    MAX_STATIC_SHAPES input shapes, one dynamic-shape model serves them all, so memory and the cache stay bounded,
    and the labels still match torch's."""
    from seg_ros.runtime.openvino_backend import MAX_STATIC_SHAPES

    ref = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="torch")
    seg = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="openvino", runtime=plain_opts)
    sizes = [(64, 96 + 8 * i) for i in range(MAX_STATIC_SHAPES + 4)]
    for size in sizes:
        frame = generate_scene(len(size) + size[1], size).image
        assert (seg.segment(frame).labels == ref.segment(frame).labels).mean() > 0.999
    assert len(seg.backend.compiled_shapes) == MAX_STATIC_SHAPES and seg.backend.dynamic_compiled
    blobs = list((plain_opts.cache_root() / "openvino").glob("*.blob"))
    assert len(blobs) == MAX_STATIC_SHAPES + 1


@pytest.mark.parametrize("frame_size", [SIZE, (96, 144), (40, 60)], ids=["same", "larger", "smaller"])
def test_the_fused_graph_gives_the_pipelines_own_results(random_model_file, opts, plain_opts, frame_size):
    """Normalise → network → upsample → argmax / max softmax inside OpenVINO's graph equals the pipeline's own
    steps around the network alone, for frames at, above and below the inference size."""
    fused = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="openvino", runtime=opts)
    plain = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="openvino", runtime=plain_opts)
    frames = np.stack([generate_scene(s, frame_size).image for s in (11, 12)])
    for a, b in zip(fused.segment_batch(frames), plain.segment_batch(frames)):
        assert a.labels.shape == frame_size and a.labels.dtype == np.uint8
        assert (a.labels == b.labels).mean() > 0.999
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
        same = a.labels == b.labels
        np.testing.assert_array_equal(a.overlay[same], b.overlay[same])
        assert a.timings["postprocess"] < b.timings["postprocess"]  # argmax and upsampling ran inside infer
    ih, iw = fused.inference_size(*frame_size)
    assert fused.backend.fused_graphs == (((1, ih, iw, 3), frame_size, True),)  # a batch runs frame by frame
    assert plain.backend.fused_graphs == ()


def test_fused_graphs_are_cached_bounded_and_skipped_with_the_crf(random_model_file, opts):
    from seg_ros.crf import CRFConfig
    from seg_ros.runtime.openvino_backend import MAX_FUSED_GRAPHS

    ref = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="torch")
    seg = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="openvino", runtime=opts)
    sizes = [(64, 96 + 16 * i) for i in range(MAX_FUSED_GRAPHS + 2)]
    for size in sizes:
        frame = generate_scene(size[1], size).image
        assert (seg.segment(frame, ("labels",)).labels == ref.segment(frame).labels).mean() > 0.999
    keys = seg.backend.fused_graphs
    assert len(keys) == MAX_FUSED_GRAPHS and [k[1] for k in keys] == sizes[:MAX_FUSED_GRAPHS]
    assert all(seg.backend.compile_seconds[k] > 0 for k in keys)
    # the sizes past the bound ran the network alone, with the pipeline's own steps
    assert len(seg.backend.compiled_shapes) > 1
    again = Segmenter(random_model_file, resolution=SIZE, device="cpu", backend="openvino", runtime=opts)
    frame = generate_scene(sizes[0][1], sizes[0]).image
    np.testing.assert_array_equal(again.segment(frame, ("labels",)).labels, seg.segment(frame, ("labels",)).labels)
    assert again.backend.compile_seconds[keys[0]] == 0.0  # imported from the cache
    again.crf = CRFConfig(iterations=1)
    with_crf = again.segment(generate_scene(3, SIZE).image)
    assert with_crf.timings["crf"] > 0 and again.backend.fused_graphs == (keys[0],)
