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
from seg_ros.errors import SegRosError
from seg_ros.labels import LabelSet, LabelSetError
from seg_ros.models import build
from seg_ros.outputs import atomic_path

FORMAT_VERSION = 1
METADATA_KEY = "seg_ros"
CHECKSUM_KEY = "seg_ros_sha256"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "liteseg_mobilenetv2_synthetic"
"""The shipped model used when none is named (trained on synthetic scenes only)."""


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
        try:
            d = json.loads(text)
            if d.get("format") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{source} has seg_ros format {d.get('format')!r}; this seg_ros reads format {FORMAT_VERSION}."
                )
            norm = d["normalization"]
            h, w = (int(v) for v in d["input_size"])
            return cls(
                architecture=str(d["architecture"]),
                arch_kwargs=dict(d.get("arch_kwargs", {})),
                label_set=LabelSet.from_dict(d["label_set"]),
                mean=tuple(float(v) for v in norm["mean"]),  # type: ignore[arg-type]
                std=tuple(float(v) for v in norm["std"]),  # type: ignore[arg-type]
                input_size=(h, w),
                provenance=dict(d.get("provenance", {})),
            )
        except ModelFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, LabelSetError) as e:
            raise ModelFileError(f"{source} has malformed seg_ros metadata ({e}).") from e


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
    if p.suffix == ".safetensors" or os.sep in ref_s or p.exists():
        return _existing(p)
    names = ", ".join(shipped) or "none installed"
    raise ModelFileError(f"unknown model {ref_s!r}: not a file and not a shipped model ({names}).")


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist.")
    return p


def _open(path: Path):
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(
            f"model file {path} is not a readable .safetensors file (truncated or corrupt: {e})."
        ) from e


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
