"""Model registry: architecture names → builder functions.

``build(name, num_classes, **kw)`` is the one way the rest of seg_ros creates
a network; model files store the name and keyword arguments and rebuild
through it. Architecture modules register their builders where they are
defined, with the :func:`register` decorator; ``seg_ros.models`` imports them,
so importing anything from the package fills the registry. This module imports
no architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from torch import nn

from seg_ros.core.errors import ConfigError

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its builder and what it needs to be built and initialised.

    Facts that follow from the built network, such as its parameter count, are not stored here: they are
    measured (:mod:`seg_ros.models.complexity`).
    """

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


def register(name: str, *, description: str, backbone: str, output_stride: str,
             pretrained_backbone: str | None = None) -> Callable[[Builder], Builder]:
    """Decorator: register the decorated builder ``f(num_classes, **options) -> nn.Module`` as ``name``.

    The builder is returned unchanged. A name registered twice is a ``ValueError`` (a programming error).
    """

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(name=name, builder=builder, description=description,
                                    pretrained_backbone=pretrained_backbone, backbone=backbone,
                                    output_stride=output_stride)
        return builder

    return decorate


def available() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registered architecture ``name``; ``ConfigError`` naming the registered ones if there is none."""
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
