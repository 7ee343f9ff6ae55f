"""Import of legacy PyTorch checkpoints into seg_ros model files (``seg-ros import-checkpoint``).

Two families are understood, recognised by their key names:

- **official LiteSeg** checkpoints (github.com/tahaemara/LiteSeg, plain state dicts saved with
  ``torch.save(net.state_dict())``), all three backbones: ``mobile_features.*`` (MobileNetV2, in the
  ``features.{i}.conv.{0..7}`` layout of the MobileNetV2 code it uses, renamed here to torchvision's),
  ``shuffle_features.module.*`` (ShuffleNet inside a DataParallel wrapper) and ``resnet_features.*``
  (DarkNet-19). The LiteSeg head keys are the same as seg_ros's. The unused ImageNet heads
  (``mobile_features.classifier.*``, ``shuffle_features.module.fc.*``) are dropped;
- **torchvision** ``deeplabv3_resnet50`` / ``deeplabv3_resnet101`` checkpoints (``backbone.*``,
  ``classifier.*``, output stride 8); the training-only ``aux_classifier.*`` is dropped.

A ``module.`` prefix on every key (a model saved inside ``DataParallel``) is removed, and a state dict
wrapped in a dict under ``state_dict``, ``model_state``, ``model`` or ``net`` is unwrapped.

The file is read with ``torch.load(weights_only=True)`` only: anything but tensors and plain containers is
refused by PyTorch and reported as one sentence. Keys are mapped strictly: every tensor of the target
architecture must come from the checkpoint with the right shape and every checkpoint tensor must be used,
except the dropped heads above (a missing ``num_batches_tracked`` counter, which inference never reads, is
tolerated and reported). The model file is written only when all of this holds.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seg_ros.core.errors import SegRosError
from seg_ros.core.labels import LabelSet, get_label_set
from seg_ros.core.paths import check_output_file, require_file
from seg_ros.models import build
from seg_ros.models.modelfile import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, load_model, save_model


class CheckpointImportError(SegRosError):
    """A checkpoint cannot be read safely or does not map onto a seg_ros architecture."""


@dataclass
class Conversion:
    """A checkpoint's tensors renamed to a seg_ros architecture's state-dict keys."""

    source_format: str
    """``liteseg_mobilenetv2``, ``liteseg_shufflenet``, ``liteseg_darknet19`` or ``torchvision_deeplabv3``."""
    architecture: str
    arch_kwargs: dict[str, Any]
    num_classes: int
    state: dict[str, torch.Tensor]
    """seg_ros key → tensor."""
    source_keys: dict[str, str]
    """seg_ros key → the checkpoint key it came from."""
    dropped: list[str] = field(default_factory=list)
    """Checkpoint keys deliberately left out (ImageNet heads, the auxiliary classifier)."""


@dataclass
class ImportReport:
    """What ``import_checkpoint`` wrote and how the checkpoint's keys were used."""

    path: Path
    meta: ModelMeta
    source_format: str
    consumed: int
    """Checkpoint tensors copied into the model."""
    dropped: list[str]
    filled: list[str]
    """Model keys absent from the checkpoint and kept at their initial value (``num_batches_tracked`` only)."""


@dataclass(frozen=True)
class _Defaults:
    label_set: str
    input_size: tuple[int, int]
    dataset: str
    source: str


_DEFAULTS = {
    "liteseg": _Defaults("cityscapes", (512, 1024), "Cityscapes (official LiteSeg checkpoint)",
                         "https://github.com/tahaemara/LiteSeg"),
    "torchvision_deeplabv3": _Defaults("voc", (520, 520), "COCO subset with the 20 VOC categories (torchvision)",
                                       "torchvision.models.segmentation"),
}
_WRAPPER_KEYS = ("state_dict", "model_state", "model", "net")


# -- reading -----------------------------------------------------------------------------------------

def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``torch.load(weights_only=True)``; nothing else is unpickled."""
    path = require_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. pickle-protocol notes; the outcome is reported below
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises becomes one sentence
        raise CheckpointImportError(_refusal(path, str(e), type(e).__name__)) from e
    state = _unwrap(obj, path)
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


_TORCH_ADVICE = ("weights_only", "torch.load", "file an issue", "documentation")
"""Words of torch's own advice (which suggests unsafe loading); such lines never reach the user."""


def _refusal(path: Path, text: str, kind: str) -> str:
    """One sentence for a checkpoint torch.load(weights_only=True) refused: the blocked global, or torch's reason."""
    found = re.search(r"(?:unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text, re.IGNORECASE)
    if found:
        return (f"checkpoint {path} holds Python objects besides tensors ({found.group(1)}), which could run code "
                "when loaded, so seg_ros refuses it and unpickles nothing; re-save the weights alone as a plain "
                "state dict of tensors.")
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not any(w in ln for w in _TORCH_ADVICE)]
    reason = (detail.group(1) if detail else lines[0] if lines else kind).strip().rstrip(".")
    return f"checkpoint {path} is not a PyTorch checkpoint that can be read safely ({reason})."


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and obj and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for k in _WRAPPER_KEYS:
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointImportError(f"checkpoint {path} does not hold a state dict (found {type(obj).__name__}).")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointImportError(
            f"checkpoint {path} is not a plain state dict: {len(bad)} entries are not tensors (e.g. {bad[0]!r})."
        )
    return dict(obj)


