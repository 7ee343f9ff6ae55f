"""DeepLab v1 LargeFOV, DeepLab v3 and DeepLab v3+ (Chen et al. 2015, 2017, 2018).

State-dict keys:

- v3 (:class:`DeepLabV3`) follows torchvision's ``models.segmentation.deeplabv3`` exactly:
  ``backbone.*`` (the ResNet keys of :mod:`seg_ros.models.resnet`) and ``classifier.*`` with
  ``classifier.0`` the ASPP (``convs.0`` 1×1, ``convs.1``–``convs.3`` dilated 3×3, ``convs.4`` image pooling,
  ``project``), ``classifier.1``/``.2`` a 3×3 conv + BN and ``classifier.4`` the 1×1 classifier. torchvision's
  ``deeplabv3_resnet50`` / ``deeplabv3_resnet101`` checkpoints therefore load key for key (their
  ``aux_classifier.*``, used only in training, is not part of the model).
- v3+ (:class:`DeepLabV3Plus`): ``backbone.*`` and ``classifier.aspp.*`` (the same ASPP),
  ``classifier.low_level.{0,1}`` (the 48-channel 1×1 projection of the stride-4 features) and
  ``classifier.decoder.{0,1,3,4,6}`` (two 3×3 convs with 256 filters, as the v3+ paper found best, and the
  1×1 classifier).
- v1 (:class:`DeepLabV1LargeFOV`): ``backbone.features.*`` (torchvision VGG16 indices) and
  ``classifier.fc6`` (3×3, dilation 12, 1024 ch), ``classifier.fc7`` (1×1, 1024 ch), ``classifier.fc8``.

ASPP rates are 6/12/18 at output stride 16 and 12/24/36 at output stride 8. Every model maps normalised
RGB (N, 3, H, W) to logits (N, num_classes, H, W), bilinearly upsampled with ``align_corners=False``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_ros.core.errors import ConfigError
from seg_ros.models.blocks import ImagePooling
from seg_ros.models.mobilenetv2 import MobileNetV2Features
from seg_ros.models.registry import register
from seg_ros.models.resnet import ResNetFeatures
from seg_ros.models.vgg import VGG16LargeFOVFeatures

ASPP_CHANNELS = 256
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
_OUTPUT_STRIDES = (f"output_stride=16 (ASPP {'/'.join(map(str, ASPP_RATES[16]))}) "
                   f"or 8 ({'/'.join(map(str, ASPP_RATES[8]))})")
"""The output-stride option of the v3 and v3+ builders, for their registry descriptions."""
LOW_LEVEL_CHANNELS = 48
LARGEFOV_CHANNELS = 1024
LARGEFOV_DILATION = 12


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = (kernel // 2) * dilation
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: 1×1, three dilated 3×3 and image pooling branches, concatenated and
    projected by a 1×1 conv → BN → ReLU → dropout 0.5 (torchvision's layout and keys).

    (N, in_channels, h, w) → (N, out_channels, h, w).
    """

    def __init__(self, in_channels: int, rates: Sequence[int], out_channels: int = ASPP_CHANNELS):
        super().__init__()
        branches: list[nn.Module] = [_conv_bn_relu(in_channels, out_channels)]
        branches += [_conv_bn_relu(in_channels, out_channels, 3, r) for r in rates]
        branches.append(ImagePooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    """DeepLab v3 head as torchvision builds it: ASPP → 3×3 conv 256 → BN → ReLU → 1×1 conv to the classes."""

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int]):
        super().__init__(
            ASPP(in_channels, rates),
            nn.Conv2d(ASPP_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS),
            nn.ReLU(),
            nn.Conv2d(ASPP_CHANNELS, num_classes, 1),
        )


