"""The model zoo: LiteSeg-ShuffleNet / -DarkNet19, DeepLab v1 LargeFOV, DeepLab v3 / v3+ (ResNet, MobileNetV2, SE).

Parameter counts are checked against published numbers, shapes at odd sizes, output strides, MAC counts,
tracing, the Segmenter and `seg-ros train` / `seg-ros models --details` on real models.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_ros.cli import main
from seg_ros.core.errors import ConfigError
from seg_ros.core.labels import CAMVID
from seg_ros.models import available, build, deeplab, get_spec, liteseg, register
from seg_ros.models import complexity as cx
from seg_ros.models.darknet import DarkNet19Features
from seg_ros.models.mobilenetv2 import MobileNetV2Features
from seg_ros.models.modelfile import ModelMeta, read_meta, save_model
from seg_ros.models.pretrained import init_backbone, load_imagenet_state_dict
from seg_ros.models.resnet import ResNetFeatures
from seg_ros.models.shufflenet import ShuffleNetV1Features
from seg_ros.models.vgg import VGG16LargeFOVFeatures
from seg_ros.pipeline import Segmenter

ZOO = ("liteseg_shufflenet", "liteseg_darknet19", "deeplabv1_vgg16_largefov", "deeplabv3_resnet50",
       "deeplabv3_resnet101", "deeplabv3_mobilenetv2", "deeplabv3plus_resnet50", "deeplabv3plus_resnet101",
       "deeplabv3plus_mobilenetv2")
HEAVY = {"deeplabv1_vgg16_largefov", "deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3plus_resnet50",
         "deeplabv3plus_resnet101", "deeplabv3plus_mobilenetv2", "liteseg_darknet19"}
ROOT = Path(__file__).resolve().parents[1]

# Published counts used below:
# - LiteSeg README: ShuffleNet 3.51 M and DarkNet19 20.55 M at 19 classes (ShuffleNet with its 1000-way ImageNet
#   fc, 1536·1000 + 1000 = 1,537,000 parameters, which the segmentation model does not use).
# - DeepLab v1 LargeFOV: 20.5 M at 21 classes (Chen et al. 2015).
# - torchvision deeplabv3_resnet50 / _resnet101 (21 classes, with the FCN auxiliary head on layer3):
#   42,004,074 / 60,996,202. The auxiliary head FCNHead(1024, 21) has 1024·256·9 + 2·256 + 256·21 + 21 = 2,365,205.
#   Two classes fewer remove 2·(256 + 1) from the classifier.
# - DeepLabv3 on MobileNetV2's second-last (320-channel) feature map: 4.52 M at 21 classes (MobileNetV2 paper,
#   Table 7, "MNet V2*" with ASPP); torchvision's head adds one 3×3 256→256 conv + BN (589,824 + 512), giving the
#   5.11 M that DeepLabV3Plus-Pytorch (VainF) lists for its DeepLabV3-MobileNet.
# - SE-ResNet-50 28.09 M vs ResNet-50 25.56 M (Hu et al., Table 1; ImageNet heads included in both).
TV_AUX_21 = 1024 * 256 * 9 + 2 * 256 + 256 * 21 + 21
HEAD_3X3 = 256 * 256 * 9 + 2 * 256


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def count(name: str, classes: int, **kw) -> int:
    """Parameters of a registry model built on the meta device (no memory, no initialisation cost)."""
    with torch.device("meta"):
        return n_params(build(name, classes, **kw))


def _within(n: int, target: float, rel: float = 0.01) -> bool:
    return abs(n - target) / target <= rel


def test_all_zoo_models_are_registered():
    assert set(ZOO) <= set(available())
    for name in ZOO:
        spec = get_spec(name)
        assert spec.backbone and spec.output_stride and spec.description


def test_each_architecture_module_registers_the_builders_it_defines():
    """Registered where defined: every name maps to the module-level builder of the same name in its module."""
    for name in available():
        module = liteseg if name.startswith("liteseg_") else deeplab
        assert get_spec(name).builder is getattr(module, name)
    assert len(available()) == 10


def test_a_name_registers_once():
    spec = get_spec("liteseg_shufflenet")
    decorate = register("liteseg_shufflenet", description="another", backbone="x", output_stride="1")
    with pytest.raises(ValueError, match="'liteseg_shufflenet' is already registered"):
        decorate(lambda num_classes: torch.nn.Identity())
    assert get_spec("liteseg_shufflenet") is spec


@pytest.mark.slow
def test_a_registered_builder_is_built_listed_and_measured():
    # In a child process: the registry is global and this architecture must not leak into other tests.
    code = """
