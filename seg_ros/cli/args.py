"""Argument types and option groups shared by the ``seg-ros`` subcommands.

Only light imports at module level: the parser is built before torch or OpenCV load.
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seg_ros.cli.exits import EXIT_USER_ERROR
from seg_ros.core.errors import ConfigError, SegRosError

if TYPE_CHECKING:
    from seg_ros.runtime import RuntimeOptions

PIPELINE = ("model", "resolution", "keep_aspect", "device", "precision", "backend")
"""The Segmenter's own parameters of the schema, each one option (``--model``, ..., ``--no-keep-aspect``)."""

AUTO_DEVICE_HELP = "auto, cpu or cuda:N (default: auto = cuda:0 when CUDA is available, else cpu)"
"""The help of every single-device ``--device`` option."""


class OptionError(ConfigError):
    """A value that the schema refused while the arguments were parsed (``--set``), from the (sub)command ``prog``."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prog: error: message``), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message.rstrip('.')}; see {self.prog} --help.\n")

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's; a ConfigError of an option's type (the schema's check) becomes an :class:`OptionError`
        naming this (sub)command, so that ``main`` reports it as the command's own error."""
        try:
            return super().parse_known_args(args, namespace)
        except OptionError:
            raise
        except ConfigError as e:
            raise OptionError(self.prog, str(e)) from None


def resolution(text: str) -> tuple[int, int]:
    """An argparse type: ``HxW`` → (height, width) in pixels, within the inference size limits."""
    from seg_ros.core.limits import parse_resolution

    try:
        return parse_resolution(text)
    except SegRosError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def number(kind: type, low: float | None = None, high: float | None = None, *,
           low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` (int or float) in [low, high], or (low, high] when ``low_open``."""
    fmt = "{:,}" if kind is int else "{:g}"
    bounds = [f"{'more than' if low_open else 'at least'} {fmt.format(low)}"] if low is not None else []
    bounds += [f"at most {fmt.format(high)}"] if high is not None else []
    wanted = f"{'an integer' if kind is int else 'a finite number'}{' ' + ' and '.join(bounds) if bounds else ''}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}.") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {wanted}.")
        return value

    return parse


def outputs(text: str) -> tuple[str, ...]:
    """An argparse type: a comma list of Segmenter outputs (labels, color, overlay, confidence)."""
    from seg_ros.pipeline import OUTPUTS

    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [n for n in names if n not in OUTPUTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"outputs must be a comma list of {', '.join(sorted(OUTPUTS))}.")
    return names


def model_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value) with VALUE read as a bool (true/false), an int, a float or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"model argument {text!r} is not of the form KEY=VALUE, e.g. output_stride=8.")
    v = value.strip()
    parsed: object = v
    if v.lower() in ("true", "false"):
        parsed = v.lower() == "true"
    else:
        for kind in (int, float):
            try:
                parsed = kind(v)
                break
            except ValueError:
                pass
    return key.strip(), parsed


def floats3(text: str) -> tuple[float, float, float]:
    """An argparse type: three comma-separated numbers (a per-channel mean or std)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated numbers, e.g. 0.485,0.456,0.406.")
    return values  # type: ignore[return-value]


def default_model() -> str:
    """The shipped model that every ``--model`` defaults to."""
    from seg_ros.models.modelfile import DEFAULT_MODEL

    return DEFAULT_MODEL


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    """The options of :data:`PIPELINE` (--model, --resolution, --no-keep-aspect, --device, --precision,
    --backend) and the accelerated-backend group, all generated from the schema."""
    from seg_ros.cli.options import add_options

    add_options(p, PIPELINE, helps={"device": AUTO_DEVICE_HELP})
    add_accel_args(p)


def add_max_pixels(p: argparse.ArgumentParser, from_params: bool = False) -> None:
    """--max-pixels N: the schema's ``max_pixels`` (its default, or the parameter file's when ``from_params``)."""
    from seg_ros.config import SPECS

    spec = SPECS["max_pixels"]
    low, high = spec.range  # type: ignore[misc]
    default = "the parameter file's max_pixels, else " if from_params else ""
    p.add_argument("--max-pixels", type=number(int, low, high), metavar="N",
                   default=None if from_params else spec.default,
                   help=f"pixel budget: refuse frames larger than N pixels (height x width) before decoding them "
                        f"(default: {default}{spec.default:,} = DCI 4K)")


def add_accel_args(p: argparse.ArgumentParser) -> None:
    """The ``accelerated backends`` group: the schema's ``runtime.*`` parameters, read by :func:`runtime_options`."""
    from seg_ros.cli.options import add_options

    add_options(p, "runtime", title="accelerated backends")


def add_set(p: argparse.ArgumentParser, help_text: str) -> None:
    """--set NAME=VALUE, repeatable: any schema parameter by its full name, checked as it is parsed."""
    from seg_ros.cli.options import parse_set

    p.add_argument("--set", action="append", type=parse_set, metavar="NAME=VALUE", help=help_text)


def check_runtime_paths(values: dict[str, Any]) -> None:
    """Check the engine cache folder (writable) and the int8 calibration input (a file or folder) of ``values``."""
    from seg_ros.core.paths import check_output_dir, require_file_or_dir

    if values["runtime.cache_dir"]:
        check_output_dir(values["runtime.cache_dir"], "--cache-dir")
    if values["runtime.calibration"]:
        require_file_or_dir(values["runtime.calibration"], "--calibration")


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The RuntimeOptions of the accelerated-backend options; the cache folder and calibration input are checked."""
    from seg_ros import config
    from seg_ros.cli.options import values_from_args

    values = values_from_args(args, "runtime")
    check_runtime_paths(values)
    return config.runtime_options(values)


def with_crf_method(values: dict[str, Any], method: str | None) -> dict[str, Any]:
    """``values`` with the CRF on and ``crf.method`` = ``method`` (of ``--crf METHOD``); unchanged for None."""
    return values if method is None else {**values, "crf.enabled": True, "crf.method": method}


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (for provenance), also when ``main`` is called with an argument list."""
    return shlex.join(["seg-ros", *args.argv])


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    """A progress callback printing ``… message`` lines on stderr, or None when ``quiet``."""
    import sys

    return None if quiet else (lambda s: print(f"… {s}", file=sys.stderr, flush=True))
