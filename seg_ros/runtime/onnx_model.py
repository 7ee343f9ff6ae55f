"""ONNX model files and their sidecars: bring your own ONNX (mmsegmentation, PaddleSeg, ``seg-ros export``).

An ONNX file runs in the Segmenter once seg_ros knows what its tensors mean. That description is a small
sidecar, ``MODEL.yaml`` / ``MODEL.yml`` / ``MODEL.json`` beside ``MODEL.onnx`` (or ``MODEL.onnx.yaml``)::

    label_set: cityscapes            # a built-in set (camvid, cityscapes, voc) or {name, names, colors, ignore_id}
    normalization:                   # optional; default ImageNet mean/std of RGB/255
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
      scale: 255                     # 255: mean/std are of RGB/255; 1: of RGB in 0..255 (mmseg style)
    input:
      name: input                    # optional when the model has one input
      size: 512x1024                 # HxW the model was exported for, or "dynamic"
      default_size: 512x1024         # dynamic models: the inference size when none is configured
    output:
      name: output                   # optional when the model has one output
      kind: logits                   # logits (N, C, h, w) or labels (N, h, w) / (N, 1, h, w) class ids

Files written by ``seg-ros export --onnx`` carry the same description in their ``seg_ros_sidecar``
metadata entry and need no sidecar. A sidecar that does not match the model's inputs or outputs is rejected
with the mismatch named (:class:`OnnxModelError`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.labels import LabelSet, LabelSetError, get_label_set
from seg_ros.core.paths import read_text_file
from seg_ros.models.modelfile import IMAGENET_MEAN, IMAGENET_STD, ModelFileError, ModelMeta, file_sha256

SIDECAR_KEY = "seg_ros_sidecar"
"""ONNX ``metadata_props`` entry holding the sidecar JSON in files written by ``seg-ros export``."""
OUTPUT_KINDS = ("logits", "labels")
DEFAULT_DYNAMIC_SIZE = (512, 1024)
_FLOAT = 1  # onnx.TensorProto.FLOAT


class OnnxModelError(ModelFileError):
    """An ONNX file is missing or corrupt, or its sidecar does not describe it."""


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX file with what seg_ros needs to run it.

    ``fixed_size``: (h, w) the graph's input is fixed to, or None when height and width are dynamic.
    ``fixed_batch``: the graph's fixed batch size, or None when dynamic.
    """

    path: Path
    sha256: str
    meta: ModelMeta
    input_name: str
    output_name: str
    output_kind: str
    fixed_size: tuple[int, int] | None
    fixed_batch: int | None
    opset: int

    @property
    def dynamic(self) -> bool:
        return self.fixed_size is None

    def check_input_shape(self, shape: tuple[int, ...]) -> None:
        """A clear error when a fixed-size model is fed another (N, 3, h, w) size: it cannot be rebuilt, it is the
        file."""
        fs = self.fixed_size
        if fs is not None and tuple(shape[-2:]) != fs:
            raise ConfigError(f"ONNX model {self.path.name} takes only {fs[0]}x{fs[1]} inputs but the pipeline "
                              f"feeds {shape[-2]}x{shape[-1]}; set resolution to {fs[0]}x{fs[1]} with keep_aspect "
                              "false, or export the model with dynamic height and width.")


def find_sidecar(path: Path) -> Path | None:
    """The sidecar beside ``path``: ``STEM.yaml|.yml|.json`` or ``NAME.onnx.yaml|.yml|.json``, first found."""
    for cand in [path.with_suffix(s) for s in (".yaml", ".yml", ".json")] + \
                [path.with_name(path.name + s) for s in (".yaml", ".yml", ".json")]:
        if cand.is_file():
            return cand
    return None


