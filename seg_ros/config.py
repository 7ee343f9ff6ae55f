"""The one configuration schema: every setting's name, type, default, range or choices, check and description.

The settings are dataclass fields made with :func:`seg_ros.core.settings.setting`: the Segmenter's and the
node's own in :class:`NodeSettings` below, the backends' in :class:`~seg_ros.runtime.RuntimeOptions`
(``runtime.*``) and the CRF's in :class:`~seg_ros.crf.CRFConfig` (``crf.*``). The node's parameter list
:data:`PARAMS` is generated from those fields, in their order; the node declares each with a descriptor built
from it, the offline tools read the same ROS 2 parameter files through :func:`load_params_file`, and
:mod:`seg_ros.cli.options` generates command-line options from it, so a setting seen offline is the setting the
robot runs. Pure Python (no rclpy); ``python -m seg_ros.config`` prints the table of docs/node.md.

Parameters marked ``reload`` change the pipeline itself (model, backend, device, precision, resolution,
keep_aspect, runtime.*): the node builds a new Segmenter in the background and swaps it in. The others apply on
the next frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from seg_ros.core.errors import ConfigError, clip
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT, parse_resolution
from seg_ros.core.names import CAMERA_NAME, INPUT_TRANSPORTS, NODE_NAME
from seg_ros.core.settings import is_setting, setting, zero_or_at_least
from seg_ros.crf import CRFConfig
from seg_ros.models.modelfile import DEFAULT_MODEL
from seg_ros.runtime import AUTO_ORDER, BACKEND_CHOICES, PRECISION_CHOICES, RuntimeOptions


def _resolution(value: str) -> str:
    if value.strip() == "":
        return ""
    h, w = parse_resolution(value)
    return f"{h}x{w}"


MIN_RATE_HZ = 0.01
"""The lowest non-zero max_rate_hz: one frame per 100 s."""
_max_rate = zero_or_at_least("max_rate_hz", MIN_RATE_HZ, "unlimited", " (one frame per 100 s)")


def _model(value: str) -> str:
    if not value.strip():
        raise ConfigError("model must name a shipped model or a model file, not an empty string.")
    return value.strip()


MAX_CAMERAS = 16


def _camera_names(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(value) > MAX_CAMERAS:
        raise ConfigError(f"cameras lists {len(value)} names; one node serves at most {MAX_CAMERAS}.")
    for name in value:
        if not CAMERA_NAME.fullmatch(name) or name in GROUPS or name in SPECS:
            raise ConfigError(f"camera name {_shown(name)} is not valid: use a letter followed by letters, digits "
                              "or underscores, other than a parameter or parameter group name.")
    if len(set(value)) != len(value):
        raise ConfigError(f"cameras lists a name twice: {', '.join(value)}.")
    return value


def group(settings: type, *, reload: bool = False, switch: str | None = None) -> Any:
    """A :class:`NodeSettings` field holding a settings dataclass whose fields become ``<field name>.<name>``.

    ``reload``: every setting of the group rebuilds the pipeline. ``switch``: the description of a leading
    ``<field name>.enabled`` bool (default false) that turns the group's stage on.
    """
    return field(default_factory=settings, metadata={"group": settings, "reload": reload, "switch": switch})


@dataclass(frozen=True)
class PublishSettings:
    """Which outputs the node publishes (``publish.*``)."""

    labels: bool = setting(True, "Publish ~/labels (mono8 class ids).")
    color: bool = setting(True, "Publish ~/color (rgb8 label colours) while subscribed.")
    overlay: bool = setting(True, "Publish ~/overlay (rgb8 blend) while subscribed.")
    confidence: bool = setting(True, "Publish ~/confidence while subscribed.")
    camera_info: bool = setting(True, "Republish camera_info as ~/camera_info, scaled to the output size.")


@dataclass(frozen=True)
class QoSSettings:
    """The input subscription's QoS (``qos.*``)."""

    reliability: str = setting("best_effort", "Input QoS reliability; auto matches the publisher.",
                               choices=("best_effort", "reliable", "auto"))
    depth: int = setting(1, "Input QoS history depth.", range=(1, 100))


