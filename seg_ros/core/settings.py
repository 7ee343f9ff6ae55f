"""Settings dataclasses that describe themselves.

A field made with :func:`setting` carries its description, its choices or inclusive range, an extra check and
whether changing it rebuilds what was built from it. :mod:`seg_ros.config` reads these facts to generate the
node's parameters, the command-line options and the parameter table; :func:`check_fields` applies them to an
instance, so a dataclass and its parameters are checked by the same facts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, field, fields
from typing import Any

from seg_ros.core.errors import ConfigError

Scalar = bool | int | float | str


def setting(default: Scalar, description: str, *, choices: tuple[str, ...] | None = None,
            range: tuple[float, float] | None = None, check: Callable[[Any], Any] | None = None,
            reload: bool = False, read_only: bool = False) -> Any:
    """A dataclass field with its facts in ``metadata``.

    Args:
        default: the value, whose type is the setting's type (bool, int, float or str).
        description: one sentence ending in a period, units included.
        choices: the allowed strings.
        range: inclusive (low, high) for numbers; int bounds mean an integral setting.
        check: extra validation of a value of the right type; returns the value to store or raises ConfigError.
        reload: changing it means rebuilding what was built from it (the node's pipeline).
        read_only: fixed once the node runs.
    """
    return field(default=default, metadata={"description": description, "choices": choices, "range": range,
                                            "check": check, "reload": reload, "read_only": read_only})


def zero_or_at_least(name: str, minimum: float, zero_means: str, at_least: str = "") -> Callable[[Any], Any]:
    """A ``check`` for a setting that is 0 (``zero_means``, e.g. "unlimited") or at least ``minimum``.

    ``at_least``: what the minimum is, appended to it in the message (e.g. " pixels").
    """

    def check(value: Any) -> Any:
        if 0 < value < minimum:
            raise ConfigError(f"{name} must be 0 ({zero_means}) or at least {minimum}{at_least}, not {value!r}.")
        return value

    return check


def is_setting(f: Field) -> bool:
    """Whether ``f`` was made by :func:`setting`."""
    return "description" in f.metadata


def check_fields(settings: Any, prefix: str) -> None:
    """Check each :func:`setting` field of a dataclass instance against its choices, range and check.

    Numbers are checked by value, as Python callers pass them: an integral setting takes ``5.0``, a float setting
    takes ints. Messages name the field as ``{prefix}{name}`` (e.g. ``crf.iterations``).

    Raises:
        ConfigError: the first field that fails, in field order.
    """
    for f in fields(settings):
        if not is_setting(f):
            continue
        meta, value, name = f.metadata, getattr(settings, f.name), f"{prefix}{f.name}"
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(meta['choices'])}, not {value!r}.")
        if meta["range"] is not None:
            lo, hi = meta["range"]
            integral = isinstance(lo, int)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (integral and isinstance(value, float) and not value.is_integer()):
                raise ConfigError(f"{name} must be {'an integer' if integral else 'a number'}, not {value!r}.")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError(f"{name} must lie in [{lo:g}, {hi:g}], not {value!r}.")
        if meta["check"] is not None:
            meta["check"](value)