def load_onnx_model(path: str | os.PathLike, sidecar: str | os.PathLike | None = None) -> OnnxModel:
    """Read ``path``'s graph inputs/outputs and its description (``sidecar``, one found beside it, or the
    embedded one) and check that they agree. Raises :class:`OnnxModelError` naming the problem."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"ONNX file {path} does not exist.")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError, OSError, ...
        raise OnnxModelError(f"{path} is not a readable ONNX file (truncated or corrupt: {_first_line(e)}).") from e
    if not proto.graph.node:
        raise OnnxModelError(f"{path} is not a readable ONNX file: it holds no graph.")
    embedded = {p.key: p.value for p in proto.metadata_props}
    source: str
    if sidecar is not None or find_sidecar(path) is not None:
        sc_path = Path(sidecar) if sidecar is not None else find_sidecar(path)
        assert sc_path is not None
        desc = _read_sidecar(sc_path)
        source = f"sidecar {sc_path}"
    elif SIDECAR_KEY in embedded:
        try:
            desc = json.loads(embedded[SIDECAR_KEY])
        except ValueError as e:
            raise OnnxModelError(f"{path} has a malformed {SIDECAR_KEY} metadata entry ({e}).") from e
        source = f"the description embedded in {path}"
    else:
        raise OnnxModelError(f"ONNX file {path} has no sidecar: write {path.with_suffix('.yaml').name} beside it "
                             "(label_set, normalization, input size, output name and kind).")
    if not isinstance(desc, dict):
        raise OnnxModelError(f"{source} must be a mapping (label_set, normalization, input, output).")
    return _describe(path, proto, desc, source)


def _read_sidecar(p: Path) -> Any:
    try:
        text = read_text_file(p, "sidecar")
    except InputError as e:
        raise OnnxModelError(str(e)) from None
    try:
        return json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise OnnxModelError(f"sidecar {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'} "
                             f"({_first_line(e)}).") from e


def _dims(value_info) -> list[int | str | None]:
    """Dimensions of a graph input/output: ints where fixed, the symbol (or None) where dynamic."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _pick(kind: str, wanted: str | None, names: list[str], source: str, path: Path) -> str:
    if wanted:
        if wanted not in names:
            raise OnnxModelError(f"{source} names {kind} {wanted!r} but {path} has {kind}s {names}.")
        return wanted
    if len(names) != 1:
        raise OnnxModelError(f"{path} has {len(names)} {kind}s {names}; name one in {source} ({kind}.name).")
    return names[0]


def _size(text: Any, what: str, source: str) -> tuple[int, int]:
    from seg_ros.core.limits import parse_resolution

    try:
        return parse_resolution(str(text))
    except Exception as e:
        raise OnnxModelError(f"{source}: {what} {text!r} is not HxW, e.g. 512x1024.") from e


