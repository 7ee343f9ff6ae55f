"""Backend selection and fallback, int8 through ONNX Runtime, runtime parameters, CUDA graphs (where CUDA exists)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scene_compare import compare_on_scenes, write_frames

from seg_ros.cli import main
from seg_ros.core.errors import ConfigError
from seg_ros.io.bags import BagWriter
from seg_ros.pipeline import Segmenter
from seg_ros.runtime import (
    AUTO_ORDER,
    BACKENDS,
    PRECISIONS,
    BackendUnavailableError,
    RuntimeOptions,
    TorchBackend,
    can_run,
    choose_backend,
)
from seg_ros.runtime.calibration import CalibrationError, load_calibration, read_calibration_frames
from seg_ros.synthetic import generate_scene

CPU = torch.device("cpu")
HAS_TRT = can_run("tensorrt", torch.device("cuda", 0), "fp16", False)[0] if torch.cuda.is_available() else False


@pytest.fixture
def opts(tmp_path):
    return RuntimeOptions(cache_dir=str(tmp_path / "cache"))


def test_auto_on_the_cpu_without_openvino_prefers_onnxruntime_and_says_why(random_model_file, opts):
    name, why = choose_backend(CPU, "fp32", False, exclude=("openvino",))
    assert name == "onnxruntime" and why.startswith("auto: ONNX Runtime is the fastest CPU backend")
    assert "not tensorrt: TensorRT needs a CUDA device" in why
    assert choose_backend(CPU, "fp32", False, exclude=("openvino", "onnxruntime"))[0] == "torch"
    with pytest.raises(BackendUnavailableError, match="no backend can run this model at fp16 on cpu"):
        choose_backend(CPU, "fp16", False)
    assert AUTO_ORDER == ("tensorrt", "openvino", "onnxruntime", "torch")


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_each_backend_refuses_in_its_constructor_exactly_what_can_run_refuses(device, precision):
    """One capability check per backend: can_run's answer is the constructor's (no model is built for it)."""
    device = torch.device(device)
    for name, cls in BACKENDS.items():
        ok, why = can_run(name, device, precision, False)
        refused = cls.refusal(device, precision, False)
        assert ok is (refused is None) and (ok or why == refused.reason)
        if refused is not None:
            source = torch.nn.Conv2d(3, 2, 1) if cls is TorchBackend else _FakeSource()
            with pytest.raises(type(refused.error), match=re.escape(str(refused.error))):
                cls(source, device, precision, RuntimeOptions())
    assert AUTO_ORDER == tuple(sorted(BACKENDS, key=lambda n: BACKENDS[n].auto_rank))
    assert can_run("caffe", device, precision, False) == (False, "unknown backend 'caffe'")


def test_torch_refuses_an_onnx_file_by_name():
    refused = TorchBackend.refusal(CPU, "fp32", True, "net.onnx")
    assert refused.reason == "torch cannot run an ONNX file"
    assert str(refused.error).startswith("the torch backend cannot run the ONNX file net.onnx;")


class _FakeSource:
    """Just enough of a ModelSource for a constructor that refuses before reading the model."""

    is_onnx = False
    path = Path("net.safetensors")


@pytest.mark.slow
def test_tensorrt_without_tensorrt_falls_back_or_fails_by_parameter(random_model_file, opts, caplog):
    if HAS_TRT:
        pytest.skip("TensorRT is usable here")
    expected = choose_backend(CPU, "fp32", False, exclude=("tensorrt",))[0]  # openvino where it is installed
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        seg = Segmenter(random_model_file, device="cpu", backend="tensorrt", runtime=opts)
    assert seg.backend.name == expected
    assert f"falling back to {expected}" in caplog.text
    assert "fallback from tensorrt" in seg.describe()
    strict = RuntimeOptions(cache_dir=opts.cache_dir, fallback=False)
    with pytest.raises(BackendUnavailableError, match="tensorrt backend needs a CUDA device|needs TensorRT"):
        Segmenter(random_model_file, device="cpu", backend="tensorrt", runtime=strict)


def test_cli_backend_errors_exit_2(random_model_file, tmp_path, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((64, 96, 3), np.uint8))
    base = ["segment", str(img), "--model", str(random_model_file), "--out", str(tmp_path / "o"),
            "--cache-dir", str(tmp_path / "c")]
    if not HAS_TRT:
        assert main([*base, "--device", "cpu", "--backend", "tensorrt", "--no-fallback"]) == 2
        assert "tensorrt backend" in capsys.readouterr().err
    assert main([*base, "--device", "cuda:7", "--backend", "onnxruntime"]) == 2
    assert "cuda:7" in capsys.readouterr().err
    assert main([*base, "--device", "cpu", "--backend", "onnxruntime", "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert "int8 needs calibration frames" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_onnxruntime_rejects_what_it_cannot_do(random_model_file, opts):
    with pytest.raises(ConfigError, match="fp16 is not available with the onnxruntime backend"):
        Segmenter(random_model_file, device="cpu", backend="onnxruntime", precision="fp16",
                  runtime=RuntimeOptions(cache_dir=opts.cache_dir, fallback=False))
    with pytest.raises(ConfigError, match="on_new_shape must be one of"):
        RuntimeOptions(on_new_shape="maybe")
    with pytest.raises(ConfigError, match="threads"):
        RuntimeOptions(threads=-1)


@pytest.mark.slow
def test_onnxruntime_threads_do_not_spin_between_frames(random_model_file, opts):
    # Spinning intra-op threads keep the cores busy after each run and slow the pipeline's own postprocessing.
    seg = Segmenter(random_model_file, device="cpu", backend="onnxruntime", runtime=opts)
    so = seg.backend.session.get_session_options()
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.intra_op_num_threads == opts.threads


def test_calibration_frames_from_a_folder_and_a_bag(tmp_path):
    folder = write_frames(tmp_path / "frames", 5, (48, 64))
    frames = read_calibration_frames(folder, limit=3)
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3)
    np.testing.assert_array_equal(frames[2], generate_scene(9004, (48, 64)).image)  # evenly spaced: 0, 2, 4
    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        for i in range(4):
            w.write_image("/cam/image_raw", generate_scene(9000 + i, (48, 64)).image, 1_000_000_000 * (i + 1))
    from_bag = read_calibration_frames(bag, limit=10)
    assert len(from_bag) == 4
    np.testing.assert_array_equal(from_bag[1], frames[0] if False else generate_scene(9001, (48, 64)).image)
    a = load_calibration(folder, (32, 48), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), limit=2)
    b = load_calibration(folder, (32, 48), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), limit=3)
    assert a.data.shape == (2, 3, 32, 48) and a.data.dtype == np.float32 and a.sha256 != b.sha256
    assert a.data.min() >= -2.0 and a.data.max() <= 2.0  # (x/255 - 0.5) / 0.25
    # a dataset bag (camera, ground truth, camera_info): the camera topic it records, no topic to name
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    write_dataset_bag(SyntheticDriveSource(7, 3, (48, 64)), tmp_path / "drive", progress=False)
    drive = read_calibration_frames(tmp_path / "drive", limit=10)
    assert len(drive) == 3 and drive[0].shape == (48, 64, 3) and drive[0].std() > 10  # frames, not label maps
    for src, msg in (("", "needs calibration frames"), (tmp_path / "nope", "does not exist"),
                     (tmp_path / "frames" / "000.png", "neither a bag nor an image folder")):
        with pytest.raises(CalibrationError, match=msg):
            read_calibration_frames(src)


@pytest.mark.slow
def test_int8_on_the_cpu_is_calibrated_and_close_to_fp32(tmp_path):
    """The shipped model at a small size: int8 (QDQ, calibrated on 8 frames) against fp32 on the same frames."""
    size = (96, 160)
    folder = write_frames(tmp_path / "calib", 8, size)
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), calibration=str(folder), fallback=False)
    fp32 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="onnxruntime", runtime=opts)
    int8 = Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="onnxruntime", precision="int8",
                     runtime=opts)
    assert int8.backend.precision == "int8"
    (q,) = (tmp_path / "cache" / "int8").glob("*.onnx")
    import onnx

    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    agree, miou_fp32, miou_int8 = compare_on_scenes(fp32, int8, range(500, 504), size)
    assert agree > 0.9
    assert abs(miou_fp32 - miou_int8) < 0.05
    # cached: a second int8 Segmenter reuses the quantized model
    mtime = q.stat().st_mtime_ns
    Segmenter(resolution=size, keep_aspect=False, device="cpu", backend="onnxruntime", precision="int8", runtime=opts)
    assert q.stat().st_mtime_ns == mtime


def test_runtime_parameters_reach_the_segmenter(tmp_path, random_model_file):
    from seg_ros.config import load_params_file, segmenter_kwargs

    p = tmp_path / "params.yaml"
    p.write_text(f"""
