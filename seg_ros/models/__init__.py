"""Segmentation networks (``nn.Module`` only, no I/O) and their registry.

Importing the package imports every architecture module, and each registers its builders
(:func:`~seg_ros.models.registry.register`), so ``build`` and ``available`` see all of them.
"""

from seg_ros.models import deeplab, liteseg  # noqa: F401  (imported to register their architectures)
from seg_ros.models.registry import ModelSpec, available, build, get_spec, register

__all__ = ["ModelSpec", "available", "build", "get_spec", "register"]
