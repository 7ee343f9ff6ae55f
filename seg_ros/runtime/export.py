"""``seg-ros export --onnx``: a model file → one self-contained ONNX file, checked against torch.

The graph maps normalised RGB (N, 3, H, W) float32 (input ``input``) to logits (N, C, H, W) float32
(output ``logits``), with H×W fixed or dynamic and the batch dynamic. The model's description (label set,
normalisation, input size) rides along in the ONNX metadata (:data:`~seg_ros.runtime.onnx_model.SIDECAR_KEY`),
so the file runs in the Segmenter with no sidecar. Every export is run through ONNX Runtime on synthetic
scenes and compared with torch before it is moved into place: max |Δlogit| ≤ :data:`MAX_ABS_DIFF` and
argmax agreement ≥ :data:`MIN_AGREEMENT`, or nothing is written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seg_ros.core.cache_entry import CacheEntry, sha256_json
from seg_ros.core.errors import SegRosError
from seg_ros.core.staging import atomic_path
from seg_ros.models.modelfile import file_sha256, load_model, resolve_model
from seg_ros.runtime.onnx_model import SIDECAR_KEY, OnnxModel, load_onnx_model, sidecar_for

OPSET = 18
MAX_ABS_DIFF = 1e-3
"""Largest |ONNX Runtime logit − torch logit| an export may show."""
MIN_AGREEMENT = 0.999
"""Smallest share of pixels whose argmax class must agree between ONNX Runtime and torch."""
INPUT_NAME, OUTPUT_NAME = "input", "logits"

log = logging.getLogger("seg_ros.runtime")


class ExportError(SegRosError):
    """An export failed or its result does not match torch."""


@dataclass
class ExportReport:
    path: Path
    opset: int
    size: tuple[int, int] | None
    """Fixed (H, W), or None for dynamic H×W."""
    checked_sizes: list[tuple[int, int]] = field(default_factory=list)
    max_abs_diff: float = 0.0
    """Largest |Δlogit| over every checked size and frame."""
    agreement: float = 1.0
    """Smallest argmax agreement over the checked sizes (share of pixels, 0..1)."""
    bytes: int = 0
    seconds: float = 0.0


def export_onnx(model: str | os.PathLike, out: str | os.PathLike, size: tuple[int, int] | None = None,
                dynamic: bool = False, opset: int = OPSET, check: bool = True) -> ExportReport:
    """Export ``model`` (a model file or shipped name) to ``out``.

    ``size``: the (H, W) to export for (default the model's input size); ``dynamic=True`` leaves H and W
    free (the check then also runs at a second size). The file is written only if the check passes.
    """
    if opset < 18:
        raise ExportError(f"opset {opset} is too old; seg_ros exports opset 18 or newer.")
    t0 = time.perf_counter()
    path = resolve_model(model)
    module, meta = load_model(path)
    size = tuple(size) if size is not None else meta.input_size  # type: ignore[assignment]
    blob = _export_bytes(module, size, dynamic, opset)
    blob = _with_metadata(blob, sidecar_for(meta, INPUT_NAME, OUTPUT_NAME, None if dynamic else size, {
        "exported_from": path.name, "model_sha256": file_sha256(path), "torch": torch.__version__,
        "architecture": meta.architecture}))
    report = ExportReport(Path(out), opset, None if dynamic else size)  # type: ignore[arg-type]
    if check:
        sizes = [size]
        if dynamic:
            sizes.append((max(32, size[0] // 2 + 8), max(32, size[1] // 2 - 8)))
        _check_against_torch(blob, module, sizes, meta.mean, meta.std, report)
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(blob)
    report.bytes = len(blob)
    report.seconds = time.perf_counter() - t0
    return report


def export_source(model_path: Path) -> dict:
    """What a cached export of ``model_path`` is made from (its cache key and manifest source)."""
    return {"model_sha256": file_sha256(model_path), "torch": torch.__version__, "opset": OPSET,
            "height_width": "dynamic"}


def cached_export(model_path: str | os.PathLike, cache_root: Path) -> OnnxModel:
    """The dynamic-H×W ONNX export of a model file, from ``cache_root/onnx`` or exported (checked) into it.

    Keyed by :func:`export_source` (the model file's SHA-256, the torch version, the opset), so a changed
    model file or a new torch exports anew. A cached file is used only if its manifest verifies (see
    :mod:`seg_ros.core.cache_entry`) and its embedded description names this model file's SHA-256;
    otherwise it is exported again with a log line naming the entry and the reason.
    """
    path = Path(model_path)
    source = export_source(path)
    entry = CacheEntry.beside(cache_root / "onnx" / f"{path.stem}-{sha256_json(source)[:16]}.onnx", source,
                              "ONNX export")
    model = load_cached_export(entry, source["model_sha256"])
    if model is None:
        log.info("exporting %s to ONNX (%s)", path.name, entry.content)
        entry.store(lambda tmp: export_onnx(path, tmp, dynamic=True))
        model = load_onnx_model(entry.content)
    return model


def load_cached_export(entry: CacheEntry, model_sha256: str) -> OnnxModel | None:
    """The export in cache ``entry`` if its manifest verifies and its embedded description names the model file of
    SHA-256 ``model_sha256``; else None (absent, or unusable: logged and removed, so the caller exports anew)."""
    if entry.load() is None:
        return None
    try:
        model = load_onnx_model(entry.content)
    except SegRosError as e:
        entry.invalidate(str(e).rstrip("."))
        return None
    recorded = model.meta.provenance.get("model_sha256")
    if recorded != model_sha256:
        entry.invalidate(f"it was exported from another model file (SHA-256 {str(recorded)[:12]}…, "
                         f"not {model_sha256[:12]}…)")
        return None
    return model


def _export_bytes(module: torch.nn.Module, size: tuple[int, int], dynamic: bool, opset: int) -> bytes:
    module = module.eval().float().to("cpu", memory_format=torch.contiguous_format)
    x = torch.zeros(1, 3, *size)
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"},
            OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), buf, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True,
                              dynamo=False)
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {type(module).__name__} at {size[0]}x{size[1]} "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__}).") from e
    return buf.getvalue()


def _with_metadata(blob: bytes, sidecar: dict) -> bytes:
    import onnx

    proto = onnx.load_from_string(blob)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = SIDECAR_KEY, json.dumps(sidecar, sort_keys=True)
    proto.producer_name = "seg_ros"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _check_against_torch(blob: bytes, module: torch.nn.Module, sizes: list[tuple[int, int]],
                         mean, std, report: ExportReport) -> None:
    import onnxruntime as ort

    from seg_ros.synthetic import generate_scene

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    m = np.asarray(mean, np.float32)[:, None, None] * 255.0
    s = np.asarray(std, np.float32)[:, None, None] * 255.0
    for size in sizes:
        rgb = generate_scene(11, size).image
        x = ((rgb.transpose(2, 0, 1).astype(np.float32) - m) / s)[None]
        with torch.no_grad():
            ref = module(torch.from_numpy(x)).numpy()
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        if got.shape != ref.shape:
            raise ExportError(f"the ONNX export gives logits of shape {got.shape} at {size[0]}x{size[1]} "
                              f"where torch gives {ref.shape}.")
        diff = float(np.abs(got - ref).max())
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        report.checked_sizes.append(size)
        report.max_abs_diff = max(report.max_abs_diff, diff)
        report.agreement = min(report.agreement, agree)
        if diff > MAX_ABS_DIFF or agree < MIN_AGREEMENT:
            raise ExportError(f"the ONNX export differs from torch at {size[0]}x{size[1]}: max |Δlogit| "
                              f"{diff:.2e} (limit {MAX_ABS_DIFF:g}), argmax agreement {agree:.4%} "
                              f"(limit {MIN_AGREEMENT:.1%}); nothing was written.")