def _describe(path: Path, proto, desc: dict[str, Any], source: str) -> OnnxModel:
    g = proto.graph
    init = {i.name for i in g.initializer}
    inputs = {i.name: i for i in g.input if i.name not in init}
    outputs = {o.name: o for o in g.output}
    inp = desc.get("input") or {}
    out = desc.get("output") or {}
    if not isinstance(inp, dict) or not isinstance(out, dict):
        raise OnnxModelError(f"{source}: input and output must be mappings (name, size / kind).")
    in_name = _pick("input", inp.get("name"), list(inputs), source, path)
    out_name = _pick("output", out.get("name"), list(outputs), source, path)

    # label set and normalisation
    ls_desc = desc.get("label_set")
    try:
        if isinstance(ls_desc, str):
            label_set = get_label_set(ls_desc)
        elif isinstance(ls_desc, dict):
            label_set = LabelSet.from_dict(ls_desc)
        else:
            raise OnnxModelError(f"{source} has no label_set (a name such as cityscapes, or names and colors).")
    except LabelSetError as e:
        raise OnnxModelError(f"{source}: {e}") from e
    norm = desc.get("normalization") or {}
    try:
        scale = float(norm.get("scale", 255.0))
        mean = tuple(float(v) * (1.0 if scale == 255.0 else 1.0 / 255.0) for v in norm.get("mean", IMAGENET_MEAN))
        std = tuple(float(v) * (1.0 if scale == 255.0 else 1.0 / 255.0) for v in norm.get("std", IMAGENET_STD))
    except (TypeError, ValueError, AttributeError) as e:
        raise OnnxModelError(f"{source}: normalization must hold three-number mean and std lists ({e}).") from e
    if scale not in (1.0, 255.0) or len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise OnnxModelError(f"{source}: normalization needs mean and std of three numbers each (std > 0) and "
                             "scale 255 (of RGB/255) or 1 (of RGB in 0..255).")

    # input: (N, 3, H, W) float32, fixed or dynamic as the sidecar says
    vi = inputs[in_name]
    if vi.type.tensor_type.elem_type != _FLOAT:
        raise OnnxModelError(f"{path}: input {in_name!r} is not float32 (ONNX element type "
                             f"{vi.type.tensor_type.elem_type}); seg_ros feeds normalised float32 NCHW.")
    d = _dims(vi)
    if len(d) != 4 or d[1] not in (3, None) and not isinstance(d[1], str):
        raise OnnxModelError(f"{path}: input {in_name!r} has shape {d}; seg_ros feeds (N, 3, H, W).")
    model_fixed = (d[2], d[3]) if isinstance(d[2], int) and d[2] > 0 and isinstance(d[3], int) and d[3] > 0 else None
    size_text = inp.get("size")
    if size_text is None:
        raise OnnxModelError(f"{source} does not say input.size (HxW the model was exported for, or dynamic).")
    if str(size_text).strip().lower() == "dynamic":
        if model_fixed is not None:
            raise OnnxModelError(f"{source} says input {in_name!r} is dynamic but {path} fixes it to "
                                 f"{model_fixed[0]}x{model_fixed[1]}.")
        fixed_size = None
        default = _size(inp["default_size"], "input.default_size", source) if inp.get("default_size") \
            else DEFAULT_DYNAMIC_SIZE
    else:
        fixed_size = _size(size_text, "input.size", source)
        if model_fixed is not None and model_fixed != fixed_size:
            raise OnnxModelError(f"{source} says input {in_name!r} is {fixed_size[0]}x{fixed_size[1]} but {path} "
                                 f"fixes it to {model_fixed[0]}x{model_fixed[1]}.")
        default = fixed_size
    fixed_batch = d[0] if isinstance(d[0], int) and d[0] > 0 else None

    # output: logits (N, C, h, w) or labels (N, h, w) / (N, 1, h, w)
    kind = str(out.get("kind", "logits"))
    if kind not in OUTPUT_KINDS:
        raise OnnxModelError(f"{source}: output.kind must be logits or labels, not {kind!r}.")
    od = _dims(outputs[out_name])
    if od:
        if kind == "logits":
            if len(od) != 4:
                raise OnnxModelError(f"{source} says output {out_name!r} is logits (N, C, h, w) but {path} gives it "
                                     f"{len(od)} dimensions {od}.")
            if isinstance(od[1], int) and od[1] > 0 and od[1] != label_set.num_classes:
                raise OnnxModelError(f"{source} says label set {label_set.name} ({label_set.num_classes} classes) "
                                     f"but output {out_name!r} of {path} has {od[1]} channels.")
        elif not (len(od) == 3 or len(od) == 4 and od[1] in (1, None)):
            raise OnnxModelError(f"{source} says output {out_name!r} is a label map (N, h, w) but {path} gives it "
                                 f"shape {od}.")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    meta = ModelMeta(
        architecture=f"onnx:{path.stem}",
        label_set=label_set,
        input_size=default,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        provenance={"onnx": str(path), "description": source, **(desc.get("provenance") or {})},
    )
    return OnnxModel(path=path, sha256=file_sha256(path), meta=meta, input_name=in_name, output_name=out_name,
                     output_kind=kind, fixed_size=fixed_size, fixed_batch=fixed_batch, opset=opset)


def sidecar_for(meta: ModelMeta, input_name: str, output_name: str, size: tuple[int, int] | None,
                provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar description of a seg_ros export (embedded in the ONNX file, or written beside it)."""
    inp: dict[str, Any] = {"name": input_name}
    if size is None:
        inp.update(size="dynamic", default_size=f"{meta.input_size[0]}x{meta.input_size[1]}")
    else:
        inp["size"] = f"{size[0]}x{size[1]}"
    return {
        "label_set": meta.label_set.to_dict(),
        "normalization": {"mean": list(meta.mean), "std": list(meta.std), "scale": 255},
        "input": inp,
        "output": {"name": output_name, "kind": "logits"},
        "provenance": provenance or {},
    }


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