import torch
from seg_ros.models import available, build, get_spec, register
from seg_ros.models.complexity import measure

@register("pointwise_test", description="one 1x1 conv", backbone="none", output_stride="1")
def pointwise(num_classes, bias=True):
    return torch.nn.Conv2d(3, num_classes, 1, bias=bias)

assert "pointwise_test" in available() and get_spec("pointwise_test").builder is pointwise
assert isinstance(build("pointwise_test", 4), torch.nn.Conv2d)
c = measure("pointwise_test", 5, ((8, 16),), bias=False)
print(c.params, c.macs[(8, 16)])
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(3 * 5), str(3 * 5 * 8 * 16)]


def test_descriptions_state_no_parameter_counts():
    """Counts are measured (complexity), never typed where they could go stale."""
    typed = re.compile(r"param|\d\s*[MK]\b")
    assert [n for n in available() if typed.search(get_spec(n).description)] == []
    assert [n for n in available() if typed.search(get_spec(n).builder.__doc__ or "")] == []


def test_complexity_cache_key_covers_network_code_only():
    names = {p.name for p in cx.fingerprint_sources()}
    assert not names & {"modelfile.py", "pretrained.py", "checkpoint_import.py"}
    assert {"blocks.py", "mobilenetv2.py", "shufflenet.py", "darknet.py", "resnet.py", "vgg.py", "liteseg.py",
            "deeplab.py", "registry.py", "complexity.py"} <= names
    assert {Path(sys.modules[get_spec(n).builder.__module__].__file__).name for n in available()} <= names


@pytest.mark.parametrize("name,classes,target", [
    ("liteseg_shufflenet", 19, 1.97e6),
    ("liteseg_darknet19", 19, 20.55e6),
    ("deeplabv1_vgg16_largefov", 21, 20.5e6),
    ("deeplabv3_resnet50", 19, 39.64e6),
    ("deeplabv3_resnet101", 19, 58.63e6),
    ("deeplabv3_mobilenetv2", 21, 5.11e6),
])
def test_parameter_counts_match_the_published_ones(name, classes, target):
    assert _within(count(name, classes), target)


def test_liteseg_shufflenet_with_its_imagenet_head_is_the_official_3_51_m():
    assert _within(count("liteseg_shufflenet", 19) + 1536 * 1000 + 1000, 3.51e6)


@pytest.mark.parametrize("depth,published", [(50, 42_004_074), (101, 60_996_202)])
def test_deeplabv3_resnet_equals_torchvision_exactly(depth, published):
    assert count(f"deeplabv3_resnet{depth}", 19) == published - TV_AUX_21 - 2 * 257
    assert count(f"deeplabv3_resnet{depth}", 21, output_stride=8) == published - TV_AUX_21


def test_deeplabv3_mobilenetv2_is_the_mobilenetv2_paper_model_plus_torchvision_head_conv():
    assert _within(count("deeplabv3_mobilenetv2", 21) - HEAD_3X3, 4.52e6)


@pytest.mark.parametrize("backbone,v3_target", [("resnet50", 39.64e6), ("resnet101", 58.63e6),
                                                ("mobilenetv2", 5.11e6 - 2 * 257)])
def test_deeplabv3plus_counts_derive_from_v3(backbone, v3_target):
    # v3+ = v3 without the torchvision head's 3×3 conv, plus the decoder: 1×1 projection of the stride-4 features
    # to 48 channels (+BN), 3×3 conv (256 + 48) → 256 (+BN), 3×3 conv 256 → 256 (+BN).
    low = 24 if backbone == "mobilenetv2" else 256
    decoder = low * 48 + 2 * 48 + 304 * 256 * 9 + 2 * 256 + HEAD_3X3
    assert _within(count(f"deeplabv3plus_{backbone}", 19), v3_target - HEAD_3X3 + decoder)