# -- recognising and renaming ------------------------------------------------------------------------

_MNV2_EXPANDED = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
"""Official MobileNetV2 block with expansion: conv.{i} → torchvision conv.{j}."""
_MNV2_PLAIN = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
"""Official MobileNetV2 block without expansion (features.1)."""
_MNV2_BLOCK = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")


def _rename_mobilenet(rest: str, expanded: set[str]) -> str:
    m = _MNV2_BLOCK.match(rest)
    if not m:
        return rest
    block, idx, tail = m.groups()
    new = (_MNV2_EXPANDED if block in expanded else _MNV2_PLAIN).get(idx)
    # An index with no counterpart keeps its name and is then reported as unexpected.
    return f"features.{block}.conv.{new}.{tail}" if new else rest


def _liteseg(state: dict[str, torch.Tensor], fmt: str, prefix: str, imagenet_head: str,
             rename: Callable[[str], str] = lambda k: k) -> Conversion:
    out: dict[str, torch.Tensor] = {}
    src: dict[str, str] = {}
    dropped: list[str] = []
    for k, v in state.items():
        if k.startswith(prefix):
            rest = k[len(prefix):]
            if rest.startswith(imagenet_head):
                dropped.append(k)
                continue
            new = "backbone." + rename(rest)
        else:
            new = k
        out[new] = v
        src[new] = k
    classifier = state.get("last_conv.6.weight")
    if classifier is None or classifier.ndim != 4:
        raise CheckpointImportError(f"the {fmt} checkpoint has no last_conv.6.weight classifier, so its class "
                                    "count is unknown.")
    return Conversion(fmt, fmt, {}, int(classifier.shape[0]), out, src, dropped)


def _convert_liteseg(state: dict[str, torch.Tensor]) -> Conversion | None:
    if any(k.startswith("mobile_features.") for k in state):
        expanded = {m.group(1) for k in state if (m := re.match(r"^mobile_features\.features\.(\d+)\.conv\.6\.", k))}
        return _liteseg(state, "liteseg_mobilenetv2", "mobile_features.", "classifier.",
                        lambda rest: _rename_mobilenet(rest, expanded))
    if any(k.startswith("shuffle_features.") for k in state):
        inner = "shuffle_features.module." if any(k.startswith("shuffle_features.module.") for k in state) \
            else "shuffle_features."
        return _liteseg(state, "liteseg_shufflenet", inner, "fc.")
    if any(k.startswith("resnet_features.") for k in state):
        return _liteseg(state, "liteseg_darknet19", "resnet_features.", "fc.")
    return None


def _convert_torchvision(state: dict[str, torch.Tensor], path: Path) -> Conversion | None:
    if "classifier.0.convs.0.0.weight" not in state:
        return None
    if "backbone.0.0.weight" in state:
        raise CheckpointImportError(
            f"checkpoint {path} is torchvision's deeplabv3_mobilenet_v3_large, whose MobileNetV3 backbone seg_ros "
            "does not implement; import a deeplabv3_resnet50 or deeplabv3_resnet101 checkpoint instead."
        )
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"^backbone\.layer3\.(\d+)\.", k))}
    depth = {6: 50, 23: 101}.get(len(blocks))
    if depth is None:
        raise CheckpointImportError(
            f"checkpoint {path} looks like a torchvision DeepLab v3 but its layer3 has {len(blocks)} blocks; "
            "only ResNet-50 (6) and ResNet-101 (23) are supported."
        )
    classifier = state.get("classifier.4.weight")
    if classifier is None or classifier.ndim != 4:
        raise CheckpointImportError(f"checkpoint {path} has no classifier.4.weight, so its class count is unknown.")
    out, src, dropped = {}, {}, []
    for k, v in state.items():
        if k.startswith("aux_classifier."):
            dropped.append(k)
        else:
            out[k], src[k] = v, k
    return Conversion("torchvision_deeplabv3", f"deeplabv3_resnet{depth}", {"output_stride": 8},
                      int(classifier.shape[0]), out, src, dropped)


def convert(state: dict[str, torch.Tensor], path: str | os.PathLike = "checkpoint") -> Conversion:
    """Recognise the checkpoint family from the keys and rename them to seg_ros's layout."""
    path = Path(path)
    conv = _convert_liteseg(state) or _convert_torchvision(state, path)
    if conv is None:
        first = ", ".join(list(state)[:3])
        raise CheckpointImportError(
            f"checkpoint {path} is neither an official LiteSeg checkpoint (mobile_features./shuffle_features./"
            f"resnet_features. keys) nor a torchvision deeplabv3 one (backbone./classifier.0.convs. keys); "
            f"its first keys are {first}."
        )
    return conv