@dataclass(frozen=True)
class NodeSettings:
    """Every setting of the node, in the order they are documented: the Segmenter's, the node's own, and the
    groups ``runtime``, ``publish``, ``qos`` and ``crf`` (the CRF with its ``crf.enabled`` switch)."""

    model: str = setting(DEFAULT_MODEL, "Shipped model name, a .safetensors model file, or an .onnx file with "
                         "sidecar.", reload=True, check=_model)
    backend: str = setting("auto", f"Inference backend; auto = {', else '.join(AUTO_ORDER)}.",
                           choices=BACKEND_CHOICES, reload=True)
    device: str = setting("auto", "auto, cpu or cuda:N.", reload=True)
    precision: str = setting("auto", "Network precision; auto = the fastest that keeps fp32's labels (see "
                             "docs/backends.md); fp16: CUDA; bf16: openvino on CPUs with AMX or AVX-512 BF16; "
                             "int8: openvino or onnxruntime on the CPU, tensorrt, with runtime.calibration.",
                             choices=PRECISION_CHOICES, reload=True)
    resolution: str = setting("", "Inference size HxW, e.g. 360x640; empty = the model's training size.",
                              reload=True, check=_resolution)
    keep_aspect: bool = setting(True, "Fit frames inside the resolution keeping their aspect ratio.", reload=True)
    runtime: RuntimeOptions = group(RuntimeOptions, reload=True)
    overlay_alpha: float = setting(0.5, "Weight of the label colours in ~/overlay.", range=(0.0, 1.0))
    confidence_encoding: str = setting("mono8", "~/confidence as mono8 (0..255) or 32FC1 (0..1).",
                                       choices=("mono8", "32FC1"))
    publish: PublishSettings = group(PublishSettings)
    cameras: tuple[str, ...] = setting((), "Camera names served by this one node: each gets <camera>/image (or "
                                       "image/compressed) and <camera>/camera_info in, ~/<camera>/labels etc. out, "
                                       "and may override the per-camera parameters as <camera>.<name>; empty = "
                                       "one camera on image, ~/labels, ... (docs/node.md).",
                                       check=_camera_names, read_only=True)
    input_transport: str = setting("raw", "Subscribe to image (raw) or image/compressed (compressed).",
                                   choices=INPUT_TRANSPORTS, read_only=True)
    qos: QoSSettings = group(QoSSettings)
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "Largest input frame (height x width, as the message or its "
                              "JPEG/PNG header declares it) decoded; larger ones are dropped as bad frames before "
                              "any allocation.", range=(1, MAX_PIXELS_LIMIT))
    max_rate_hz: float = setting(0.0, "Process at most this many frames per second; 0 = unlimited, else at least "
                                 f"{MIN_RATE_HZ}.", range=(0.0, 1000.0), check=_max_rate)
    crf: CRFConfig = group(CRFConfig, switch="Refine the network output with a dense CRF (see docs/crf.md).")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type is the type of ``default`` (bool, int, float, str, or tuple: a list of strings)."""

    name: str
    default: bool | int | float | str | tuple[str, ...]
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


def param_specs(settings: type, prefix: str = "", reload: bool = False) -> Iterator[ParamSpec]:
    """The parameters of a settings dataclass's fields in field order, groups expanded, names ``prefix + name``."""
    for f in fields(settings):
        if "group" in f.metadata:
            sub_prefix = f"{prefix}{f.name}."
            if f.metadata["switch"] is not None:
                yield ParamSpec(f"{sub_prefix}enabled", False, f.metadata["switch"])
            yield from param_specs(f.metadata["group"], sub_prefix, reload or f.metadata["reload"])
        elif is_setting(f):
            yield _spec(f, f"{prefix}{f.name}", reload)


def _spec(f: Field, name: str, reload: bool) -> ParamSpec:
    m = f.metadata
    return ParamSpec(name, f.default, m["description"], choices=m["choices"], range=m["range"],
                     reload=reload or m["reload"], check=m["check"], read_only=m["read_only"])


PARAMS: tuple[ParamSpec, ...] = tuple(param_specs(NodeSettings))
"""Every parameter of the node, in the order they are documented."""

SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
GROUPS = frozenset(p.name.split(".", 1)[0] for p in PARAMS if "." in p.name)
"""The parameter groups (``runtime``, ``qos``, ...): names no camera may take."""
CAMERA_PARAMS: tuple[str, ...] = ("input_transport", "qos.reliability", "qos.depth",
                                  *(p.name for p in PARAMS if p.name.startswith("publish.")))
"""Parameters a camera of ``cameras`` may set for itself as ``<camera>.<name>``; unset, it follows ``<name>``."""


def spec_for(name: str) -> ParamSpec | None:
    """The spec of a parameter name: a name of :data:`SPECS`, or ``<camera>.<name>`` of a :data:`CAMERA_PARAMS`
    name (the camera's own value); None if neither."""
    spec = SPECS.get(name)
    if spec is not None:
        return spec
    camera, _, base = name.partition(".")
    if base in CAMERA_PARAMS and CAMERA_NAME.fullmatch(camera) and camera not in GROUPS and camera not in SPECS:
        return SPECS[base]
    return None


def camera_values(values: Mapping[str, Any], camera: str) -> dict[str, Any]:
    """The :data:`CAMERA_PARAMS` values that apply to ``camera`` ("" = the node's single camera): its own where
    set, else the node's."""
    return {name: values.get(f"{camera}.{name}", values[name]) if camera else values[name]
            for name in CAMERA_PARAMS}


def defaults() -> dict[str, Any]:
    """Every parameter's default, by name."""
    return {p.name: p.default for p in PARAMS}


_TYPE_NAMES = {bool: "a bool", int: "an int", float: "a float", str: "a str", tuple: "a list of strings"}


