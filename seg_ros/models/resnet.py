"""ResNet-50 / ResNet-101 feature extractors with torchvision's state-dict layout.

Keys follow ``torchvision.models.resnet`` without the ImageNet head (``conv1``,
``bn1``, ``layer1`` … ``layer4`` with ``{i}.conv{1,2,3}``, ``{i}.bn{1,2,3}``,
``{i}.downsample.{0,1}``), so torchvision ResNet weights and the backbone of
torchvision's ``deeplabv3_resnet50`` / ``deeplabv3_resnet101`` load key for key.
Bottlenecks stride in the 3×3 convolution (ResNet v1.5, as torchvision).

``output_stride`` 8 or 16 replaces the strides of ``layer3``/``layer4`` (8) or
``layer4`` (16) by dilation exactly as torchvision's
``replace_stride_with_dilation`` does: the first block of a dilated layer keeps
the previous dilation, the following blocks use the new one.

``se=True`` adds a Squeeze-and-Excitation block (Hu et al., reduction 16) to
every bottleneck, applied to the residual branch before the addition; its keys
are ``{i}.se.fc1.*`` and ``{i}.se.fc2.*`` (1×1 convolutions with bias).
"""

from __future__ import annotations

import torch
from torch import nn

EXPANSION = 4
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
SE_REDUCTION = 16


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool → 1×1 (C → C/r) → ReLU → 1×1 (C/r → C) → sigmoid, times the input."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (stride, dilation) → 1×1 expand (×4), BN after each, optional SE, residual, ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, se: bool = False):
        super().__init__()
        out = planes * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcitation(out) if se else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        return self.relu(y + identity)


class ResNetFeatures(nn.Module):
    """ResNet-``depth`` (50 or 101) up to ``layer4``.

    ``forward(x)`` with x (N, 3, H, W) returns ``(out, low)``: ``out`` (N, 2048, ⌈H/os⌉, ⌈W/os⌉), the output of
    ``layer4``, and ``low`` (N, 256, ⌈H/4⌉, ⌈W/4⌉), the output of ``layer1``.
    """

    out_channels = 512 * EXPANSION
    low_level_channels = 64 * EXPANSION

    def __init__(self, depth: int = 50, output_stride: int = 16, se: bool = False):
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(BLOCKS)}, not {depth}.")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"ResNet output_stride must be 8, 16 or 32, not {output_stride}.")
        self.output_stride = output_stride
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._inplanes, self._dilation, stride_so_far = 64, 1, 4
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth]), start=1):
            stride = 1 if i == 1 else 2
            dilate = stride > 1 and stride_so_far * stride > output_stride
            if stride > 1 and not dilate:
                stride_so_far *= stride
            self.add_module(f"layer{i}", self._make_layer(planes, blocks, stride, dilate, se))
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int, dilate: bool, se: bool) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._inplanes != planes * EXPANSION:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * EXPANSION, 1, stride, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )
        layers = [Bottleneck(self._inplanes, planes, stride, previous_dilation, downsample, se)]
        self._inplanes = planes * EXPANSION
        layers += [Bottleneck(self._inplanes, planes, dilation=self._dilation, se=se) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.layer4(self.layer3(self.layer2(low))), low
