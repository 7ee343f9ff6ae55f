"""Model files: one ``.safetensors`` file per model, with its description in the metadata.

The safetensors header carries one metadata entry, ``seg_ros``, a JSON object::

    {"format": 1, "architecture": "liteseg_mobilenetv2", "arch_kwargs": {},
     "label_set": {...}, "normalization": {"mean": [...], "std": [...], "scale": 255.0},
     "input_size": [360, 480], "provenance": {"dataset": ..., "epochs": ..., "val_miou": ...,
     "date": ..., "command": ..., "seg_ros_version": ...}}

A second entry, ``seg_ros_sha256``, is the SHA-256 of that JSON text followed
by the tensor data, so a flipped byte in the description or anywhere in the
weights is detected (safetensors itself checks only that the header parses).
Loading verifies it, rebuilds the
architecture through the registry and copies the tensors in after checking
every key and shape; nothing is unpickled.
Every failure is a :class:`ModelFileError` with one sentence naming the file
and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from seg_ros import __version__
from seg_ros.core.errors import ConfigError, InputError, SegRosError, clip
from seg_ros.core.labels import LabelSet, LabelSetError
from seg_ros.core.limits import check_inference_size
from seg_ros.core.paths import require_file
from seg_ros.core.staging import atomic_path
from seg_ros.models import build

FORMAT_VERSION = 1
METADATA_KEY = "seg_ros"
CHECKSUM_KEY = "seg_ros_sha256"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODEL = "liteseg_mobilenetv2_synthetic"
"""The shipped model used when none is named (trained on synthetic scenes only)."""
MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors header read (tensor table and metadata); a model's is tens of kilobytes."""
MAX_METADATA_CHARS = 1 << 20
"""Largest ``seg_ros`` metadata JSON parsed."""
MAX_METADATA_DEPTH = 16
"""Deepest nesting of the metadata JSON (provenance records nest a few levels)."""
MEAN_RANGE = (0.0, 1.0)
"""Per-channel normalisation mean, a fraction of 255."""
STD_RANGE = (1e-3, 1e3)
"""Per-channel normalisation std, a fraction of 255: positive (it divides) and far from float32's limits."""


class ModelFileError(SegRosError):
    """A model file is missing, unreadable, corrupt or does not match its description."""


@dataclass(frozen=True)
class ModelMeta:
    """Everything needed to rebuild and use a model, stored in the model file's metadata."""

    architecture: str
    label_set: LabelSet
    input_size: tuple[int, int]
    """Training input size (height, width) in pixels; the default inference resolution."""
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    """Per-channel mean of RGB / 255."""
    std: tuple[float, float, float] = IMAGENET_STD
    """Per-channel standard deviation of RGB / 255."""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.label_set.num_classes

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT_VERSION,
            "architecture": self.architecture,
            "arch_kwargs": self.arch_kwargs,
            "label_set": self.label_set.to_dict(),
            "normalization": {"mean": list(self.mean), "std": list(self.std), "scale": 255.0},
            "input_size": list(self.input_size),
            "provenance": self.provenance,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model file") -> ModelMeta:
        """Parse and check the ``seg_ros`` metadata JSON; ``source`` names the file in errors.

        Every value is bounded by what can run (sizes, class count, normalisation), so a crafted file fails
        here with one sentence instead of in an allocation later.
        """
        if len(text) > MAX_METADATA_CHARS:
            raise ModelFileError(f"{source} has {len(text):,} characters of seg_ros metadata, more than the "
                                 f"{MAX_METADATA_CHARS:,} a model description takes; it was not written by seg_ros.")
        try:
            d = json.loads(text)
        except RecursionError:
            raise ModelFileError(f"{source} has seg_ros metadata nested too deeply to be a model description."
                                 ) from None
        except ValueError as e:
            raise ModelFileError(f"{source} has malformed seg_ros metadata (not JSON: {e}).") from None
        try:
            return cls._from_dict(d)
        except ModelFileError as e:
            raise ModelFileError(f"{source} has malformed seg_ros metadata: {e}") from None
        except LabelSetError as e:
            raise ModelFileError(f"{source} has malformed seg_ros metadata ({str(e).rstrip('.')}).") from None

    @classmethod
    def _from_dict(cls, d: Any) -> ModelMeta:
        """The checked fields of parsed metadata; raises ModelFileError (one clause, no file name)."""
        if not isinstance(d, dict):
            raise ModelFileError(f"it is a JSON {type(d).__name__}, not an object.")
        if _depth(d) > MAX_METADATA_DEPTH:
            raise ModelFileError(f"it is nested more than {MAX_METADATA_DEPTH} levels deep.")
        if d.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"seg_ros format {d.get('format')!r}; this seg_ros reads format {FORMAT_VERSION}.")
        for key in ("architecture", "label_set", "normalization", "input_size"):
            if key not in d:
                raise ModelFileError(f"it has no {key!r} entry.")
        arch = d["architecture"]
        if not isinstance(arch, str) or not arch:
            raise ModelFileError(f"architecture must be a name, not {arch!r}.")
        arch_kwargs = _mapping(d.get("arch_kwargs", {}), "arch_kwargs")
        for k, v in arch_kwargs.items():
            if not isinstance(v, (bool, int, float, str)):
                raise ModelFileError(f"arch_kwargs {k!r} must be a number, boolean or string, not {v!r}.")
        if "num_classes" in arch_kwargs:
            raise ModelFileError("arch_kwargs must not set num_classes (the label set gives the class count).")
        norm = _mapping(d["normalization"], "normalization")
        mean = _numbers(norm.get("mean"), "normalization mean", *MEAN_RANGE)
        std = _numbers(norm.get("std"), "normalization std", *STD_RANGE)
        size = d["input_size"]
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
            raise ModelFileError(f"input_size must be [height, width] in pixels, not {size!r}.")
        try:
            check_inference_size(size[0], size[1], what="input_size")
        except ConfigError as e:
            raise ModelFileError(str(e)) from None
        label_set = LabelSet.from_dict(_mapping(d["label_set"], "label_set"))
        return cls(architecture=arch, arch_kwargs=arch_kwargs, label_set=label_set, mean=mean, std=std,
                   input_size=(size[0], size[1]), provenance=_mapping(d.get("provenance", {}), "provenance"))


