"""Command-line options generated from the configuration schema (:mod:`seg_ros.config`).

A schema parameter ``group.some_name`` becomes the option ``--some-name`` with the parameter's description as
help, its choices, and its default; a bool that defaults to true becomes ``--no-some-name``, one that defaults to
false ``--some-name``. The parsed values go back through the schema's checks (:func:`values_from_args`), so an
option and the node parameter of the same name accept exactly the same values. ``--set NAME=VALUE`` sets any
parameter by its full name (:func:`parse_set`, :func:`apply_sets`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from seg_ros.config import PARAMS, SPECS, ParamSpec, defaults, validate
from seg_ros.core.errors import ConfigError, clip


def select(params: str | Iterable[str], schema: Sequence[ParamSpec] = PARAMS) -> tuple[ParamSpec, ...]:
    """The entries of ``schema`` named by ``params``: parameter names and group names (``runtime`` = every
    ``runtime.*``), in the order given, each group in schema order.

    Raises:
        ConfigError: a name that is neither a parameter nor a group.
    """
    out: list[ParamSpec] = []
    by_name = {p.name: p for p in schema}
    for name in [params] if isinstance(params, str) else params:
        if name in by_name:
            out.append(by_name[name])
            continue
        members = [p for p in schema if p.name.startswith(f"{name}.")]
        if not members:
            raise ConfigError(f"unknown parameter or group {name!r}.")
        out.extend(members)
    return tuple(out)


def option_dest(spec: ParamSpec) -> str:
    """The argparse attribute of a parameter's option: its last name part (``runtime.cache_dir`` → ``cache_dir``)."""
    return spec.name.rsplit(".", 1)[-1]


def option_flag(spec: ParamSpec, overrides: bool = False) -> str:
    """The option string: ``--cache-dir``; a bool defaulting to true ``--no-fallback`` (not with ``overrides``)."""
    flag = option_dest(spec).replace("_", "-")
    return f"--no-{flag}" if spec.type is bool and spec.default and not overrides else f"--{flag}"


def add_options(parser: argparse.ArgumentParser, params: str | Iterable[str], *, title: str | None = None,
                overrides: bool = False, schema: Sequence[ParamSpec] = PARAMS,
                helps: Mapping[str, str] | None = None) -> None:
    """Add one option per schema entry of ``params`` (see :func:`select`) to ``parser``.

    Args:
        parser: the (sub)command's parser.
        params: parameter and group names.
        title: put the options in a new argument group of this title.
        overrides: the options override values from elsewhere (a parameter file): every default is None
            (not given) and bools take ``--name`` / ``--no-name``.
        schema: the parameters to pick from (default: the node's, :data:`seg_ros.config.PARAMS`).
        helps: a command's own help of some parameters, by name, shown as written (default included) instead of
            the description and default.
    """
    target = parser.add_argument_group(title) if title is not None else parser
    for spec in select(params, schema):
        kind, shown_default = _option_kind(spec, overrides)
        help_text = (helps or {}).get(spec.name) or \
            f"{spec.description.replace('%', '%%')}{f' Default: {shown_default}.' if shown_default else ''}"
        target.add_argument(option_flag(spec, overrides), dest=option_dest(spec), help=help_text, **kind)


def _option_kind(spec: ParamSpec, overrides: bool) -> tuple[dict[str, Any], str]:
    """The argparse keywords of a parameter's option besides its help, and its default as the help shows it."""
    if overrides:
        kind: dict[str, Any] = {"action": argparse.BooleanOptionalAction} if spec.type is bool else \
            {"type": spec.type, "choices": spec.choices}
        return {**kind, "default": None}, "the parameter file's"
    if spec.type is bool:
        return {"action": "store_false" if spec.default else "store_true"}, \
            "on; this option turns it off" if spec.default else "off"
    return {"type": spec.type, "choices": spec.choices, "default": spec.default}, str(spec.default)


def values_from_args(args: argparse.Namespace, params: str | Iterable[str],
                     values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameter values with the options of ``params`` (as added by :func:`add_options`) applied.

    Args:
        args: the parsed arguments.
        params: the parameter and group names the options were added for.
        values: the values to start from (default: the schema's defaults); not modified.

    Returns:
        A new dict of every parameter; options left at None (not given, with ``overrides``) keep ``values``.

    Raises:
        ConfigError: a value the schema refuses, named by its option (e.g. ``--threads must lie in [0, 256]``).
    """
    out = dict(defaults() if values is None else values)
    for spec in select(params):
        value = getattr(args, option_dest(spec))
        if value is not None:
            out[spec.name] = validate(spec.name, value, label=option_flag(spec, overrides=True))
    return out


def parse_set(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of ``--set``: any parameter by its full name, the value read as YAML and checked by the
    schema (a str parameter takes the text as written when YAML reads something else, e.g. ``model=123``).

    Usable as an argparse ``type``. Raises:
        ConfigError: no ``=``, an unknown name, or a value the parameter refuses.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--set takes NAME=VALUE (e.g. crf.enabled=true), not {clip(repr(text))}.")
    try:
        value = yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):  # ValueError: an int longer than Python converts
        value = raw
    spec = SPECS.get(name)
    if spec is not None and spec.type is str and not isinstance(value, str):
        value = raw.strip()
    return name, validate(name, value, label=f"--set {name}")


def apply_sets(values: dict[str, Any], sets: Iterable[tuple[str, Any]] | None) -> dict[str, Any]:
    """``values`` (not modified) with each ``(name, value)`` of :func:`parse_set` applied in order, checked again."""
    out = dict(values)
    for name, value in sets or ():
        out[name] = validate(name, value, label=f"--set {name}")
    return out
