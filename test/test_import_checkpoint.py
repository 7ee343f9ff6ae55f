"""`seg-ros import-checkpoint`: official LiteSeg and torchvision deeplabv3 checkpoints → model files.

The LiteSeg checkpoints are synthetic tensors laid out exactly under the official key names and shapes of
../shared/fixtures/liteseg_official_state_dict_keys.json (outside the repository; SEG_ROS_FIXTURES overrides
the folder). The torchvision layout is derived below from torchvision's ResNet / DeepLabHead / FCNHead code.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from pathlib import Path

import pytest
import torch

from seg_ros.cli import main
from seg_ros.core.labels import CITYSCAPES, VOC
from seg_ros.models import build
from seg_ros.models.checkpoint_import import CheckpointImportError, build_converted, convert, import_checkpoint
from seg_ros.models.modelfile import load_model

FIXTURE_DIR = Path(os.environ.get("SEG_ROS_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared"
                                  / "fixtures"))
FIXTURE = FIXTURE_DIR / "liteseg_official_state_dict_keys.json"
needs_fixture = pytest.mark.skipif(
    not FIXTURE.is_file(), reason=f"official LiteSeg key fixture {FIXTURE} is absent (set SEG_ROS_FIXTURES)")

# (fixture entry, seg_ros architecture, official backbone prefix, official ImageNet-head prefix)
LITESEG = {
    "mobilenet": ("liteseg_mobilenetv2", "mobile_features.", "mobile_features.classifier."),
    "shufflenet": ("liteseg_shufflenet", "shuffle_features.module.", "shuffle_features.module.fc."),
    "darknet": ("liteseg_darknet19", "resnet_features.", None),
}
# The MobileNetV2 code LiteSeg uses numbers each block's layers conv.0 … conv.7 (conv, BN, ReLU6 repeated);
# torchvision groups conv+BN+ReLU6 as conv.{j}.{0,1,2}. Block 1 has no expansion layer.
MNV2_EXPANDED = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
MNV2_PLAIN = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}


def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _official_to_seg_ros(key: str, prefix: str) -> str:
    """Where an official LiteSeg tensor lives in seg_ros (head keys are identical)."""
    if not key.startswith(prefix):
        return key
    rest = key[len(prefix):]
    m = re.match(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$", rest) if prefix == "mobile_features." else None
    if m:
        table = MNV2_PLAIN if m.group(1) == "1" else MNV2_EXPANDED
        rest = f"features.{m.group(1)}.conv.{table[m.group(2)]}.{m.group(3)}"
    return "backbone." + rest


def _synthetic(shapes: dict[str, list[int] | tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random tensors of the given shapes (positive running variances, integer BN counters)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.randint(1, 1000, tuple(shape), generator=g, dtype=torch.int64)
        elif k.endswith("running_var"):
            out[k] = torch.rand(tuple(shape), generator=g) + 0.5
        else:
            out[k] = torch.randn(tuple(shape), generator=g) * 0.1
    return out


def _reference(arch: str, num_classes: int, state: dict[str, torch.Tensor], **kw) -> torch.nn.Module:
    model = build(arch, num_classes, **kw)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _outputs_equal(a: torch.nn.Module, b: torch.nn.Module, size=(97, 129)) -> bool:
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ya, yb = a(x), b(x)
    assert ya.shape == (1, a.num_classes, *size)
    return torch.equal(ya, yb)


@needs_fixture
@pytest.mark.parametrize("entry", list(LITESEG))
@pytest.mark.slow
def test_official_liteseg_checkpoint_imports_key_for_key(entry, tmp_path, capsys):
    arch, prefix, head = LITESEG[entry]
    shapes = _fixture()[entry]
    state = _synthetic(shapes)
    ckpt = tmp_path / f"liteseg-{entry}-cityscapes.pth"
    torch.save(state, ckpt, _use_new_zipfile_serialization=False)  # the legacy format of torch 0.4 checkpoints
    out = tmp_path / "imported.safetensors"
    assert main(["import-checkpoint", str(ckpt), "--out", str(out), "--val-miou", "0.7"]) == 0
    printed = capsys.readouterr().out
    assert "every key matched" in printed

    model, meta = load_model(out)
    assert meta.architecture == arch and meta.label_set == CITYSCAPES and meta.input_size == (512, 1024)
    prov = meta.provenance
    assert prov["source_format"] == arch and prov["imported_from"] == ckpt.name and prov["val_miou"] == 0.7
    assert len(prov["checkpoint_sha256"]) == 64

    # Every official tensor is consumed: the ImageNet head is left out, everything else lands, unchanged, at
    # its counterpart, and the model has no tensor that did not come from the checkpoint.
    dropped = {k for k in shapes if head and k.startswith(head)}
    assert sorted(k.rsplit(".", 1)[1] for k in dropped) == (["bias", "weight"] if head else [])
    if head:
        assert "left out 2 tensors" in printed
    got = model.state_dict()
    mapped = {_official_to_seg_ros(k, prefix): k for k in shapes if k not in dropped}
    assert set(mapped) == set(got)
    for new, old in mapped.items():
        assert list(got[new].shape) == shapes[old], new
        assert torch.equal(got[new], state[old]), new

    reference = _reference(arch, 19, {new: state[old] for new, old in mapped.items()})
    assert _outputs_equal(model, reference)


@needs_fixture
def test_dataparallel_prefix_and_wrapped_state_dict_are_accepted(tmp_path):
    shapes = _fixture()["shufflenet"]
    state = _synthetic(shapes, seed=3)
    ckpt = tmp_path / "wrapped.pth"
    torch.save({"epoch": 200, "state_dict": {f"module.{k}": v for k, v in state.items()}}, ckpt)
    report = import_checkpoint(ckpt, tmp_path / "m.safetensors", input_size=(360, 640))
    assert report.source_format == "liteseg_shufflenet" and report.consumed == len(shapes) - 2
    assert report.meta.input_size == (360, 640)
    model, _ = load_model(report.path)
    assert torch.equal(model.state_dict()["backbone.conv1.weight"], state["shuffle_features.module.conv1.weight"])


@needs_fixture
def test_missing_num_batches_tracked_is_tolerated_and_reported(tmp_path):
    shapes = {k: v for k, v in _fixture()["darknet"].items() if not k.endswith("num_batches_tracked")}
    ckpt = tmp_path / "old.pth"
    torch.save(_synthetic(shapes), ckpt)
    report = import_checkpoint(ckpt, tmp_path / "m.safetensors")
    # 18 backbone BNs + 12 in the head (aspp1: 1, aspp2-4: 2 each, image pooling, bn1, bn2, last_conv: 2).
    assert len(report.filled) == 30 and all(k.endswith("num_batches_tracked") for k in report.filled)
    assert report.consumed == len(shapes) == 193 - 30


# -- torchvision deeplabv3 ------------------------------------------------------------------------------

def torchvision_deeplabv3_shapes(depth: int, num_classes: int, aux: bool = True,
                                 batches_tracked: bool = True) -> dict[str, tuple[int, ...]]:
    """Key → shape of torchvision's deeplabv3_resnet{depth} state dict, written from torchvision's code:
    ``IntermediateLayerGetter(resnet)`` (no avgpool/fc), ``DeepLabHead(2048)`` and ``FCNHead(1024)`` as
    ``aux_classifier``."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name, cout, cin, k, bias=False):
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        if bias:
            shapes[f"{name}.bias"] = (cout,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)
        if batches_tracked:
            shapes[f"{name}.num_batches_tracked"] = ()

    conv("backbone.conv1", 64, 3, 7)
    bn("backbone.bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]),
                                             start=1):
        for b in range(blocks):
            pre = f"backbone.layer{layer}.{b}"
            conv(f"{pre}.conv1", planes, inplanes, 1)
            bn(f"{pre}.bn1", planes)
            conv(f"{pre}.conv2", planes, planes, 3)
            bn(f"{pre}.bn2", planes)
            conv(f"{pre}.conv3", planes * 4, planes, 1)
            bn(f"{pre}.bn3", planes * 4)
            if b == 0:
                conv(f"{pre}.downsample.0", planes * 4, inplanes, 1)
                bn(f"{pre}.downsample.1", planes * 4)
            inplanes = planes * 4
    conv("classifier.0.convs.0.0", 256, 2048, 1)
    bn("classifier.0.convs.0.1", 256)
    for i in (1, 2, 3):
        conv(f"classifier.0.convs.{i}.0", 256, 2048, 3)
        bn(f"classifier.0.convs.{i}.1", 256)
    conv("classifier.0.convs.4.1", 256, 2048, 1)  # ASPPPooling: 0 is the average pool
    bn("classifier.0.convs.4.2", 256)
    conv("classifier.0.project.0", 256, 5 * 256, 1)
    bn("classifier.0.project.1", 256)
    conv("classifier.1", 256, 256, 3)
    bn("classifier.2", 256)
    conv("classifier.4", num_classes, 256, 1, bias=True)
    if aux:
        conv("aux_classifier.0", 256, 1024, 3)
        bn("aux_classifier.1", 256)
        conv("aux_classifier.4", num_classes, 256, 1, bias=True)
    return shapes