segmentation_node:
  ros__parameters:
    model: {random_model_file}
    backend: onnxruntime
    device: cpu
    runtime:
      threads: 1
      cache_dir: {tmp_path / 'cache'}
      on_new_shape: error
""")
    kw = segmenter_kwargs(load_params_file(p))
    rt = kw["runtime"]
    assert (rt.threads, rt.on_new_shape, rt.fallback, rt.cuda_graphs) == (1, "error", True, False)
    seg = Segmenter(**kw)
    assert seg.backend.name == "onnxruntime" and seg.backend.threads == 1
    p.write_text(p.read_text().replace("error", "sometimes"))
    with pytest.raises(ConfigError, match="runtime.on_new_shape must be one of rebuild, error"):
        load_params_file(p)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graphs_replay_matches_eager(random_model_file, precision):
    frames = [generate_scene(s, (64, 96)).image for s in range(3)]
    eager = Segmenter(random_model_file, device="cuda:0", precision=precision)
    graphed = Segmenter(random_model_file, device="cuda:0", precision=precision,
                        runtime=RuntimeOptions(cuda_graphs=True))
    assert "with CUDA graphs" in graphed.describe()
    for f in frames + frames[:1]:  # a replay after other inputs gives the same answer
        a, b = eager.segment(f), graphed.segment(f)
        assert (a.labels == b.labels).mean() >= 0.999
    assert len(graphed.backend.captured_shapes) == 1
    graphed.segment(np.zeros((64, 64, 3), np.uint8))  # a new shape captures a second graph
    assert len(graphed.backend.captured_shapes) == 2


@needs_cuda
def test_onnxruntime_on_cuda_or_a_clear_error(random_model_file, tmp_path):
    from seg_ros.runtime.ort_backend import ort_cuda_available

    strict = RuntimeOptions(cache_dir=str(tmp_path), fallback=False)
    if not ort_cuda_available():
        with pytest.raises(BackendUnavailableError, match="CUDA provider"):
            Segmenter(random_model_file, device="cuda:0", backend="onnxruntime", runtime=strict)
        return
    frame = generate_scene(1, (64, 96)).image
    ref = Segmenter(random_model_file, device="cuda:0").segment(frame)
    seg = Segmenter(random_model_file, device="cuda:0", backend="onnxruntime", runtime=strict)
    for _ in range(2):
        assert (seg.segment(frame).labels == ref.labels).mean() >= 0.999
