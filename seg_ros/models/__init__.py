"""Segmentation networks (``nn.Module`` only, no I/O) and their registry."""

from seg_ros.models.registry import ModelSpec, available, build, get_spec, register

__all__ = ["ModelSpec", "available", "build", "get_spec", "register"]
