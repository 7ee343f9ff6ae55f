"""VGG16 feature extractor for DeepLab v1 LargeFOV (Chen et al., ICLR 2015).

Keys follow ``torchvision.models.vgg16`` ``features`` (convolutions at indices
0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, each ``features.{i}.weight`` /
``.bias``), so VGG16 ImageNet weights load key for key. As in DeepLab, the
max pools are 3×3 with padding 1: pool1–pool3 stride 2, pool4 and pool5
stride 1, and conv5_1–conv5_3 use dilation 2, which gives output stride 8.
"""

from __future__ import annotations

import torch
from torch import nn

# Convolution channels per block; "M" marks a max pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_POOL_STRIDES = (2, 2, 2, 1, 1)


class VGG16LargeFOVFeatures(nn.Module):
    """VGG16 conv1_1 … pool5 at output stride 8.

    ``forward(x)`` with x (N, 3, H, W) returns (N, 512, ⌈H/8⌉, ⌈W/8⌉).
    """

    out_channels = 512
    output_stride = 8

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin, block = 3, 0
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(3, _POOL_STRIDES[block], padding=1))
                block += 1
            else:
                dilation = 2 if block == 4 else 1
                layers += [nn.Conv2d(cin, int(v), 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
