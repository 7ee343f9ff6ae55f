"""ShuffleNet v1 (Zhang et al., CVPR 2018) with 8 groups, as LiteSeg's ShuffleNet backbone.

The layer names are those of the official LiteSeg code (and of the ImageNet
"ShuffleNet 1g8" weights it starts from), so an official checkpoint maps onto
this module by stripping its ``shuffle_features.module.`` prefix:

- ``conv1`` — 3×3 stride-2 convolution 3 → 24 with bias (no BN), then a 3×3 stride-2 max pool;
- ``stage2`` / ``stage3`` / ``stage4`` — ``ShuffleUnit_Stage{s}_{i}`` units (4 / 8 / 4 of them), output
  384 / 768 / 1536 channels at strides 8 / 16 / 32. Each unit has ``g_conv_1x1_compress``
  (``conv1x1``, ``batch_norm``), ``depthwise_conv3x3``, ``bn_after_depthwise`` and
  ``g_conv_1x1_expand`` (``conv1x1``, ``batch_norm``); every convolution has a bias, as in the original.

The ImageNet classifier (``fc``) is not part of the backbone.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 8
STAGE_CHANNELS = (24, 384, 768, 1536)
"""Output channels of conv1 and of stages 2–4 for 8 groups (ShuffleNet paper, Table 1)."""
STAGE_REPEATS = (3, 7, 3)
"""Stride-1 units after the first (strided) unit of stages 2, 3 and 4."""


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups: (N, g·c, H, W) → (N, c·g, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """One ShuffleNet unit.

    ``downsample=False``: grouped 1×1 compress → shuffle → depthwise 3×3 → grouped 1×1 expand, plus the identity.
    ``downsample=True``: the same with a stride-2 depthwise conv, concatenated with a 3×3 stride-2 average pool of
    the input (the expand conv then produces ``out_channels - in_channels`` channels). The bottleneck has
    ``out_channels // 4`` channels. ``grouped_compress=False`` makes the first 1×1 ungrouped (first unit of stage 2).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int, downsample: bool,
                 grouped_compress: bool = True):
        super().__init__()
        bottleneck = out_channels // 4
        expand_to = out_channels - in_channels if downsample else out_channels
        self.groups = groups
        self.downsample = downsample
        self.g_conv_1x1_compress = nn.Sequential(OrderedDict([
            ("conv1x1", nn.Conv2d(in_channels, bottleneck, 1, groups=groups if grouped_compress else 1)),
            ("batch_norm", nn.BatchNorm2d(bottleneck)),
            ("relu", nn.ReLU()),
        ]))
        self.depthwise_conv3x3 = nn.Conv2d(bottleneck, bottleneck, 3, stride=2 if downsample else 1, padding=1,
                                           groups=bottleneck)
        self.bn_after_depthwise = nn.BatchNorm2d(bottleneck)
        self.g_conv_1x1_expand = nn.Sequential(OrderedDict([
            ("conv1x1", nn.Conv2d(bottleneck, expand_to, 1, groups=groups)),
            ("batch_norm", nn.BatchNorm2d(expand_to)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.g_conv_1x1_compress(x), self.groups)
        y = self.g_conv_1x1_expand(self.bn_after_depthwise(self.depthwise_conv3x3(y)))
        if self.downsample:
            y = torch.cat((F.avg_pool2d(x, 3, stride=2, padding=1), y), dim=1)
        else:
            y = x + y
        return F.relu(y)


class ShuffleNetV1Features(nn.Module):
    """ShuffleNet v1 (1×, 8 groups) without its ImageNet classifier.

    ``forward(x)`` with x (N, 3, H, W) returns ``(out, low)``: ``out`` (N, 1536, ⌈H/32⌉, ⌈W/32⌉), the output of
    stage 4, and ``low`` (N, 384, ⌈H/8⌉, ⌈W/8⌉), the output of stage 2 (LiteSeg's low-level features).
    """

    out_channels = STAGE_CHANNELS[3]
    low_level_channels = STAGE_CHANNELS[1]

    def __init__(self, groups: int = GROUPS):
        super().__init__()
        if groups != GROUPS:
            raise ValueError(f"only the 8-group ShuffleNet is implemented, not groups={groups}.")
        self.conv1 = nn.Conv2d(3, STAGE_CHANNELS[0], 3, stride=2, padding=1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for stage, repeats in zip((2, 3, 4), STAGE_REPEATS):
            cin, cout = STAGE_CHANNELS[stage - 2], STAGE_CHANNELS[stage - 1]
            units = [(f"ShuffleUnit_Stage{stage}_0", ShuffleUnit(cin, cout, groups, downsample=True,
                                                                   grouped_compress=stage > 2))]
            units += [(f"ShuffleUnit_Stage{stage}_{i}", ShuffleUnit(cout, cout, groups, downsample=False))
                      for i in range(1, repeats + 1)]
            self.add_module(f"stage{stage}", nn.Sequential(OrderedDict(units)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.stage2(self.maxpool(self.conv1(x)))
        return self.stage4(self.stage3(low)), low