@pytest.mark.slow
def test_torchvision_deeplabv3_resnet50_imports_key_for_key(tmp_path, capsys):
    shapes = torchvision_deeplabv3_shapes(50, 21)
    state = _synthetic(shapes, seed=5)
    ckpt = tmp_path / "deeplabv3_resnet50_coco.pth"
    torch.save(state, ckpt)
    out = tmp_path / "dlv3.safetensors"
    assert main(["import-checkpoint", str(ckpt), "--out", str(out)]) == 0
    aux = [k for k in shapes if k.startswith("aux_classifier.")]  # the auxiliary FCN head
    assert len(aux) == 8 and f"left out {len(aux)} tensors" in capsys.readouterr().out
    model, meta = load_model(out)
    assert meta.architecture == "deeplabv3_resnet50" and meta.arch_kwargs == {"output_stride": 8}
    assert meta.label_set == VOC and meta.input_size == (520, 520)
    kept = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    got = model.state_dict()
    assert set(got) == set(kept)
    assert all(torch.equal(got[k], v) for k, v in kept.items())
    reference = _reference("deeplabv3_resnet50", 21, kept, output_stride=8)
    assert _outputs_equal(model, reference, size=(65, 97))


def test_torchvision_deeplabv3_resnet101_without_bn_counters_is_recognised():
    # Shapes are all that matter here, so the tensors and the model live on the meta device.
    shapes = torchvision_deeplabv3_shapes(101, 21, batches_tracked=False)
    state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    conv = convert(state)
    assert conv.architecture == "deeplabv3_resnet101" and conv.num_classes == 21
    assert conv.arch_kwargs == {"output_stride": 8}
    assert sorted(conv.dropped) == sorted(k for k in state if k.startswith("aux_classifier."))
    with torch.device("meta"):
        model, filled = build_converted(conv)
    assert len(filled) == sum(1 for k in model.state_dict() if k.endswith("num_batches_tracked")) == 104 + 7
    assert set(model.state_dict()) == {k for k in shapes if not k.startswith("aux_classifier.")} | set(filled)


