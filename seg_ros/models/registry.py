"""Model registry: architecture names → builder functions.

``build(name, num_classes, **kw)`` is the one way the rest of seg_ros creates
a network; model files store the name and keyword arguments and rebuild
through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from seg_ros.errors import ConfigError
from seg_ros.models.liteseg import liteseg_mobilenetv2


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its builder and what it needs to be built and initialised."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    pretrained_backbone: str | None = None
    """Name of the ImageNet weights that initialise its backbone (see seg_ros.pretrained), if any."""


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


def build(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build the registered architecture ``name`` with ``num_classes`` output classes (random init)."""
    spec = get_spec(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, not {num_classes!r}.")
    try:
        return spec.builder(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model {name!r} does not accept the arguments {sorted(kwargs)} ({e}).") from e


register(ModelSpec(
    name="liteseg_mobilenetv2",
    builder=liteseg_mobilenetv2,
    description="LiteSeg, MobileNetV2 backbone at output stride 32, DASPP 96 ch (3.10 M params @19 classes)",
    pretrained_backbone="mobilenet_v2_imagenet",
))