def validate(name: str, value: Any, *, label: str | None = None) -> Any:
    """Check one value against its spec; returns the value to store (normalised) or raises ConfigError.

    ``label`` names the setting in messages (default ``parameter NAME``; the CLI passes its option, ``--threads``).
    """
    spec = spec_for(name)
    if spec is None:
        raise ConfigError(f"unknown parameter {_shown(name)}; known: {', '.join(SPECS)} (and <camera>.<name> for "
                          f"{', '.join(CAMERA_PARAMS)}).")
    label = label or f"parameter {name}"
    t = spec.type
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if t is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = tuple(value)
    if t is tuple and type(value) is tuple and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{label} must be a list of strings, not a list holding "
                          f"{', '.join(sorted({type(v).__name__ for v in value if not isinstance(v, str)}))}.")
    if type(value) is not t:
        shown = f"{type(value).__name__} {_shown(value)}" if _is_scalar(value) else _shown(value)
        raise ConfigError(f"{label} must be {_TYPE_NAMES[t]}, not {shown}.")
    if t is float and not math.isfinite(value):
        raise ConfigError(f"{label} must be finite, not {value!r}.")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{label} must be one of {', '.join(spec.choices)}, not {_shown(value)}.")
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        raise ConfigError(f"{label} must lie in [{_number(spec.range[0])}, {_number(spec.range[1])}], "
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
    check_camera_scoped(out)
    return out


def check_camera_scoped(values: Mapping[str, Any]) -> None:
    """Raise ConfigError when a ``<camera>.<name>`` value names a camera that ``values["cameras"]`` does not list."""
    strays = sorted(k for k in values if k not in SPECS and k.split(".", 1)[0] not in values["cameras"])
    if strays:
        raise ConfigError(f"parameter {strays[0]} names camera {strays[0].split('.', 1)[0]}, which is not in "
                          f"cameras ({', '.join(values['cameras']) or 'empty'}).")


def load_params_file(path: str | os.PathLike, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Read a ROS 2 parameter file (``<node or /**>: ros__parameters: {...}``) into flat validated values.

    Nested mappings flatten to dotted names (``crf: {enabled: true}`` → ``crf.enabled``). Sections for
    ``/**`` and for ``node_name`` (with or without namespace) are merged, the node's own last.
    """
    from seg_ros.core.errors import InputError
    from seg_ros.core.paths import read_text_file

    p = Path(path)
    try:
        text = read_text_file(p, "parameter file")
    except InputError as e:
        raise ConfigError(str(e)) from None
    try:
        doc = yaml.safe_load(text)
    except ValueError:  # PyYAML's int() of a number longer than Python converts (4300 digits)
        raise ConfigError(f"parameter file {p} holds a number too long to be a parameter value.") from None
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
            camera, _, rest = name.partition(".")
            is_camera = (CAMERA_NAME.fullmatch(camera) is not None and camera not in GROUPS and camera not in SPECS
                         and (not rest or any(p.startswith(f"{rest}.") for p in CAMERA_PARAMS)))
            if not is_camera and not any(known.startswith(f"{name}.") for known in SPECS):
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


def runtime_options(values: dict[str, Any]) -> RuntimeOptions:
    """The :class:`seg_ros.runtime.RuntimeOptions` of (validated) parameter values."""
    return RuntimeOptions(**group_values(values, RuntimeOptions, "runtime."))


def crf_config(values: dict[str, Any]) -> CRFConfig | None:
    """The :class:`~seg_ros.crf.CRFConfig` of (validated) parameter values, or None with ``crf.enabled`` off."""
    if not values["crf.enabled"]:
        return None
    return CRFConfig(**group_values(values, CRFConfig, "crf."))


def group_values(values: dict[str, Any], settings: type, prefix: str) -> dict[str, Any]:
    """The keyword arguments of settings dataclass ``settings`` from the parameter values named ``prefix + field``."""
    return {f.name: values[f"{prefix}{f.name}"] for f in fields(settings)}


def reload_params() -> frozenset[str]:
    """Names of the parameters whose change rebuilds the pipeline."""
    return frozenset(p.name for p in PARAMS if p.reload)


def markdown_table(params: Sequence[ParamSpec] = PARAMS) -> str:
    """The parameter table of docs/node.md, generated from ``params`` (``python -m seg_ros.config``)."""
    lines = ["| parameter | type | default | values | at runtime | description |", "|---|---|---|---|---|---|"]
    for p in params:
        default = f"`{p.default!r}`" if isinstance(p.default, str) else f"`{str(p.default).lower()}`" \
            if isinstance(p.default, bool) else f"`{list(p.default)}`" if isinstance(p.default, tuple) \
            else f"`{p.default}`"
        if p.choices:
            values = " / ".join(f"`{c}`" for c in p.choices)
        elif p.range is not None:
            values = f"{_number(p.range[0])} … {_number(p.range[1])}"
        else:
            values = ""
        runtime = "read-only" if p.read_only else "rebuilds the pipeline" if p.reload else "next frame"
        kind = "str[]" if p.type is tuple else p.type.__name__
        lines.append(f"| `{p.name}` | {kind} | {default} | {values} | {runtime} | {p.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