def _depth(obj: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        o, level = stack.pop()
        children = o.values() if isinstance(o, dict) else o if isinstance(o, list) else None
        if children is not None:
            deepest = max(deepest, level + 1)
            stack.extend((c, level + 1) for c in children)
    return deepest


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _mapping(v: Any, name: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ModelFileError(f"{name} must be a JSON object, not {type(v).__name__}.")
    return dict(v)


def _numbers(v: Any, name: str, low: float, high: float) -> tuple[float, float, float]:
    """Three finite numbers in [low, high] (one per RGB channel)."""
    if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                        for x in v)):
        raise ModelFileError(f"{name} must be 3 numbers (R, G, B), not {v!r}.")
    if not all(math.isfinite(x) and low <= x <= high for x in v):
        raise ModelFileError(f"{name} {v} must lie in [{low:g}, {high:g}].")
    return tuple(float(x) for x in v)  # type: ignore[return-value]


def save_model(path: str | os.PathLike, model: nn.Module, meta: ModelMeta, half: bool = False) -> Path:
    """Write ``model``'s state dict and ``meta`` to ``path`` atomically (temp file + rename).

    ``half=True`` stores floating-point weights as fp16 (BatchNorm statistics stay fp32),
    halving the file; they load back into an fp32 model.
    """
    path = Path(path)
    meta = replace(meta, provenance={"seg_ros_version": __version__, **meta.provenance})
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        if half and v.is_floating_point() and "running_" not in k:
            v = v.half()
        tensors[k] = v
    metadata = {METADATA_KEY: meta.to_json()}
    # The data section does not depend on the metadata, so hash it from a first serialisation.
    metadata[CHECKSUM_KEY] = _checksum(metadata[METADATA_KEY], save(tensors, metadata=metadata))
    with atomic_path(path) as tmp:
        tmp.write_bytes(save(tensors, metadata=metadata))
    return path


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read only the metadata of a model file (fast: the header, no tensors)."""
    path = _existing(path)
    with _open(path) as f:
        return _meta_of(f, path, verify=True)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Rebuild the model described in ``path`` and load its weights; returns ``(model in eval mode, meta)``."""
    path = _existing(path)
    with _open(path) as f:
        meta = _meta_of(f, path, verify=True)
        try:
            model = build(meta.architecture, meta.num_classes, **meta.arch_kwargs)
        except SegRosError as e:
            raise ModelFileError(f"model file {path} describes a model seg_ros cannot build: {e}") from e
        expected = model.state_dict()
        stored = set(f.keys())
        missing = sorted(set(expected) - stored)
        unexpected = sorted(stored - set(expected))
        if missing or unexpected:
            raise ModelFileError(
                f"model file {path} does not match architecture {meta.architecture!r}: "
                f"{len(missing)} missing tensors {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}."
            )
        state = {}
        for k in expected:
            try:
                t = f.get_tensor(k)
            except (SafetensorError, RuntimeError, ValueError) as e:
                raise ModelFileError(f"model file {path} is corrupt: tensor {k} cannot be read ({e}).") from e
            if t.shape != expected[k].shape:
                raise ModelFileError(
                    f"model file {path}: tensor {k} has shape {tuple(t.shape)} but {meta.architecture!r} with "
                    f"{meta.num_classes} classes expects {tuple(expected[k].shape)} "
                    "(wrong class count or architecture)."
                )
            state[k] = t
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), meta


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a whole file, as ``sha256sum`` prints it, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_models() -> dict[str, Path]:
    """Model files shipped inside the package, by name (file stem)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.safetensors"))}


def resolve_model(ref: str | os.PathLike) -> Path:
    """Turn a model reference (a model-file path or a shipped model's name) into a file path."""
    ref_s = str(ref)
    shipped = shipped_models()
    if ref_s in shipped:
        return shipped[ref_s]
    p = Path(ref_s).expanduser()
    try:
        exists = p.exists()
    except OSError:  # e.g. a name longer than the file system allows: not a file
        exists = False
    if p.suffix == ".safetensors" or os.sep in ref_s or exists:
        return _existing(p)
    names = ", ".join(shipped) or "none installed"
    raise ModelFileError(f"unknown model {clip(repr(ref_s))}: not a file and not a shipped model ({names}).")


def _existing(path: str | os.PathLike) -> Path:
    try:
        return require_file(path, "model file")  # by its type: a FIFO or a device would block or never end
    except InputError as e:
        raise ModelFileError(str(e)) from None


def _open(path: Path):
    _check_header_length(path)
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(
            f"model file {path} is not a readable .safetensors file (truncated or corrupt: {e})."
        ) from e


def _check_header_length(path: Path) -> None:
    """Refuse a file whose 8-byte header length exceeds the file or :data:`MAX_HEADER_BYTES`, before reading it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelFileError(f"model file {path} cannot be read ({e.strerror}).") from None
    if len(head) < 8:
        raise ModelFileError(f"model file {path} is not a readable .safetensors file (truncated or corrupt: "
                             f"{size} bytes).")
    (header_len,) = struct.unpack("<Q", head)
    if header_len > size - 8:
        raise ModelFileError(f"model file {path} is truncated or corrupt: its header length field says "
                             f"{header_len:,} bytes but the file holds {size:,}.")
    if header_len > MAX_HEADER_BYTES:
        raise ModelFileError(f"model file {path} has a {header_len:,}-byte header, more than the "
                             f"{MAX_HEADER_BYTES:,} a model file needs; it was not written by seg_ros.")


def _data_section(blob: bytes | memoryview) -> memoryview:
    """The tensor bytes of a serialised safetensors file (after the 8-byte length and the JSON header)."""
    (header_len,) = struct.unpack("<Q", blob[:8])
    return memoryview(blob)[8 + header_len:]


def _checksum(meta_json: str, blob: bytes) -> str:
    h = hashlib.sha256(meta_json.encode())
    h.update(_data_section(blob))
    return h.hexdigest()


def _meta_of(f, path: Path, verify: bool) -> ModelMeta:
    md = f.metadata() or {}
    if METADATA_KEY not in md:
        raise ModelFileError(f"model file {path} has no seg_ros metadata; it is not a seg_ros model file.")
    if verify:
        if CHECKSUM_KEY not in md:
            raise ModelFileError(f"model file {path} has no {CHECKSUM_KEY} entry; re-save it with seg_ros.")
        if _checksum(md[METADATA_KEY], path.read_bytes()) != md[CHECKSUM_KEY]:
            raise ModelFileError(f"model file {path} is corrupt: its content does not match the stored SHA-256.")
    return ModelMeta.from_json(md[METADATA_KEY], source=f"model file {path}")
