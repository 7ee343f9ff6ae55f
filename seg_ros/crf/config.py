"""Settings of the dense CRF and their checks.

The model (Krähenbühl & Koltun, NIPS 2011, as used by DeepLab v1/v2): for a
frame of N pixels and C classes, the unary is ``−log softmax`` of the
network's logits at the frame's resolution and the pairwise term is a Potts
model weighted by two Gaussian kernels,

    k(i, j) = w1 · exp(−|p_i − p_j|² / 2θα² − |I_i − I_j|² / 2θβ²)    appearance (bilateral)
            + w2 · exp(−|p_i − p_j|² / 2θγ²)                         smoothness

with p in pixels and I the RGB values (0..255). Mean-field inference runs
``iterations`` updates. The defaults are DeepLab-LargeFOV's (w1 = 4, θα = 121,
θβ = 5, w2 = 3, θγ = 3, 10 iterations), cross-validated on PASCAL VOC images of
at most 500×500 pixels: the spatial widths θα and θγ are given at a reference
frame whose longer side is ``reference_size`` pixels (500) and are scaled by
``max(H, W) / reference_size`` for the frame at hand (``reference_size = 0``
uses them as given). θβ is a colour distance and is never scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from seg_ros.core.errors import ConfigError

METHODS = ("exact", "fast", "auto")

AUTO_GRID_SIDE = 320
"""With ``downsample = 0`` the fast CRF's grid keeps its longer side at least this many cells."""

LIMITS: dict[str, tuple[float, float]] = {
    "iterations": (1, 100),
    "w1": (0.0, 100.0),
    "theta_alpha": (1.0, 10000.0),
    "theta_beta": (1.0, 255.0),
    "w2": (0.0, 100.0),
    "theta_gamma": (0.5, 1000.0),
    "reference_size": (0, 8192),
    "confidence_threshold": (0.0, 1.0),
    "band": (0, 256),
    "downsample": (0, 16),
}
"""Inclusive ranges of the numeric settings (the node's schema uses the same)."""


@dataclass(frozen=True)
class CRFConfig:
    """Dense CRF settings; see the module docstring for the model.

    Attributes:
        method: ``exact`` (pydensecrf2, CPU), ``fast`` (PyTorch on the pipeline's device) or ``auto``
            (fast on CUDA; on the CPU exact when pydensecrf2 is installed, else fast).
        iterations: mean-field iterations.
        w1, theta_alpha, theta_beta: appearance kernel weight, spatial width (pixels at the reference size)
            and colour width (RGB units 0..255).
        w2, theta_gamma: smoothness kernel weight and spatial width (pixels at the reference size).
        reference_size: longer image side (pixels) at which theta_alpha and theta_gamma hold; 0 = no scaling.
        confidence_threshold: 0 refines every pixel; above 0 only pixels whose network confidence (max softmax)
            is below it, plus a band of ``band`` pixels around them, are refined; the others keep the
            network's probabilities.
        band: dilation (pixels, Chebyshev distance) of the uncertain region with ``confidence_threshold``.
        downsample: the fast CRF's mean field runs on a grid this many times coarser than the frame (its last
            update at full resolution); 1 = full resolution, 0 = auto (the coarsest step that keeps the grid's
            longer side at least :data:`AUTO_GRID_SIDE` cells). The exact CRF always runs at full resolution.
        exact_fallback: with ``method=exact`` and pydensecrf2 not installed, run the fast CRF instead of
            refusing.
    """

    method: str = "fast"
    iterations: int = 10
    w1: float = 4.0
    theta_alpha: float = 121.0
    theta_beta: float = 5.0
    w2: float = 3.0
    theta_gamma: float = 3.0
    reference_size: int = 500
    confidence_threshold: float = 0.0
    band: int = 8
    downsample: int = 0
    exact_fallback: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"crf.method must be one of {', '.join(METHODS)}, not {self.method!r}.")
        for f in fields(self):
            if f.name not in LIMITS:
                continue
            value = getattr(self, f.name)
            integral = isinstance(LIMITS[f.name][0], int)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integral and value != int(value)):
                kind = "an integer" if integral else "a number"
                raise ConfigError(f"crf.{f.name} must be {kind}, not {value!r}.")
            lo, hi = LIMITS[f.name]
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError(f"crf.{f.name} must lie in [{lo:g}, {hi:g}], not {value!r}.")
        if 0 < self.reference_size < 32:
            raise ConfigError(f"crf.reference_size must be 0 (no scaling) or at least 32 pixels, "
                              f"not {self.reference_size}.")

    def scale(self, height: int, width: int) -> float:
        """Factor applied to theta_alpha and theta_gamma for a (height, width) frame."""
        return 1.0 if self.reference_size == 0 else max(height, width) / self.reference_size

    def grid_step(self, height: int, width: int) -> int:
        """Downsampling step of the fast CRF's grid for a (height, width) frame (1 = full resolution)."""
        if self.downsample > 0:
            return self.downsample
        return max(1, max(height, width) // AUTO_GRID_SIDE)

    def widths(self, height: int, width: int) -> tuple[float, float, float]:
        """(θα, θβ, θγ) for a (height, width) frame: spatial widths in pixels of that frame, θβ in RGB units."""
        s = self.scale(height, width)
        return self.theta_alpha * s, self.theta_beta, self.theta_gamma * s


def grid_name(step: int) -> str:
    """``full resolution`` for step 1, else ``1/step grid`` (tables, logs, variant names)."""
    return "full resolution" if step == 1 else f"1/{step} grid"


__all__ = ["AUTO_GRID_SIDE", "LIMITS", "METHODS", "CRFConfig", "grid_name"]
