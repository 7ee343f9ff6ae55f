"""MobileNetV2 feature extractor with torchvision's state-dict layout.

Keys follow ``torchvision.models.mobilenet_v2`` (``features.0.0.weight`` …
``features.18.1.running_var``) without the ImageNet classifier, so torchvision's
ImageNet checkpoint loads key for key (see :mod:`seg_ros.models.pretrained`).
``last_conv=False`` leaves out the final 1×1 conv to 1280 channels
(``features.18``) and returns the 320-channel "second last feature map" that
the MobileNetV2 paper (Sec. 6.3) puts DeepLabv3 on.
"""

from __future__ import annotations

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s) — Sandler et al. 2018, Table 2.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CHANNELS = 1280


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) → BN → ReLU6; keys ``0.weight``, ``1.*`` as torchvision's Conv2dNormActivation."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1):
        padding = (kernel - 1) // 2 * dilation
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand 1×1 → depthwise 3×3 → linear 1×1 projection, with a residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 ``features`` (19 stages, 1280 output channels).

    ``forward(x)`` with x (N, 3, H, W) returns ``(out, low)``: ``out`` (N, 1280, ⌈H/os⌉, ⌈W/os⌉)
    (320 channels with ``last_conv=False``) and ``low`` (N, 24, ⌈H/4⌉, ⌈W/4⌉), the output of ``features[3]``.
    ``output_stride`` 32 (the classification network), 16 or 8; strides beyond it become dilation.
    """

    low_level_channels = 24

    def __init__(self, output_stride: int = 32, last_conv: bool = True):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"MobileNetV2 output_stride must be 8, 16 or 32, not {output_stride}.")
        self.output_stride = output_stride
        self.out_channels = LAST_CHANNELS if last_conv else _SETTINGS[-1][1]
        self.pretrained_unused: tuple[str, ...] = () if last_conv else ("features.18.",)
        """Prefixes of the ImageNet weights this backbone leaves out (see seg_ros.models.pretrained.init_backbone)."""
        stride_so_far, dilation = 2, 1
        layers: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride > 1 and stride_so_far * stride > output_stride:
                    dilation *= stride
                    stride = 1
                elif stride > 1:
                    stride_so_far *= stride
                layers.append(InvertedResidual(cin, c, stride, t, dilation=block_dilation))
                cin = c
        if last_conv:
            layers.append(ConvBNReLU6(cin, LAST_CHANNELS, kernel=1))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.features[:4](x)
        return self.features[4:](low), low
