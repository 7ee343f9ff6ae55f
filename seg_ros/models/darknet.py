"""DarkNet-19 (Redmon & Farhadi, YOLO9000) at output stride 16, as LiteSeg's DarkNet backbone.

Layer names follow the official LiteSeg code, which builds the network from
lightnet's ``Conv2dBatchReLU`` (``layers.0`` convolution without bias,
``layers.1`` batch norm, ``layers.2`` leaky ReLU with slope 0.1): keys are
``layers.{i}_convbatch.layers.{0,1}.*`` for i = 1, 3, 5–7, 9–11, 13–17, 19–23,
so an official checkpoint maps onto this module by stripping its
``resnet_features.`` prefix.

The official network differs from the classification DarkNet-19 in its last
block: the fifth max pool is a 1×1 identity (output stride 16 instead of 32)
and layers 19–23 use dilation 2. Three of its 1×1 convolutions (layers 14, 16
and 20) are padded by one pixel and two of the dilated 3×3 ones are padded by
one instead of two; the margins cancel out, so the output keeps the stride-16
size, and they are reproduced here because trained weights depend on them.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

LEAKY_SLOPE = 0.1
BN_MOMENTUM = 0.01
"""lightnet's batch-norm momentum (the official training used it)."""

# (name, in, out, kernel, padding, dilation); "max" entries are max pools (kernel = stride).
_LAYERS: tuple[tuple, ...] = (
    ("1_convbatch", 3, 32, 3, 1, 1), ("2_max", 2),
    ("3_convbatch", 32, 64, 3, 1, 1), ("4_max", 2),
    ("5_convbatch", 64, 128, 3, 1, 1), ("6_convbatch", 128, 64, 1, 0, 1), ("7_convbatch", 64, 128, 3, 1, 1),
    ("8_max", 2),
    ("9_convbatch", 128, 256, 3, 1, 1), ("10_convbatch", 256, 128, 1, 0, 1), ("11_convbatch", 128, 256, 3, 1, 1),
    ("12_max", 2),
    ("13_convbatch", 256, 512, 3, 1, 1), ("14_convbatch", 512, 256, 1, 1, 1), ("15_convbatch", 256, 512, 3, 1, 1),
    ("16_convbatch", 512, 256, 1, 1, 1), ("17_convbatch", 256, 512, 3, 1, 1),
    ("18_max", 1),
    ("19_convbatch", 512, 1024, 3, 1, 2), ("20_convbatch", 1024, 512, 1, 1, 2), ("21_convbatch", 512, 1024, 3, 1, 2),
    ("22_convbatch", 1024, 512, 1, 0, 2), ("23_convbatch", 512, 1024, 3, 1, 2),
)
LOW_LEVEL_LAYERS = 7
"""The low-level features are the output of the first seven layers (``7_convbatch``: 128 channels, stride 4)."""


class Conv2dBatchLeaky(nn.Module):
    """Conv (no bias) → BN → LeakyReLU(0.1); keys ``layers.0.weight``, ``layers.1.*`` as lightnet's layer."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int, dilation: int = 1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, cout, kernel, 1, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DarkNet19Features(nn.Module):
    """DarkNet-19 convolutions at output stride 16 (dilation 2 in the last block), no classifier.

    ``forward(x)`` with x (N, 3, H, W) returns ``(out, low)``: ``out`` (N, 1024, ⌊H/16⌋, ⌊W/16⌋) and
    ``low`` (N, 128, ⌊H/4⌋, ⌊W/4⌋). The 2×2 max pools drop an odd last row or column, as the original does.
    """

    out_channels = 1024
    low_level_channels = 128

    def __init__(self):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        for spec in _LAYERS:
            if spec[0].endswith("_max"):
                layers.append((spec[0], nn.MaxPool2d(spec[1], spec[1])))
            else:
                name, cin, cout, k, pad, dil = spec
                layers.append((name, Conv2dBatchLeaky(cin, cout, k, pad, dil)))
        self.layers = nn.Sequential(OrderedDict(layers))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu", a=LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.layers[:LOW_LEVEL_LAYERS](x)
        return self.layers[LOW_LEVEL_LAYERS:](low), low