def test_squeeze_excitation_adds_what_se_resnet50_adds():
    assert _within(count("deeplabv3_resnet50", 19, se=True) - count("deeplabv3_resnet50", 19), 28.09e6 - 25.56e6)
    with torch.device("meta"):
        sd, plain = build("deeplabv3_resnet50", 19, se=True).state_dict(), build("deeplabv3_resnet50", 19)
    assert sd["backbone.layer1.0.se.fc1.weight"].shape == (16, 256, 1, 1)  # reduction 16
    assert sd["backbone.layer4.2.se.fc2.weight"].shape == (2048, 128, 1, 1)
    assert not any(".se." in k for k in plain.state_dict())
    # The SE gate changes the output (the gate is a sigmoid, not 1).
    torch.manual_seed(0)
    m = ResNetFeatures(50, 16, se=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        gated = m(x)[0]
        for mod in m.modules():
            if mod.__class__.__name__ == "Bottleneck":
                mod.se = None
        assert not torch.allclose(gated, m(x)[0])


def test_liteseg_mobilenetv2_is_unchanged():
    assert count("liteseg_mobilenetv2", 19) == 3_101_707
    with torch.device("meta"):
        assert not any(k.startswith(("conv2.", "bn2.")) for k in build("liteseg_mobilenetv2", 19).state_dict())


@pytest.mark.parametrize("name", ZOO)
def test_output_shape_at_odd_sizes(name):
    h, w = (97, 129) if name in HEAVY else (257, 333)
    torch.manual_seed(0)
    model = build(name, 7).eval()
    with torch.inference_mode():
        y = model(torch.randn(1, 3, h, w))
    assert y.shape == (1, 7, h, w)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("backbone,stride,low_stride,channels,low_channels,rounding", [
    (ShuffleNetV1Features(), 32, 8, 1536, 384, math.ceil),
    (DarkNet19Features(), 16, 4, 1024, 128, math.floor),
    (ResNetFeatures(50, 16), 16, 4, 2048, 256, math.ceil),
    (ResNetFeatures(50, 8), 8, 4, 2048, 256, math.ceil),
    (MobileNetV2Features(16, last_conv=False), 16, 4, 320, 24, math.ceil),
    (MobileNetV2Features(8, last_conv=False), 8, 4, 320, 24, math.ceil),
], ids=["shufflenet", "darknet19", "resnet50-os16", "resnet50-os8", "mobilenetv2-os16", "mobilenetv2-os8"])
def test_backbone_output_strides(backbone, stride, low_stride, channels, low_channels, rounding):
    h, w = 129, 161
    with torch.inference_mode():
        out, low = backbone.eval()(torch.randn(1, 3, h, w))
    assert out.shape[1:] == (channels, rounding(h / stride), rounding(w / stride))
    assert low.shape[1:] == (low_channels, rounding(h / low_stride), rounding(w / low_stride))
    assert (backbone.out_channels, backbone.low_level_channels) == (channels, low_channels)


def test_vgg16_largefov_is_stride_8_with_dilated_conv5_and_fc6():
    with torch.inference_mode():
        assert VGG16LargeFOVFeatures().eval()(torch.randn(1, 3, 129, 161)).shape == (1, 512, 17, 21)
    with torch.device("meta"):
        m = build("deeplabv1_vgg16_largefov", 21)
    sd = m.state_dict()
    assert sd["classifier.fc6.weight"].shape == (1024, 512, 3, 3)
    assert sd["classifier.fc7.weight"].shape == (1024, 1024, 1, 1)
    assert m.classifier.fc6.dilation == (12, 12)
    assert [m.backbone.features[i].dilation for i in (24, 26, 28)] == [(2, 2)] * 3
    pools = [mod for mod in m.backbone.features if isinstance(mod, torch.nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1]
    assert [mod.p for mod in m.classifier if isinstance(mod, torch.nn.Dropout)] == [0.5, 0.5]


@pytest.mark.parametrize("os_,rates", [(16, (6, 12, 18)), (8, (12, 24, 36))])
def test_aspp_rates_follow_the_output_stride(os_, rates):
    with torch.device("meta"):
        v3 = build("deeplabv3_resnet50", 19, output_stride=os_)
    assert tuple(v3.classifier[0].convs[i][0].dilation[0] for i in (1, 2, 3)) == rates
    assert v3.backbone.layer4[1].conv2.dilation[0] == (2 if os_ == 16 else 4)
    plus = build("deeplabv3plus_mobilenetv2", 19, output_stride=os_)
    assert tuple(plus.classifier.aspp.convs[i][0].dilation[0] for i in (1, 2, 3)) == rates
    assert plus.classifier.low_level[0].weight.shape == (48, 24, 1, 1)


def test_deeplabv3_keys_follow_torchvision():
    with torch.device("meta"):
        sd = build("deeplabv3_resnet50", 21, output_stride=8).state_dict()
    assert sd["classifier.0.convs.0.0.weight"].shape == (256, 2048, 1, 1)
    assert sd["classifier.0.convs.3.0.weight"].shape == (256, 2048, 3, 3)
    assert sd["classifier.0.convs.4.1.weight"].shape == (256, 2048, 1, 1)  # image pooling
    assert sd["classifier.0.project.0.weight"].shape == (256, 1280, 1, 1)
    assert sd["classifier.1.weight"].shape == (256, 256, 3, 3)
    assert sd["classifier.4.weight"].shape == (21, 256, 1, 1)
    assert sd["backbone.layer3.0.downsample.0.weight"].shape == (1024, 512, 1, 1)
    assert not any(k.startswith(("backbone.fc", "aux_classifier")) for k in sd)


@pytest.mark.parametrize("name,kwargs,message", [
    ("deeplabv3_resnet50", {"output_stride": 12}, "output_stride must be 8 or 16"),
    ("deeplabv3_resnet50", {"se": "yes"}, "se must be true or false"),
    ("deeplabv3_mobilenetv2", {"se": True}, "does not accept"),
    ("liteseg_shufflenet", {"output_stride": 8}, "does not accept"),
])
def test_bad_model_arguments(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build(name, 19, **kwargs)


def test_deeplab_mobilenetv2_takes_imagenet_weights_without_the_last_conv():
    model = build("deeplabv3plus_mobilenetv2", 11)
    assert init_backbone(model.backbone, "mobilenet_v2_imagenet") == 312 - 6  # features.18: conv + 5 BN tensors
    ref = load_imagenet_state_dict("mobilenet_v2_imagenet")
    got = model.backbone.state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in got)


def test_macs_of_liteseg_mobilenetv2_match_the_design_figure():
    assert cx.complexity("liteseg_mobilenetv2").gmacs((360, 640)) == pytest.approx(1.94, rel=0.01)


def test_macs_on_meta_equal_a_hand_count_and_a_real_run():
    # DeepLab v1 LargeFOV at 64×96: every conv costs k·k·C_in·C_out per output pixel; pools of stride 2 halve
    # (rounding up) the size three times.
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    sizes = [(64, 96)] * 2 + [(32, 48)] * 2 + [(16, 24)] * 3 + [(8, 12)] * 6
    expected = sum(9 * ci * co * h * w for (ci, co), (h, w) in zip(convs, sizes))
    expected += 8 * 12 * (9 * 512 * 1024 + 1024 * 1024 + 1024 * 21)
    c = cx.measure("deeplabv1_vgg16_largefov", 21, ((64, 96),))
    assert c.macs[(64, 96)] == expected
    real = build("deeplabv1_vgg16_largefov", 21).eval()
    assert cx.count_macs(real, (64, 96)) == expected
    assert c.params == n_params(real)


def test_complexity_cache_file_is_written_and_read(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_ROS_CACHE_DIR", str(tmp_path))
    cx.clear_memory_cache()
    c = cx.complexity("liteseg_shufflenet", 19, ((64, 96),))
    data = json.loads((tmp_path / cx.CACHE_FILE).read_text())
    (entry,) = data["entries"].values()
    assert entry == {"params": c.params, "macs": [c.macs[(64, 96)]]}
    # A fresh lookup reads the file instead of measuring again.
    measure = cx.measure
    monkeypatch.setattr(cx, "measure", None)
    cx.clear_memory_cache()
    assert cx.complexity("liteseg_shufflenet", 19, ((64, 96),)).params == c.params
    monkeypatch.setattr(cx, "measure", measure)
    # An edited entry fails the file's SHA-256 and is measured again (test_cache_integrity.py has the rest).
    entry["params"] = 12345
    (tmp_path / cx.CACHE_FILE).write_text(json.dumps(data))
    cx.clear_memory_cache()
    assert cx.complexity("liteseg_shufflenet", 19, ((64, 96),)).params == c.params
    cx.clear_memory_cache()


@pytest.mark.slow
def test_models_details_lists_params_and_gmacs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_ROS_CACHE_DIR", str(tmp_path))
    assert main(["models", "--details"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        (line,) = [ln for ln in out.splitlines() if ln.strip().startswith(name + " ")]
        details = out.splitlines()[out.splitlines().index(line) + 1]
        assert "M parameters at 19 classes" in details
        assert "GMACs at 360x640" in details and "GMACs at 512x1024" in details
    assert "1.97 M parameters" in out and "20.55 M parameters" in out and "39.64 M parameters" in out


@pytest.mark.slow
def test_docs_architecture_table_is_the_measured_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_ROS_CACHE_DIR", str(tmp_path))
    table = cx.markdown_table()
    assert len(table.splitlines()) == 2 + len(available())
    assert "| `liteseg_mobilenetv2` | MobileNetV2 | 32 | 3.10 M | 1.94 | 4.31 |" in table
    assert table in (ROOT / "docs" / "models.md").read_text(), \
        "regenerate the architecture table of docs/models.md with: python -m seg_ros.models.complexity"


@pytest.mark.parametrize("name", ["liteseg_shufflenet", "liteseg_darknet19", "deeplabv3plus_mobilenetv2"])
def test_traced_models_keep_working_at_other_sizes(name):
    """Nothing in forward depends on values: a trace taken at one size runs at another (as ONNX export needs)."""
    torch.manual_seed(0)
    model = build(name, 5).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.randn(1, 3, 64, 96), check_trace=False)
        x = torch.randn(1, 3, 97, 129)
        assert torch.allclose(traced(x), model(x), atol=1e-5)


@pytest.mark.parametrize("name", ZOO)
def test_every_model_runs_in_the_segmenter(name, tmp_path, rng):
    torch.manual_seed(0)
    model = build(name, CAMVID.num_classes).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = save_model(tmp_path / f"{name}.safetensors", model, ModelMeta(name, CAMVID, (64, 96)), half=True)
    seg = Segmenter(path, device="cpu")
    frame = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    r = seg.segment(frame)
    assert r.labels.shape == (50, 70) and r.labels.max() < CAMVID.num_classes
    assert r.confidence.min() >= 1 / CAMVID.num_classes - 1e-6
    assert np.array_equal(seg.segment(frame).labels, r.labels)


@pytest.mark.parametrize("name,kwargs", [
    ("liteseg_shufflenet", {}),
    ("liteseg_darknet19", {}),
    ("deeplabv3plus_mobilenetv2", {"output_stride": 8}),
    ("deeplabv3_resnet50", {"se": True}),
    ("deeplabv1_vgg16_largefov", {}),
])
@pytest.mark.slow
def test_seg_ros_train_runs_a_few_steps(name, kwargs, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    model_args = [a for k, v in kwargs.items() for a in ("--model-arg", f"{k}={str(v).lower()}")]
    rc = main(["train", "--synthetic", "--model", name, *model_args, "--synthetic-train", "4", "--synthetic-val", "1",
               "--synthetic-size", "64x96", "--crop", "64x64", "--batch-size", "2", "--epochs", "1",
               "--max-steps-per-epoch", "2", "--optimizer", "adamw", "--lr", "1e-3", "--workers", "0",
               "--device", "cpu", "--fp32", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    meta = read_meta(out)
    assert meta.architecture == name and meta.arch_kwargs == kwargs
    imagenet = get_spec(name).pretrained_backbone is not None
    assert meta.provenance["pretrained"] == ("imagenet" if imagenet else "none")
    assert ("initialised the backbone from ImageNet" in captured.out) == imagenet
    assert 0.0 <= meta.provenance["val_miou"] <= 1.0
    assert "loss nan" not in captured.out


def test_train_rejects_bad_model_arguments(tmp_path, capsys):
    rc = main(["train", "--synthetic", "--model", "deeplabv3_resnet50", "--model-arg", "output_stride=4",
               "--out", str(tmp_path / "m.safetensors"), "--device", "cpu", "--quiet"])
    assert rc == 2
    assert "output_stride must be 8 or 16" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
