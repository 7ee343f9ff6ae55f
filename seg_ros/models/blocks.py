"""Building blocks shared by the segmentation heads (no I/O)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise k×k convolution followed by a pointwise 1×1 convolution, both without bias.

    State-dict keys: ``conv1.weight`` (C_in, 1, k, k) and ``pointwise.weight`` (C_out, C_in, 1, 1),
    as in the official LiteSeg code.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, in_channels, kernel_size, 1, padding, dilation, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class DASPPBranch(nn.Module):
    """One branch of LiteSeg's Deeper Atrous Spatial Pyramid Pooling.

    Rate 1: separable 1×1 → BN (no activation, as in the official code).
    Rate r > 1: separable 3×3 at dilation r → BN, then an extra separable 3×3 → BN → ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, rate: int):
        super().__init__()
        self.rate = rate
        if rate == 1:
            self.atrous_convolution = SeparableConv2d(in_channels, out_channels, 1)
        else:
            self.atrous_convolution = SeparableConv2d(in_channels, out_channels, 3, padding=rate, dilation=rate)
            self.conv1 = SeparableConv2d(out_channels, out_channels, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.atrous_convolution(x))
        if self.rate != 1:
            x = F.relu(self.bn1(self.conv1(x)))
        return x


class ImagePooling(nn.Sequential):
    """Global average pool → 1×1 conv → BN → ReLU, broadcast back to the input's H×W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y = super().forward(x)
        # A 1×1 map upsampled bilinearly is a constant: expand instead of interpolate.
        return y.expand(-1, -1, size[0], size[1])