def build_converted(conv: Conversion, path: str | os.PathLike = "checkpoint") -> tuple[nn.Module, list[str]]:
    """The architecture of ``conv`` with its tensors loaded after a strict key and shape check.

    Returns ``(model in eval mode, filled)``, ``filled`` being the ``num_batches_tracked`` keys the checkpoint
    lacked. Raises CheckpointImportError naming every missing or unexpected key (up to five of each).
    """
    model = build(conv.architecture, conv.num_classes, **conv.arch_kwargs)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(conv.state))
    filled = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = sorted(conv.source_keys[k] for k in set(conv.state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys "
                         f"({', '.join(unexpected[:5])}{', …' if len(unexpected) > 5 else ''})")
        raise CheckpointImportError(
            f"checkpoint {path} does not match {conv.architecture} with {conv.num_classes} classes: "
            f"{' and '.join(parts)}."
        )
    state = {}
    for k, ref in expected.items():
        if k in filled:
            state[k] = ref
            continue
        t = conv.state[k]
        if t.shape != ref.shape:
            raise CheckpointImportError(
                f"checkpoint {path}: {conv.source_keys[k]} has shape {tuple(t.shape)} but {conv.architecture} "
                f"expects {tuple(ref.shape)} for {k}."
            )
        if t.is_floating_point() != ref.is_floating_point():
            raise CheckpointImportError(f"checkpoint {path}: {conv.source_keys[k]} has dtype {t.dtype}, "
                                        f"expected a {'floating-point' if ref.is_floating_point() else 'integer'} "
                                        "tensor.")
        state[k] = t.to(ref.dtype)
    model.load_state_dict(state, strict=True)
    return model.eval(), filled


# -- the command ----------------------------------------------------------------------------------------

def import_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    label_set: str | LabelSet | None = None,
    input_size: tuple[int, int] | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    provenance: dict[str, Any] | None = None,
    half: bool = False,
    command: str | None = None,
) -> ImportReport:
    """Convert a legacy checkpoint into the model file ``out``.

    ``label_set`` (default: cityscapes for LiteSeg, voc for torchvision) must have as many classes as the
    checkpoint's classifier. ``input_size`` (height, width) is the model's default inference resolution
    (default 512×1024 for LiteSeg, as its evaluation crop; 520×520 for torchvision). ``mean``/``std``: input
    normalisation of RGB/255 (default ImageNet, which both families use). ``provenance`` entries override the
    defaults (dataset, source, val_miou, …). Nothing is written unless every check passes.
    """
    checkpoint = require_file(checkpoint, "checkpoint")
    check_output_file(out, "model file")
    state = read_checkpoint(checkpoint)
    conv = convert(state, checkpoint)
    family = "liteseg" if conv.source_format.startswith("liteseg") else conv.source_format
    defaults = _DEFAULTS[family]
    if label_set is None:
        label_set = defaults.label_set
    labels = label_set if isinstance(label_set, LabelSet) else get_label_set(label_set)
    if labels.num_classes != conv.num_classes:
        raise CheckpointImportError(
            f"checkpoint {checkpoint} predicts {conv.num_classes} classes but label set {labels.name} has "
            f"{labels.num_classes}; pass a label set with {conv.num_classes} classes."
        )
    for name, v in (("mean", mean), ("std", std)):
        if len(v) != 3 or not all(math.isfinite(x) for x in v) or (name == "std" and min(v) <= 0):
            raise CheckpointImportError(f"{name} must be three numbers{' above 0' if name == 'std' else ''}, "
                                        f"not {v!r}.")
    model, filled = build_converted(conv, checkpoint)
    prov: dict[str, Any] = {
        "dataset": defaults.dataset,
        "source": defaults.source,
        "imported_from": checkpoint.name,
        "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "source_format": conv.source_format,
        "dropped_keys": len(conv.dropped),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if command:
        prov["command"] = command
    prov.update(provenance or {})
    meta = ModelMeta(
        architecture=conv.architecture, arch_kwargs=dict(conv.arch_kwargs), label_set=labels,
        input_size=tuple(input_size or defaults.input_size), mean=tuple(mean), std=tuple(std),  # type: ignore[arg-type]
        provenance=prov,
    )
    path = save_model(out, model, meta, half=half)
    # Read the file back: the weights in it must be the checkpoint's, bit for bit (fp32 files).
    loaded, meta = load_model(path)
    if not half:
        ref = model.state_dict()
        if any(not torch.equal(v, ref[k]) for k, v in loaded.state_dict().items()):
            path.unlink(missing_ok=True)
            raise CheckpointImportError(f"model file {path} did not read back identical to the checkpoint.")
    return ImportReport(path, meta, conv.source_format, len(conv.state), conv.dropped, filled)
