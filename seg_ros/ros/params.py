"""The node's parameters, declared once: names, types, defaults, ranges and descriptions.

Pure Python (no rclpy): the node declares every entry of :data:`PARAMS` with a
descriptor built from it, and the offline tools (``seg-ros evaluate``) read the
same ROS 2 parameter files through :func:`load_params_file`, so a setting seen
offline is the setting the robot runs.

Parameters marked ``reload`` change the pipeline itself (model, backend,
device, precision, resolution, keep_aspect): the node builds a new Segmenter in
the background and swaps it in. The others apply on the next frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seg_ros.core.errors import ConfigError, clip
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, parse_resolution
from seg_ros.crf import AUTO_GRID_SIDE as CRF_AUTO_GRID_SIDE
from seg_ros.crf import LIMITS as CRF_LIMITS
from seg_ros.crf import METHODS as CRF_METHODS
from seg_ros.crf import CRFConfig
from seg_ros.models.modelfile import DEFAULT_MODEL
from seg_ros.runtime import BACKENDS

NODE_NAME = "segmentation_node"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type is the type of ``default`` (bool, int, float or str)."""

    name: str
    default: bool | int | float | str
    description: str
    choices: tuple[str, ...] | None = None
    range: tuple[float, float] | None = None
    """Inclusive (low, high) for numbers."""
    reload: bool = False
    """Changing it rebuilds the pipeline (done in the background by the node)."""
    check: Callable[[Any], Any] | None = None
    """Extra validation; returns the value to store or raises ConfigError."""
    read_only: bool = False
    """Fixed at start-up (e.g. the subscription's transport)."""

    @property
    def type(self) -> type:
        return type(self.default)


def _resolution(value: str) -> str:
    if value.strip() == "":
        return ""
    h, w = parse_resolution(value)
    return f"{h}x{w}"


def _reference_size(value: int) -> int:
    if 0 < value < 32:
        raise ConfigError(f"crf.reference_size must be 0 (no scaling) or at least 32 pixels, not {value}.")
    return value


MIN_RATE_HZ = 0.01
"""The lowest non-zero max_rate_hz: one frame per 100 s."""


def _max_rate(value: float) -> float:
    if 0 < value < MIN_RATE_HZ:
        raise ConfigError(f"max_rate_hz must be 0 (unlimited) or at least {MIN_RATE_HZ} (one frame per 100 s), "
                          f"not {value!r}.")
    return value


