import math

import pytest
import torch

from seg_ros.core.errors import ConfigError
from seg_ros.models import available, build
from seg_ros.models.mobilenetv2 import MobileNetV2Features
from seg_ros.models.pretrained import init_backbone, load_imagenet_state_dict

# The official LiteSeg-MobileNetV2 head, by state-dict key prefix (the official code's names).
OFFICIAL_HEAD_PREFIXES = {
    "aspp1.atrous_convolution", "aspp1.bn",
    *(f"aspp{i}.{part}" for i in (2, 3, 4) for part in ("atrous_convolution", "bn", "conv1", "bn1")),
    "global_avg_pool.1", "global_avg_pool.2", "conv1", "bn1",
    "last_conv.0", "last_conv.1", "last_conv.3", "last_conv.4", "last_conv.6",
}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_liteseg_mobilenetv2_has_3_10_m_parameters_at_19_classes():
    n = n_params(build("liteseg_mobilenetv2", 19))
    assert abs(n - 3.10e6) / 3.10e6 < 0.01
    # The official model has 4,382,707 with MobileNetV2's 1000-way ImageNet head (1280*1000 + 1000).
    assert n + 1280 * 1000 + 1000 == 4_382_707


def test_head_keys_and_shapes_follow_the_official_layout():
    sd = build("liteseg_mobilenetv2", 19).state_dict()
    head = {k.rsplit(".", 1)[0] for k in sd if not k.startswith("backbone.")}
    head = {k.removesuffix(".conv1").removesuffix(".pointwise") if k.startswith(("aspp", "conv1", "last_conv"))
            and k.endswith((".conv1", ".pointwise")) else k for k in head}
    assert head == OFFICIAL_HEAD_PREFIXES
    assert sd["conv1.pointwise.weight"].shape == (96, 1760, 1, 1)  # long residual: 1280 + 5 × 96
    assert sd["last_conv.0.conv1.weight"].shape == (120, 1, 3, 3)  # short residual: 96 + 24 low-level
    assert sd["aspp4.atrous_convolution.conv1.weight"].shape == (1280, 1, 3, 3)
    assert sd["last_conv.6.weight"].shape == (19, 96, 1, 1)


def test_backbone_keys_equal_torchvision_mobilenet_v2():
    imagenet = load_imagenet_state_dict("mobilenet_v2_imagenet")
    assert set(MobileNetV2Features().state_dict()) == set(imagenet)
    assert not any(k.startswith("classifier") for k in imagenet)


def test_imagenet_weights_load_with_every_key_matched():
    model = build("liteseg_mobilenetv2", 11)
    assert init_backbone(model.backbone, "mobilenet_v2_imagenet") == 312
    ref = load_imagenet_state_dict("mobilenet_v2_imagenet")
    got = model.backbone.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ref.items())
    # Real ImageNet statistics, not an init: the first BN's running variance is far from 1.
    assert not torch.allclose(got["features.0.1.running_var"], torch.ones(32))


@pytest.mark.parametrize("h,w", [(257, 333), (64, 96), (33, 47)])
def test_output_shape_at_odd_sizes(h, w):
    model = build("liteseg_mobilenetv2", 11).eval()
    with torch.inference_mode():
        y = model(torch.randn(2, 3, h, w))
        feats, low = model.backbone(torch.randn(1, 3, h, w))
    assert y.shape == (2, 11, h, w)
    assert feats.shape[1:] == (1280, math.ceil(h / 32), math.ceil(w / 32))
    assert low.shape[1:] == (24, math.ceil(h / 4), math.ceil(w / 4))


@pytest.mark.parametrize("os_", [8, 16, 32])
def test_backbone_output_stride(os_):
    feats, _ = MobileNetV2Features(output_stride=os_).eval()(torch.randn(1, 3, 128, 160))
    assert feats.shape[-2:] == (128 // os_, 160 // os_)


def test_registry_errors():
    assert "liteseg_mobilenetv2" in available()
    with pytest.raises(ConfigError, match="unknown model architecture"):
        build("segformer", 19)
    with pytest.raises(ConfigError, match="does not accept"):
        build("liteseg_mobilenetv2", 19, width=2)
    with pytest.raises(ConfigError, match="positive"):
        build("liteseg_mobilenetv2", 0)
