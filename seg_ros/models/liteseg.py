"""LiteSeg (Emara et al., DICTA 2019) with MobileNetV2, ShuffleNet or DarkNet-19 backbones.

Faithful to the official implementation: DASPP with 96-channel branches at
rates 1/3/6/9 plus image pooling on the backbone output; the long residual
(concat of the backbone output with the five branches, separable 1×1 to 96);
a decoder at the stride of the low-level features that concats them (short
residual), two separable 3×3 convs to 96, a 1×1 classifier and a bilinear
upsample to the input size. All interpolation uses ``align_corners=True`` as
the official code does.

=============== ==================== ====================== ==================== ========
variant         backbone output      low-level features     low-level projection decoder
=============== ==================== ====================== ==================== ========
MobileNetV2     1280 ch, stride 32   24 ch (features[3])    none                 stride 4
ShuffleNet 1g8  1536 ch, stride 32   384 ch (stage 2)       separable 1×1 → 48   stride 8
DarkNet-19      1024 ch, stride 16   128 ch (layer 7)       separable 1×1 → 32   stride 4
=============== ==================== ====================== ==================== ========

Head keys (``aspp1`` … ``aspp4``, ``global_avg_pool``, ``conv1``, ``bn1``,
``conv2``, ``bn2`` (the low-level projection, where there is one),
``last_conv``) equal the official ones. The backbone sits under ``backbone.``:
torchvision's MobileNetV2 keys, the official ShuffleNet and DarkNet-19 keys
(see :mod:`seg_ros.models.shufflenet`, :mod:`seg_ros.models.darknet`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seg_ros.models.blocks import DASPPBranch, ImagePooling, SeparableConv2d
from seg_ros.models.darknet import DarkNet19Features
from seg_ros.models.mobilenetv2 import MobileNetV2Features
from seg_ros.models.registry import register
from seg_ros.models.shufflenet import ShuffleNetV1Features

DASPP_RATES = (1, 3, 6, 9)
HEAD_CHANNELS = 96


class LiteSeg(nn.Module):
    """LiteSeg head on a backbone that returns ``(features, low_level_features)``.

    The backbone declares ``out_channels`` and ``low_level_channels``. ``low_level_projection``: when given,
    the low-level features pass through a separable 1×1 conv to that many channels → BN → ReLU (``conv2``,
    ``bn2``) before the short residual. The decoder works at the resolution of the low-level features.

    ``forward(x)``: x (N, 3, H, W) normalised RGB → logits (N, num_classes, H, W).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, low_level_projection: int | None = None):
        super().__init__()
        cin = backbone.out_channels
        low = backbone.low_level_channels
        self.backbone = backbone
        self.aspp1, self.aspp2, self.aspp3, self.aspp4 = (DASPPBranch(cin, HEAD_CHANNELS, r) for r in DASPP_RATES)
        self.global_avg_pool = ImagePooling(cin, HEAD_CHANNELS)
        self.conv1 = SeparableConv2d(cin + 5 * HEAD_CHANNELS, HEAD_CHANNELS, 1)
        self.bn1 = nn.BatchNorm2d(HEAD_CHANNELS)
        self.conv2: SeparableConv2d | None = None
        self.bn2: nn.BatchNorm2d | None = None
        if low_level_projection is not None:
            self.conv2 = SeparableConv2d(low, low_level_projection, 1)
            self.bn2 = nn.BatchNorm2d(low_level_projection)
            low = low_level_projection
        self.last_conv = nn.Sequential(
            SeparableConv2d(HEAD_CHANNELS + low, HEAD_CHANNELS, 3, padding=1),
            nn.BatchNorm2d(HEAD_CHANNELS),
            nn.ReLU(),
            SeparableConv2d(HEAD_CHANNELS, HEAD_CHANNELS, 3, padding=1),
            nn.BatchNorm2d(HEAD_CHANNELS),
            nn.ReLU(),
            nn.Conv2d(HEAD_CHANNELS, num_classes, 1),
        )
        self.num_classes = num_classes
        _init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats, low = self.backbone(x)
        y = torch.cat(
            (feats, self.aspp1(feats), self.aspp2(feats), self.aspp3(feats), self.aspp4(feats),
             self.global_avg_pool(feats)),
            dim=1,
        )
        y = F.relu(self.bn1(self.conv1(y)))
        if self.conv2 is not None and self.bn2 is not None:
            low = F.relu(self.bn2(self.conv2(low)))
        y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=True)
        y = self.last_conv(torch.cat((y, low), dim=1))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=True)


def _init_head(model: LiteSeg) -> None:
    """Kaiming-normal convs and unit BN in the head (the backbone keeps its own init or ImageNet weights)."""
    for name, m in model.named_modules():
        if name.startswith("backbone"):
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register("liteseg_mobilenetv2", backbone="MobileNetV2", output_stride="32",
          pretrained_backbone="mobilenet_v2_imagenet",
          description="LiteSeg, MobileNetV2 backbone at output stride 32, DASPP 96 ch")
def liteseg_mobilenetv2(num_classes: int) -> LiteSeg:
    """LiteSeg-MobileNetV2 (output stride 32, decoder at stride 4)."""
    return LiteSeg(MobileNetV2Features(output_stride=32), num_classes)


@register("liteseg_shufflenet", backbone="ShuffleNet v1 1g8", output_stride="32",
          description="LiteSeg, ShuffleNet v1 (8 groups) at output stride 32, low-level 384→48, decoder at stride 8")
def liteseg_shufflenet(num_classes: int) -> LiteSeg:
    """LiteSeg-ShuffleNet (1×, 8 groups; output stride 32, decoder at stride 8)."""
    return LiteSeg(ShuffleNetV1Features(), num_classes, low_level_projection=48)


@register("liteseg_darknet19", backbone="DarkNet-19", output_stride="16",
          description="LiteSeg, DarkNet-19 at output stride 16 (dilation 2 in the last block), low-level 128→32")
def liteseg_darknet19(num_classes: int) -> LiteSeg:
    """LiteSeg-DarkNet19 (output stride 16, decoder at stride 4)."""
    return LiteSeg(DarkNet19Features(), num_classes, low_level_projection=32)
