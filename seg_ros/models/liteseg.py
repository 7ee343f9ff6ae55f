"""LiteSeg (Emara et al., DICTA 2019) with a MobileNetV2 backbone.

Faithful to the official implementation: an output-stride-32 MobileNetV2
(1280 channels); DASPP with 96-channel branches at rates 1/3/6/9 plus image
pooling; the long residual (concat of the backbone output with the five
branches, 1760 channels, separable 1×1 to 96); a stride-4 decoder that concats
the 24-channel low-level features (short residual), two separable 3×3 convs to
96, a 1×1 classifier and a bilinear upsample to the input size. All
interpolation uses ``align_corners=True`` as the official code does.

Head keys (``aspp1`` … ``aspp4``, ``global_avg_pool``, ``conv1``, ``bn1``,
``last_conv``) equal the official ones; the backbone sits under ``backbone.``
with torchvision's MobileNetV2 keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seg_ros.models.blocks import DASPPBranch, ImagePooling, SeparableConv2d
from seg_ros.models.mobilenetv2 import MobileNetV2Features

DASPP_RATES = (1, 3, 6, 9)
HEAD_CHANNELS = 96


class LiteSeg(nn.Module):
    """LiteSeg head on a backbone that returns ``(features, low_level_features)``.

    ``forward(x)``: x (N, 3, H, W) normalised RGB → logits (N, num_classes, H, W).
    """

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        cin = backbone.out_channels
        low = backbone.low_level_channels
        self.backbone = backbone
        self.aspp1, self.aspp2, self.aspp3, self.aspp4 = (DASPPBranch(cin, HEAD_CHANNELS, r) for r in DASPP_RATES)
        self.global_avg_pool = ImagePooling(cin, HEAD_CHANNELS)
        self.conv1 = SeparableConv2d(cin + 5 * HEAD_CHANNELS, HEAD_CHANNELS, 1)
        self.bn1 = nn.BatchNorm2d(HEAD_CHANNELS)
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


def liteseg_mobilenetv2(num_classes: int) -> LiteSeg:
    """LiteSeg-MobileNetV2: 3.10 M parameters at 19 classes."""
    return LiteSeg(MobileNetV2Features(output_stride=32), num_classes)