# -- bad checkpoints --------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this would create a file: proof that torch.load(weights_only=True) ran nothing."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _bad_checkpoint(case: str, tmp_path: Path) -> tuple[Path, list[str], str]:
    """(checkpoint, extra CLI args, expected message fragment)."""
    path = tmp_path / f"{case}.pth"
    if case.startswith("liteseg") and not FIXTURE.is_file():
        pytest.skip(f"official LiteSeg key fixture {FIXTURE} is absent (set SEG_ROS_FIXTURES)")
    shapes = _fixture()["shufflenet"] if case.startswith("liteseg") else {}
    state = _synthetic(shapes)
    extra: list[str] = []
    if case == "liteseg_missing_key":
        del state["aspp3.bn1.running_var"]
        message = "1 missing keys (aspp3.bn1.running_var)"
    elif case == "liteseg_unexpected_key":
        state["shuffle_features.module.stage5.weight"] = torch.zeros(3)
        message = "1 unexpected keys (shuffle_features.module.stage5.weight)"
    elif case == "liteseg_wrong_shape":
        state["last_conv.0.pointwise.weight"] = torch.zeros(96, 120, 1, 1)
        message = "last_conv.0.pointwise.weight has shape (96, 120, 1, 1) but liteseg_shufflenet expects (96, 144"
    elif case == "liteseg_wrong_label_set":
        extra = ["--label-set", "voc"]
        message = "predicts 19 classes but label set voc has 21"
    elif case == "pickled_object":
        state = {"weight": torch.zeros(2), "payload": _Payload(tmp_path / "pwned")}
        message = "holds Python objects besides tensors"
    elif case == "not_a_checkpoint":
        path.write_bytes(b"\x00this is not a checkpoint\n" * 20)
        return path, extra, "is not a PyTorch checkpoint that can be read safely"
    elif case == "unknown_layout":
        state = {"encoder.0.weight": torch.zeros(4, 3, 3, 3), "decoder.weight": torch.zeros(2, 4, 1, 1)}
        message = "neither an official LiteSeg checkpoint"
    elif case == "tensor_not_dict":
        state = torch.zeros(3)
        message = "does not hold a state dict"
    elif case == "mobilenet_v3":
        state = {"backbone.0.0.weight": torch.zeros(16, 3, 3, 3), "classifier.0.convs.0.0.weight": torch.zeros(1)}
        message = "deeplabv3_mobilenet_v3_large, whose MobileNetV3 backbone seg_ros does not implement"
    else:
        raise AssertionError(case)
    torch.save(state, path)
    return path, extra, message


@pytest.mark.parametrize("case", ["liteseg_missing_key", "liteseg_unexpected_key", "liteseg_wrong_shape",
                                  "liteseg_wrong_label_set", "pickled_object", "not_a_checkpoint",
                                  "unknown_layout", "tensor_not_dict", "mobilenet_v3"])
def test_bad_checkpoints_end_in_one_sentence_and_write_nothing(case, tmp_path, capsys):
    ckpt, extra, message = _bad_checkpoint(case, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "model.safetensors"
    assert main(["import-checkpoint", str(ckpt), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("seg-ros import-checkpoint: error: ") and err[0].endswith(".")
    assert message in err[0], err[0]
    assert list(out_dir.iterdir()) == []
    assert not (tmp_path / "pwned").exists()


def test_the_pickled_object_really_is_refused_by_weights_only(tmp_path):
    ckpt, _, _ = _bad_checkpoint("pickled_object", tmp_path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(ckpt, weights_only=True)
    with pytest.raises(CheckpointImportError, match=r"\(getattr\)"):
        import_checkpoint(ckpt, tmp_path / "m.safetensors")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "m.safetensors").exists()


def test_missing_checkpoint_file(tmp_path, capsys):
    assert main(["import-checkpoint", str(tmp_path / "absent.pth"), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert capsys.readouterr().err.strip() == (f"seg-ros import-checkpoint: error: checkpoint "
                                               f"{tmp_path / 'absent.pth'} does not exist.")
