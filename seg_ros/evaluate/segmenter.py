"""A Segmenter configured from the node's parameter file, as ``segmentation_node`` would configure it."""

from __future__ import annotations

import os
from typing import Any

from seg_ros.config import defaults, load_params_file, segmenter_kwargs, validate
from seg_ros.pipeline import Segmenter


def segmenter_from_params(params_file: str | os.PathLike | None = None,
                          overrides: dict[str, Any] | None = None) -> tuple[Segmenter, dict[str, Any]]:
    """A Segmenter configured exactly as the node would be by ``params_file`` (a ROS 2 parameter YAML).

    ``overrides`` (parameter name → value, e.g. from command-line flags) replace file values and are validated
    against the node's parameter schema. Returns the Segmenter and the full validated parameter values.
    """
    values = load_params_file(params_file) if params_file is not None else defaults()
    for name, value in (overrides or {}).items():
        values[name] = validate(name, value)
    return Segmenter(**segmenter_kwargs(values)), values