class DeepLabV3PlusHead(nn.Module):
    """DeepLab v3+ decoder: ASPP output upsampled to the low-level features' resolution, concatenated with their
    48-channel projection, two 3×3 convs with 256 filters, 1×1 classifier.

    ``forward(features, low)``: (N, C, h, w), (N, C_low, h4, w4) → logits (N, num_classes, h4, w4).
    """

    def __init__(self, in_channels: int, low_level_channels: int, num_classes: int, rates: Sequence[int]):
        super().__init__()
        self.aspp = ASPP(in_channels, rates)
        self.low_level = _conv_bn_relu(low_level_channels, LOW_LEVEL_CHANNELS)
        self.decoder = nn.Sequential(
            nn.Conv2d(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS),
            nn.ReLU(),
            nn.Conv2d(ASPP_CHANNELS, ASPP_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(ASPP_CHANNELS),
            nn.ReLU(),
            nn.Conv2d(ASPP_CHANNELS, num_classes, 1),
        )

    def forward(self, features: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.aspp(features), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(torch.cat((y, self.low_level(low)), dim=1))


class DeepLabV3(nn.Module):
    """DeepLab v3 on a backbone returning ``(features, low_level_features)`` with ``out_channels``.

    ``forward(x)``: (N, 3, H, W) → logits (N, num_classes, H, W).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, rates: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.classifier = DeepLabHead(backbone.out_channels, num_classes, rates)
        self.num_classes = num_classes
        _init_head(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = self.backbone(x)
        return F.interpolate(self.classifier(features), size=x.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+ on a backbone returning ``(features, low_level_features)`` with ``out_channels`` and
    ``low_level_channels`` (stride-4 features: ResNet ``layer1``, MobileNetV2 ``features[3]``).

    ``forward(x)``: (N, 3, H, W) → logits (N, num_classes, H, W).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, rates: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.classifier = DeepLabV3PlusHead(backbone.out_channels, backbone.low_level_channels, num_classes, rates)
        self.num_classes = num_classes
        _init_head(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, low = self.backbone(x)
        return F.interpolate(self.classifier(features, low), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


class DeepLabV1LargeFOV(nn.Module):
    """DeepLab v1 LargeFOV: VGG16 at output stride 8, fc6 3×3 dilation 12 → 1024, fc7 1×1 → 1024 (ReLU and
    dropout 0.5 after each), fc8 1×1 to the classes; the stride-8 logits are upsampled bilinearly.

    ``forward(x)``: (N, 3, H, W) → logits (N, num_classes, H, W). (The dense CRF is a separate stage.)
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = VGG16LargeFOVFeatures()
        c = LARGEFOV_CHANNELS
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Conv2d(self.backbone.out_channels, c, 3, padding=LARGEFOV_DILATION,
                              dilation=LARGEFOV_DILATION)),
            ("relu6", nn.ReLU(inplace=True)),
            ("drop6", nn.Dropout(0.5)),
            ("fc7", nn.Conv2d(c, c, 1)),
            ("relu7", nn.ReLU(inplace=True)),
            ("drop7", nn.Dropout(0.5)),
            ("fc8", nn.Conv2d(c, num_classes, 1)),
        ]))
        self.num_classes = num_classes
        for name, m in self.classifier.named_children():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01 if name == "fc8" else 0.005)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.classifier(self.backbone(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _init_head(head: nn.Module) -> None:
    """Kaiming-normal convs (zero bias) and unit BN in a head (backbones keep their own init or ImageNet weights)."""
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _rates(output_stride: int) -> tuple[int, int, int]:
    if output_stride not in ASPP_RATES:
        raise ConfigError(f"DeepLab output_stride must be 8 or 16, not {output_stride!r}.")
    return ASPP_RATES[output_stride]


def _resnet(depth: int, output_stride: int, se: bool) -> ResNetFeatures:
    _rates(output_stride)
    if not isinstance(se, bool):
        raise ConfigError(f"se must be true or false, not {se!r}.")
    return ResNetFeatures(depth, output_stride, se=se)


@register("deeplabv1_vgg16_largefov", backbone="VGG16", output_stride="8",
          description="DeepLab v1 LargeFOV, VGG16 at output stride 8, fc6 3×3 dilation 12 (1024 ch), fc7 1×1 1024")
def deeplabv1_vgg16_largefov(num_classes: int) -> DeepLabV1LargeFOV:
    """DeepLab v1 VGG16-LargeFOV, output stride 8."""
    return DeepLabV1LargeFOV(num_classes)


@register("deeplabv3_resnet50", backbone="ResNet-50", output_stride="16 (or 8)",
          description=f"DeepLab v3, ResNet-50, {_OUTPUT_STRIDES}, image pooling, 256 ch; se=true adds SE blocks; "
                      "torchvision keys")
def deeplabv3_resnet50(num_classes: int, output_stride: int = 16, se: bool = False) -> DeepLabV3:
    """DeepLab v3, ResNet-50 (optionally SE), output stride 8 or 16."""
    return DeepLabV3(_resnet(50, output_stride, se), num_classes, _rates(output_stride))


@register("deeplabv3_resnet101", backbone="ResNet-101", output_stride="16 (or 8)",
          description=f"DeepLab v3, ResNet-101, {_OUTPUT_STRIDES}, image pooling, 256 ch; se=true adds SE blocks; "
                      "torchvision keys")
def deeplabv3_resnet101(num_classes: int, output_stride: int = 16, se: bool = False) -> DeepLabV3:
    """DeepLab v3, ResNet-101 (optionally SE), output stride 8 or 16."""
    return DeepLabV3(_resnet(101, output_stride, se), num_classes, _rates(output_stride))


@register("deeplabv3_mobilenetv2", backbone="MobileNetV2", output_stride="16 (or 8)",
          pretrained_backbone="mobilenet_v2_imagenet",
          description=f"DeepLab v3 on MobileNetV2's 320-ch features, {_OUTPUT_STRIDES}")
def deeplabv3_mobilenetv2(num_classes: int, output_stride: int = 16) -> DeepLabV3:
    """DeepLab v3 on MobileNetV2's 320-channel features, output stride 8 or 16."""
    return DeepLabV3(MobileNetV2Features(output_stride, last_conv=False), num_classes, _rates(output_stride))


@register("deeplabv3plus_resnet50", backbone="ResNet-50", output_stride="16 (or 8)",
          description=f"DeepLab v3+, ResNet-50, {_OUTPUT_STRIDES}, decoder with 48-ch low-level projection; "
                      "se=true adds SE blocks")
def deeplabv3plus_resnet50(num_classes: int, output_stride: int = 16, se: bool = False) -> DeepLabV3Plus:
    """DeepLab v3+, ResNet-50 (optionally SE), output stride 8 or 16."""
    return DeepLabV3Plus(_resnet(50, output_stride, se), num_classes, _rates(output_stride))


@register("deeplabv3plus_resnet101", backbone="ResNet-101", output_stride="16 (or 8)",
          description=f"DeepLab v3+, ResNet-101, {_OUTPUT_STRIDES}, decoder with 48-ch low-level projection; "
                      "se=true adds SE blocks")
def deeplabv3plus_resnet101(num_classes: int, output_stride: int = 16, se: bool = False) -> DeepLabV3Plus:
    """DeepLab v3+, ResNet-101 (optionally SE), output stride 8 or 16."""
    return DeepLabV3Plus(_resnet(101, output_stride, se), num_classes, _rates(output_stride))


@register("deeplabv3plus_mobilenetv2", backbone="MobileNetV2", output_stride="16 (or 8)",
          pretrained_backbone="mobilenet_v2_imagenet",
          description=f"DeepLab v3+ on MobileNetV2's 320-ch features, {_OUTPUT_STRIDES}, decoder with 48-ch "
                      "low-level projection")
def deeplabv3plus_mobilenetv2(num_classes: int, output_stride: int = 16) -> DeepLabV3Plus:
    """DeepLab v3+ on MobileNetV2's 320-channel features, output stride 8 or 16."""
    return DeepLabV3Plus(MobileNetV2Features(output_stride, last_conv=False), num_classes, _rates(output_stride))