def _model(value: str) -> str:
    if not value.strip():
        raise ConfigError("model must name a shipped model or a model file, not an empty string.")
    return value.strip()


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model", DEFAULT_MODEL, "Shipped model name, a .safetensors model file, or an .onnx file with sidecar.",
              reload=True, check=_model),
    ParamSpec("backend", "torch", "Inference backend; auto = tensorrt, else onnxruntime, else torch.",
              choices=("auto", *BACKENDS), reload=True),
    ParamSpec("device", "auto", "auto, cpu or cuda:N.", reload=True),
    ParamSpec("precision", "fp32", "Network precision (fp16 needs CUDA; int8: onnxruntime on CPU, tensorrt).",
              choices=("fp32", "fp16", "int8"), reload=True),
    ParamSpec("resolution", "", "Inference size HxW, e.g. 360x640; empty = the model's training size.",
              reload=True, check=_resolution),
    ParamSpec("keep_aspect", True, "Fit frames inside the resolution keeping their aspect ratio.", reload=True),
    ParamSpec("runtime.threads", 0, "ONNX Runtime CPU threads; 0 = one per core.", range=(0, 256), reload=True),
    ParamSpec("runtime.cuda_graphs", False, "torch on CUDA: capture and replay a CUDA graph per input shape.",
              reload=True),
    ParamSpec("runtime.calibration", "", "int8: a bag or image folder of typical frames to calibrate on.",
              reload=True),
    ParamSpec("runtime.calibration_frames", 64, "int8: at most this many calibration frames.", range=(1, 1000),
              reload=True),
    ParamSpec("runtime.calibration_topic", "", "int8: image topic of the calibration bag; empty = its only one.",
              reload=True),
    ParamSpec("runtime.cache_dir", "", "ONNX exports, int8 models, TensorRT engines; empty = ~/.cache/seg_ros.",
              reload=True),
    ParamSpec("runtime.fallback", True, "A backend that cannot run here falls back (logged) instead of failing.",
              reload=True),
    ParamSpec("runtime.on_new_shape", "rebuild", "TensorRT input size without an engine: rebuild one or error.",
              choices=("rebuild", "error"), reload=True),
    ParamSpec("runtime.max_batch", 1, "Largest batch of a TensorRT engine's optimisation profile.", range=(1, 64),
              reload=True),
    ParamSpec("overlay_alpha", 0.5, "Weight of the label colours in ~/overlay.", range=(0.0, 1.0)),
    ParamSpec("confidence_encoding", "mono8", "~/confidence as mono8 (0..255) or 32FC1 (0..1).",
              choices=("mono8", "32FC1")),
    ParamSpec("publish.labels", True, "Publish ~/labels (mono8 class ids)."),
    ParamSpec("publish.color", True, "Publish ~/color (rgb8 label colours) while subscribed."),
    ParamSpec("publish.overlay", True, "Publish ~/overlay (rgb8 blend) while subscribed."),
    ParamSpec("publish.confidence", True, "Publish ~/confidence while subscribed."),
    ParamSpec("publish.camera_info", True, "Republish camera_info as ~/camera_info, scaled to the output size."),
    ParamSpec("input_transport", "raw", "Subscribe to image (raw) or image/compressed (compressed).",
              choices=("raw", "compressed"), read_only=True),
    ParamSpec("qos.reliability", "best_effort", "Input QoS reliability; auto matches the publisher.",
              choices=("best_effort", "reliable", "auto")),
    ParamSpec("qos.depth", 1, "Input QoS history depth.", range=(1, 100)),
    ParamSpec("max_pixels", DEFAULT_MAX_PIXELS, "Largest input frame (height x width, as the message or its "
              "JPEG/PNG header declares it) decoded; larger ones are dropped as bad frames before any allocation.",
              range=(1, MAX_PIXELS_LIMIT)),
    ParamSpec("max_rate_hz", 0.0, "Process at most this many frames per second; 0 = unlimited, else at least 0.01.",
              range=(0.0, 1000.0), check=_max_rate),
    ParamSpec("crf.enabled", False, "Refine the network output with a dense CRF (see docs/crf.md)."),
    ParamSpec("crf.method", "fast", "exact: pydensecrf2 on the CPU; fast: PyTorch on the pipeline's device; auto: "
              "fast on CUDA, on the CPU exact when pydensecrf2 is installed.", choices=CRF_METHODS),
    ParamSpec("crf.iterations", 10, "Mean-field iterations.", range=CRF_LIMITS["iterations"]),
    ParamSpec("crf.w1", 4.0, "Weight of the appearance (bilateral) kernel; 0 = off.", range=CRF_LIMITS["w1"]),
    ParamSpec("crf.theta_alpha", 121.0, "Spatial width θα of the appearance kernel, pixels at crf.reference_size.",
              range=CRF_LIMITS["theta_alpha"]),
    ParamSpec("crf.theta_beta", 5.0, "Colour width θβ of the appearance kernel, RGB units (0..255).",
              range=CRF_LIMITS["theta_beta"]),
    ParamSpec("crf.w2", 3.0, "Weight of the smoothness (Gaussian) kernel; 0 = off.", range=CRF_LIMITS["w2"]),
    ParamSpec("crf.theta_gamma", 3.0, "Spatial width θγ of the smoothness kernel, pixels at crf.reference_size.",
              range=CRF_LIMITS["theta_gamma"]),
    ParamSpec("crf.reference_size", 500, "Longer frame side (pixels) at which θα and θγ hold; they scale with "
              "max(H, W) / reference_size; 0 = use them as given.", range=CRF_LIMITS["reference_size"],
              check=_reference_size),
    ParamSpec("crf.confidence_threshold", 0.0, "Refine only pixels whose network confidence is below this, plus "
              "crf.band; 0 = every pixel.", range=CRF_LIMITS["confidence_threshold"]),
    ParamSpec("crf.band", 8, "Pixels added around the uncertain region (with crf.confidence_threshold).",
              range=CRF_LIMITS["band"]),
    ParamSpec("crf.downsample", 0, "Fast CRF: run the mean field on a grid this many times coarser than the frame "
              f"(its last update at full resolution); 1 = full resolution, 0 = auto (grid's longer side >= "
              f"{CRF_AUTO_GRID_SIDE}).",
              range=CRF_LIMITS["downsample"]),
    ParamSpec("crf.exact_fallback", False, "With crf.method=exact and pydensecrf2 missing: use the fast CRF "
              "(true) or refuse (false)."),
)
"""Every parameter of the node, in the order they are documented."""

SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


_TYPE_NAMES = {bool: "a bool", int: "an int", float: "a float", str: "a str"}


def validate(name: str, value: Any) -> Any:
    """Check one value against its spec; returns the value to store (normalised) or raises ConfigError."""
    spec = SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown parameter {_shown(name)}; known: {', '.join(SPECS)}.")
    t = spec.type
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not t:
        shown = f"{type(value).__name__} {_shown(value)}" if _is_scalar(value) else _shown(value)
        raise ConfigError(f"parameter {name} must be {_TYPE_NAMES[t]}, not {shown}.")
    if t is float and not math.isfinite(value):
        raise ConfigError(f"parameter {name} must be finite, not {value!r}.")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"parameter {name} must be one of {', '.join(spec.choices)}, not {_shown(value)}.")
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        raise ConfigError(f"parameter {name} must lie in [{_number(spec.range[0])}, {_number(spec.range[1])}], "
                          f"not {_shown(value)}.")
    if spec.check is not None:
        value = spec.check(value)
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _shown(value: Any) -> str:
    """``value`` for a one-line message: a scalar's repr, clipped; of anything else only its type (printing a
    YAML alias bomb would expand billions of elements)."""
    if isinstance(value, int) and value.bit_length() > 256:  # repr refuses ints of more than 4300 digits
        return f"an integer of {value.bit_length():,} bits"
    return clip(repr(value)) if _is_scalar(value) else f"a {type(value).__name__}"


def _number(v: float) -> str:
    """A range bound as written: integers in full (``268435456``, not ``2.68435e+08``), floats shortest."""
    return str(v) if isinstance(v, int) else f"{v:g}"


