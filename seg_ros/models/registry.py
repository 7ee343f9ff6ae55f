"""Model registry: architecture names → builder functions.

``build(name, num_classes, **kw)`` is the one way the rest of seg_ros creates
a network; model files store the name and keyword arguments and rebuild
through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from seg_ros.core.errors import ConfigError
from seg_ros.models import deeplab
from seg_ros.models.liteseg import liteseg_darknet19, liteseg_mobilenetv2, liteseg_shufflenet


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its builder and what it needs to be built and initialised."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    pretrained_backbone: str | None = None
    """Name of the ImageNet weights that initialise its backbone (see seg_ros.models.pretrained), if any."""
    backbone: str = ""
    """Backbone network, for listings (e.g. ``ResNet-50``)."""
    output_stride: str = ""
    """Output stride of the backbone features the head works on, for listings (e.g. ``16 (or 8)``)."""


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model architecture {name!r}; registered: {', '.join(available())}.") from None


def build(name: str, num_classes: int, /, **kwargs) -> nn.Module:
    """Build the registered architecture ``name`` with ``num_classes`` output classes (random init)."""
    spec = get_spec(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, not {num_classes!r}.")
    if "num_classes" in kwargs:
        raise ConfigError(f"model {name!r} takes its class count from the label set; remove num_classes from "
                          "its arguments.")
    try:
        return spec.builder(num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r} does not accept the arguments {sorted(kwargs)} ({e}).") from e


register(ModelSpec(
    name="liteseg_mobilenetv2",
    builder=liteseg_mobilenetv2,
    description="LiteSeg, MobileNetV2 backbone at output stride 32, DASPP 96 ch (3.10 M params @19 classes)",
    pretrained_backbone="mobilenet_v2_imagenet",
    backbone="MobileNetV2",
    output_stride="32",
))
register(ModelSpec(
    name="liteseg_shufflenet",
    builder=liteseg_shufflenet,
    description="LiteSeg, ShuffleNet v1 (8 groups) at output stride 32, low-level 384→48, decoder at stride 8",
    backbone="ShuffleNet v1 1g8",
    output_stride="32",
))
register(ModelSpec(
    name="liteseg_darknet19",
    builder=liteseg_darknet19,
    description="LiteSeg, DarkNet-19 at output stride 16 (dilation 2 in the last block), low-level 128→32",
    backbone="DarkNet-19",
    output_stride="16",
))
register(ModelSpec(
    name="deeplabv1_vgg16_largefov",
    builder=deeplab.deeplabv1_vgg16_largefov,
    description="DeepLab v1 LargeFOV, VGG16 at output stride 8, fc6 3×3 dilation 12 (1024 ch), fc7 1×1 1024",
    backbone="VGG16",
    output_stride="8",
))
_OS = "output_stride=16 (ASPP 6/12/18) or 8 (12/24/36)"
for _depth in (50, 101):
    register(ModelSpec(
        name=f"deeplabv3_resnet{_depth}",
        builder=getattr(deeplab, f"deeplabv3_resnet{_depth}"),
        description=f"DeepLab v3, ResNet-{_depth}, {_OS}, image pooling, 256 ch; se=true adds SE blocks; "
                    "torchvision keys",
        backbone=f"ResNet-{_depth}",
        output_stride="16 (or 8)",
    ))
    register(ModelSpec(
        name=f"deeplabv3plus_resnet{_depth}",
        builder=getattr(deeplab, f"deeplabv3plus_resnet{_depth}"),
        description=f"DeepLab v3+, ResNet-{_depth}, {_OS}, decoder with 48-ch low-level projection; "
                    "se=true adds SE blocks",
        backbone=f"ResNet-{_depth}",
        output_stride="16 (or 8)",
    ))
register(ModelSpec(
    name="deeplabv3_mobilenetv2",
    builder=deeplab.deeplabv3_mobilenetv2,
    description=f"DeepLab v3 on MobileNetV2's 320-ch features, {_OS}",
    pretrained_backbone="mobilenet_v2_imagenet",
    backbone="MobileNetV2",
    output_stride="16 (or 8)",
))
register(ModelSpec(
    name="deeplabv3plus_mobilenetv2",
    builder=deeplab.deeplabv3plus_mobilenetv2,
    description=f"DeepLab v3+ on MobileNetV2's 320-ch features, {_OS}, decoder with 48-ch low-level projection",
    pretrained_backbone="mobilenet_v2_imagenet",
    backbone="MobileNetV2",
    output_stride="16 (or 8)",
))
