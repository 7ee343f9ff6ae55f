"""ONNX export (checked against torch), the ONNX Runtime backend, and bring-your-own ONNX with sidecars."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch
import yaml

from seg_ros.cli import main
from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import CAMVID
from seg_ros.models import available, build
from seg_ros.pipeline import Segmenter
from seg_ros.runtime import RuntimeOptions
from seg_ros.runtime.export import MAX_ABS_DIFF, MIN_AGREEMENT, ExportError, export_onnx
from seg_ros.runtime.onnx_model import SIDECAR_KEY, OnnxModelError, load_onnx_model
from seg_ros.synthetic import generate_scene


@pytest.fixture(scope="module")
def dynamic_onnx(random_model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "random_dyn.onnx"
    rep = export_onnx(random_model_file, out, dynamic=True)
    return out, rep


@pytest.fixture(scope="module")
def opts(tmp_path_factory):
    """One cache for the module: the model file is exported once and reused by the later tests."""
    return RuntimeOptions(cache_dir=str(tmp_path_factory.mktemp("cache")), fallback=False)


def test_dynamic_export_is_one_checked_file_with_its_description(dynamic_onnx):
    path, rep = dynamic_onnx
    assert [p.name for p in path.parent.iterdir()] == ["random_dyn.onnx"]  # self-contained, no stray files
    assert rep.size is None and rep.opset >= 18
    assert rep.checked_sizes == [(64, 96), (40, 40)]
    assert rep.max_abs_diff <= MAX_ABS_DIFF and rep.agreement >= MIN_AGREEMENT
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]
    desc = json.loads({p.key: p.value for p in proto.metadata_props}[SIDECAR_KEY])
    assert desc["label_set"]["name"] == "camvid" and desc["input"]["size"] == "dynamic"
    m = load_onnx_model(path)
    assert m.fixed_size is None and m.meta.input_size == (64, 96) and m.meta.label_set == CAMVID
    assert (m.input_name, m.output_name, m.output_kind) == ("input", "logits", "logits")


def test_fixed_export_and_cli(random_model_file, tmp_path, capsys):
    out = tmp_path / "fixed.onnx"
    assert main(["export", "--model", str(random_model_file), "--onnx", str(out), "--resolution", "64x96"]) == 0
    printed = capsys.readouterr().out
    assert "checked against torch at 64x96: max |Δlogit|" in printed
    m = load_onnx_model(out)
    assert m.fixed_size == (64, 96)


@pytest.mark.parametrize("args,message", [
    (["--onnx", "{tmp}/x.onnx", "--opset", "17"], "opset 17 is too old"),
    (["--onnx", "{tmp}/x.onnx", "--model", "{tmp}/gone.safetensors"], "does not exist"),
    (["--onnx", "{tmp}/x.onnx", "--dynamic", "--resolution", "64x96"], "not both"),
    ([], "--onnx"),
    (["--tensorrt", "--device", "cpu"], None),
])
def test_export_errors_exit_2_and_write_nothing(args, message, random_model_file, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--model" not in args:
        args += ["--model", str(random_model_file)]
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (message is None or message in err)
    assert not (tmp_path / "x.onnx").exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("arch", available())
@pytest.mark.slow
def test_every_registry_model_exports_and_matches_torch(arch, tmp_path):
    from seg_ros.models.modelfile import ModelMeta, save_model

    torch.manual_seed(0)
    model = build(arch, CAMVID.num_classes).eval()
    # Random deep networks give logits in the hundreds; scale the classifier so they are O(1), as trained
    # models' are, and the absolute 1e-3 limit means what it means for a real model.
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        scale = float(model(torch.randn(1, 3, 64, 64)).std()) or 1.0
        last.weight /= scale
        if last.bias is not None:
            last.bias /= scale
    path = tmp_path / f"{arch}.safetensors"
    save_model(path, model, ModelMeta(arch, CAMVID, (64, 64)))
    rep = export_onnx(path, tmp_path / f"{arch}.onnx", dynamic=arch.startswith("liteseg_mobilenet"))
    assert rep.max_abs_diff <= MAX_ABS_DIFF and rep.agreement >= MIN_AGREEMENT


def test_export_mismatch_writes_nothing(random_model_file, tmp_path, monkeypatch):
    import seg_ros.runtime.export as ex

    monkeypatch.setattr(ex, "MAX_ABS_DIFF", 0.0)  # an impossible limit: the check must refuse the file
    monkeypatch.setattr(ex, "MIN_AGREEMENT", 1.01)
    with pytest.raises(ExportError, match="differs from torch"):
        ex.export_onnx(random_model_file, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_onnxruntime_backend_matches_torch(random_model_file, dynamic_onnx, opts, rng):
    frames = [rng.integers(0, 256, (70, 100, 3), dtype=np.uint8) for _ in range(2)]
    ref = Segmenter(random_model_file, device="cpu").segment_batch(frames)
    for model in (random_model_file, dynamic_onnx[0]):
        seg = Segmenter(model, device="cpu", backend="onnxruntime", runtime=opts)
        assert seg.backend.name == "onnxruntime" and not seg.backend.channels_last
        got = seg.segment_batch(frames)
        for a, b in zip(ref, got):
            assert (a.labels == b.labels).mean() >= 0.999
            np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
            assert (np.abs(a.overlay.astype(int) - b.overlay.astype(int)) <= 1).mean() >= 0.999
    # the model file's export was cached under the cache dir and is reused
    cached = list((opts.cache_root() / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and cached[0].with_name(f"{cached[0].stem}.manifest.json").is_file()
    mtime = cached[0].stat().st_mtime_ns
    Segmenter(random_model_file, device="cpu", backend="onnxruntime", runtime=opts)
    assert cached[0].stat().st_mtime_ns == mtime


def test_threads_option_reaches_the_session(random_model_file, opts):
    seg = Segmenter(random_model_file, device="cpu", backend="onnxruntime",
                    runtime=RuntimeOptions(**{**opts.__dict__, "threads": 1}))
    assert seg.backend.session.get_session_options().intra_op_num_threads == 1
    assert "1 threads" in seg.describe()


@pytest.mark.slow
def test_corrupt_cached_export_is_redone(random_model_file, tmp_path, caplog):
    opts = RuntimeOptions(cache_dir=str(tmp_path / "cache"), fallback=False)
    Segmenter(random_model_file, device="cpu", backend="onnxruntime", runtime=opts)
    (cached,) = (opts.cache_root() / "onnx").glob("*.onnx")
    cached.write_bytes(b"not an onnx file")
    seg = Segmenter(random_model_file, device="cpu", backend="onnxruntime", runtime=opts)
    assert f"ONNX export cache entry {cached} is unusable: its {cached.name} does not match the recorded size" \
        in caplog.text and "rebuilding it" in caplog.text
    assert seg.segment(generate_scene(1, (64, 96)).image).labels.shape == (64, 96)


# -- bring your own ONNX -----------------------------------------------------------------------------------------------

class _Foreign(torch.nn.Module):
    """A model as another toolbox exports it: its own tensor names, logits at 1/4 resolution or an argmax."""

    def __init__(self, net, labels: bool):
        super().__init__()
        self.net, self.labels = net, labels

    def forward(self, x):
        y = torch.nn.functional.avg_pool2d(self.net(x), 4)
        return y.argmax(1) if self.labels else y


@pytest.fixture(scope="module")
def foreign(random_model_file, tmp_path_factory):
    """Two foreign-style ONNX files (exported once per module): logits at 1/4 resolution, and an argmax."""
    from seg_ros.models.modelfile import load_model

    net, _ = load_model(random_model_file)
    d = tmp_path_factory.mktemp("foreign")
    out = {}
    for kind in ("logits", "labels"):
        path = d / f"{kind}.onnx"
        torch.onnx.export(_Foreign(net, kind == "labels").eval(), (torch.zeros(1, 3, 64, 96),), str(path),
                          opset_version=18, input_names=["pixel_values"], output_names=["seg"], dynamo=False)
        out[kind] = path.read_bytes()
    return out


def _foreign_onnx(tmp_path, foreign, labels=False, name="foreign"):
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(foreign["labels" if labels else "logits"])
    return path


def _sidecar(path, **over):
    desc = {"label_set": "camvid", "normalization": {"mean": [123.675, 116.28, 103.53],
                                                     "std": [58.395, 57.12, 57.375], "scale": 1},
            "input": {"name": "pixel_values", "size": "64x96"}, "output": {"name": "seg", "kind": "logits"}}
    for k, v in over.items():
        desc[k] = v
    sc = path.with_suffix(".yaml")
    sc.write_text(yaml.safe_dump(desc))
    return sc


def test_byo_onnx_with_sidecar_logits_and_label_map(random_model_file, foreign, tmp_path, opts):
    frame = generate_scene(3, (64, 96)).image
    ref = Segmenter(random_model_file, device="cpu").segment(frame)
    logits_path = _foreign_onnx(tmp_path, foreign)
    _sidecar(logits_path)
    m = load_onnx_model(logits_path)
    assert m.meta.mean == pytest.approx((0.485, 0.456, 0.406)) and m.fixed_size == (64, 96)
    seg = Segmenter(logits_path, device="cpu", backend="onnxruntime", runtime=opts)
    assert seg.backend.name == "onnxruntime" and seg.resolution == (64, 96)
    got = seg.segment(frame)
    assert got.labels.shape == (64, 96) and (got.labels == ref.labels).mean() > 0.5

    labels_path = _foreign_onnx(tmp_path, foreign, labels=True, name="argmax")
    _sidecar(labels_path, output={"name": "seg", "kind": "labels"})
    seg2 = Segmenter(labels_path, device="cpu", backend="onnxruntime", runtime=opts)
    r = seg2.segment(frame)
    assert seg2.backend.output_kind == "labels"
    assert (r.labels == got.labels).mean() > 0.85  # the same network; nearest vs bilinear upsampling of 16x24
    blocks = r.labels.reshape(16, 4, 24, 4)
    assert (blocks == blocks[:, :1, :, :1]).all()  # a 1/4-resolution label map, nearest-upsampled
    assert np.all(r.confidence == 1.0) and r.color.shape == (64, 96, 3)
    np.testing.assert_array_equal(r.color, CAMVID.palette[r.labels])


@pytest.mark.parametrize("over,message", [
    ({"input": {"name": "images", "size": "64x96"}}, "names input 'images' but"),
    ({"output": {"name": "out", "kind": "logits"}}, "names output 'out' but"),
    ({"label_set": "cityscapes"}, "cityscapes (19 classes) but output 'seg'"),
    ({"input": {"name": "pixel_values", "size": "dynamic"}}, "is dynamic but"),
    ({"input": {"name": "pixel_values", "size": "128x96"}}, "is 128x96 but"),
    ({"output": {"name": "seg", "kind": "labels"}}, "is a label map (N, h, w) but"),
    ({"output": {"name": "seg", "kind": "probs"}}, "logits or labels"),
    ({"label_set": None}, "no label_set"),
    ({"input": {"name": "pixel_values"}}, "input.size"),
])
def test_sidecar_mismatch_is_named(over, message, foreign, tmp_path):
    path = _foreign_onnx(tmp_path, foreign)
    _sidecar(path, **over)
    with pytest.raises(OnnxModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_onnx_model(path)


def test_a_sidecar_that_is_a_fifo_or_too_large_is_refused_before_it_is_read(foreign, tmp_path):
    path = _foreign_onnx(tmp_path, foreign)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # reading it would block for ever
    with pytest.raises(OnnxModelError) as e:
        load_onnx_model(path, sidecar=fifo)
    assert str(e.value) == f"sidecar {fifo} is a FIFO, not a regular file; give a file."
    with open(path.with_suffix(".yaml"), "wb") as f:
        f.truncate(1 << 30)  # sparse
    with pytest.raises(OnnxModelError) as e:
        load_onnx_model(path)
    assert str(e.value).startswith(f"sidecar {path.with_suffix('.yaml')} is larger than 4,194,304 bytes")


def test_onnx_errors(foreign, tmp_path, dynamic_onnx, capsys, opts):
    with pytest.raises(OnnxModelError, match="does not exist"):
        Segmenter(tmp_path / "gone.onnx", device="cpu", backend="onnxruntime")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(dynamic_onnx[0].read_bytes()[:5000])  # truncated
    with pytest.raises(OnnxModelError, match="not a readable ONNX file"):
        Segmenter(bad, device="cpu", backend="onnxruntime")
    bare = _foreign_onnx(tmp_path, foreign, name="bare")
    with pytest.raises(OnnxModelError, match="has no sidecar"):
        load_onnx_model(bare)
    # a fixed-size model at another resolution, and the torch backend on an ONNX file
    fixed = _foreign_onnx(tmp_path, foreign, name="fixed")
    _sidecar(fixed)
    with pytest.raises(ConfigError, match="takes only 64x96 inputs, not 96x96"):
        Segmenter(fixed, resolution="96x96", device="cpu", backend="onnxruntime")
    seg = Segmenter(fixed, device="cpu", backend="onnxruntime", runtime=opts)
    with pytest.raises(ConfigError, match="takes only 64x96 inputs but the pipeline feeds 64x85"):
        seg.segment(np.zeros((120, 160, 3), np.uint8))  # keep_aspect fits 120x160 into 64x85
    with pytest.raises(ConfigError, match="torch backend cannot run the ONNX file"):
        Segmenter(dynamic_onnx[0], device="cpu", backend="torch")
    assert main(["segment", str(tmp_path / "x.png"), "--model", str(bad), "--backend", "onnxruntime",
                 "--out", str(tmp_path / "o")]) == 2