def validate_all(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``values``, every entry validated."""
    out = defaults()
    for k, v in values.items():
        out[k] = validate(k, v)
    return out


def load_params_file(path: str | os.PathLike, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Read a ROS 2 parameter file (``<node or /**>: ros__parameters: {...}``) into flat validated values.

    Nested mappings flatten to dotted names (``crf: {enabled: true}`` → ``crf.enabled``). Sections for
    ``/**`` and for ``node_name`` (with or without namespace) are merged, the node's own last.
    """
    from seg_ros.core.errors import InputError
    from seg_ros.core.paths import require_file

    p = Path(path)
    try:
        require_file(p, "parameter file")  # by its type: reading a FIFO or a device would block or never end
    except InputError as e:
        raise ConfigError(str(e)) from None
    try:
        doc = yaml.safe_load(p.read_text())
    except UnicodeDecodeError as e:
        raise ConfigError(f"parameter file {p} is not UTF-8 text (byte {e.start} cannot be decoded).") from None
    except ValueError:  # PyYAML's int() of a number longer than Python converts (4300 digits)
        raise ConfigError(f"parameter file {p} holds a number too long to be a parameter value.") from None
    except OSError as e:
        raise ConfigError(f"cannot read parameter file {p} ({e.strerror}).") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"parameter file {p} is not valid YAML ({str(e).splitlines()[0]}).") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"parameter file {p} must map node names to ros__parameters.")
    merged: dict[str, Any] = {}
    matched = False
    for key in sorted(doc, key=lambda k: k != "/**"):  # wildcard first, the node's own section overrides
        section = doc[key]
        name = str(key).rstrip("/").rsplit("/", 1)[-1]
        if key != "/**" and name != node_name:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ConfigError(f"parameter file {p}: section {key!r} has no ros__parameters mapping.")
        matched = True
        try:
            merged.update(_flatten(section["ros__parameters"]))
        except ConfigError as e:
            raise ConfigError(f"parameter file {p}: {e}") from None
    if not matched:
        raise ConfigError(f"parameter file {p} has no section for {node_name} or /**.")
    merged.pop("use_sim_time", None)
    try:
        return validate_all(merged)
    except ConfigError as e:
        raise ConfigError(f"parameter file {p}: {e}") from e


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted names; descends only into prefixes of known names (a YAML alias bomb of
    mappings would otherwise expand into billions of names)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            if not any(known.startswith(f"{name}.") for known in SPECS):
                raise ConfigError(f"unknown parameter group {_shown(name)}; known: {', '.join(SPECS)}.")
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def segmenter_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`seg_ros.pipeline.Segmenter` from (validated) parameter values."""
    return {
        "model": values["model"],
        "resolution": values["resolution"] or None,
        "keep_aspect": values["keep_aspect"],
        "device": values["device"],
        "precision": values["precision"],
        "backend": values["backend"],
        "overlay_alpha": values["overlay_alpha"],
        "crf": crf_config(values),
        "runtime": runtime_options(values),
    }


def runtime_options(values: dict[str, Any]):
    """The :class:`seg_ros.runtime.RuntimeOptions` of (validated) parameter values."""
    from seg_ros.runtime import RuntimeOptions

    return RuntimeOptions(
        threads=values["runtime.threads"], cuda_graphs=values["runtime.cuda_graphs"],
        calibration=values["runtime.calibration"], calibration_frames=values["runtime.calibration_frames"],
        calibration_topic=values["runtime.calibration_topic"], cache_dir=values["runtime.cache_dir"],
        fallback=values["runtime.fallback"], on_new_shape=values["runtime.on_new_shape"],
        max_batch=values["runtime.max_batch"])


def crf_config(values: dict[str, Any]) -> CRFConfig | None:
    """The :class:`~seg_ros.crf.CRFConfig` of (validated) parameter values, or None with ``crf.enabled`` off."""
    if not values["crf.enabled"]:
        return None
    names = ("method", "iterations", "w1", "theta_alpha", "theta_beta", "w2", "theta_gamma", "reference_size",
             "confidence_threshold", "band", "downsample", "exact_fallback")
    return CRFConfig(**{n: values[f"crf.{n}"] for n in names})


def reload_params() -> frozenset[str]:
    """Names of the parameters whose change rebuilds the pipeline."""
    return frozenset(p.name for p in PARAMS if p.reload)


def markdown_table() -> str:
    """The parameter table of docs/node.md, generated from :data:`PARAMS` (``python -m seg_ros.ros.params``)."""
    lines = ["| parameter | type | default | values | at runtime | description |", "|---|---|---|---|---|---|"]
    for p in PARAMS:
        default = f"`{p.default!r}`" if isinstance(p.default, str) else f"`{str(p.default).lower()}`" \
            if isinstance(p.default, bool) else f"`{p.default}`"
        if p.choices:
            values = " / ".join(f"`{c}`" for c in p.choices)
        elif p.range is not None:
            values = f"{_number(p.range[0])} … {_number(p.range[1])}"
        else:
            values = ""
        runtime = "read-only" if p.read_only else "rebuilds the pipeline" if p.reload else "next frame"
        lines.append(f"| `{p.name}` | {p.type.__name__} | {default} | {values} | {runtime} | {p.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
