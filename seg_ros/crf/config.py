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

from dataclasses import dataclass, fields

from seg_ros.core.settings import check_fields, setting, zero_or_at_least

METHODS = ("exact", "fast", "auto")

AUTO_GRID_SIDE = 320
"""With ``downsample = 0`` the fast CRF's grid keeps its longer side at least this many cells."""

MIN_REFERENCE_SIZE = 32
"""The smallest non-zero ``reference_size``: below it the spatial widths would scale up absurdly."""


check_reference_size = zero_or_at_least("crf.reference_size", MIN_REFERENCE_SIZE, "no scaling", " pixels")
"""``reference_size`` is 0 (no scaling) or at least :data:`MIN_REFERENCE_SIZE`; returns it or raises."""


@dataclass(frozen=True)
class CRFConfig:
    """Dense CRF settings (the node's ``crf.*`` parameters); see the module docstring for the model.

    Each field's meaning, unit and range is stated once, in its metadata (see :func:`seg_ros.core.settings.setting`),
    from which the node's parameter table in docs/node.md is generated. ``method=auto`` means fast on CUDA and, on
    the CPU, exact when pydensecrf2 is installed, else fast. The exact CRF always runs at full resolution.
    """

    method: str = setting("fast", "exact: pydensecrf2 on the CPU; fast: PyTorch on the pipeline's device; auto: "
                          "fast on CUDA, on the CPU exact when pydensecrf2 is installed.", choices=METHODS)
    iterations: int = setting(10, "Mean-field iterations.", range=(1, 100))
    w1: float = setting(4.0, "Weight of the appearance (bilateral) kernel; 0 = off.", range=(0.0, 100.0))
    theta_alpha: float = setting(121.0, "Spatial width θα of the appearance kernel, pixels at crf.reference_size.",
                                 range=(1.0, 10000.0))
    theta_beta: float = setting(5.0, "Colour width θβ of the appearance kernel, RGB units (0..255).",
                                range=(1.0, 255.0))
    w2: float = setting(3.0, "Weight of the smoothness (Gaussian) kernel; 0 = off.", range=(0.0, 100.0))
    theta_gamma: float = setting(3.0, "Spatial width θγ of the smoothness kernel, pixels at crf.reference_size.",
                                 range=(0.5, 1000.0))
    reference_size: int = setting(500, "Longer frame side (pixels) at which θα and θγ hold; they scale with "
                                  "max(H, W) / reference_size; 0 = use them as given.", range=(0, 8192),
                                  check=check_reference_size)
    confidence_threshold: float = setting(0.0, "Refine only pixels whose network confidence is below this, plus "
                                          "crf.band; 0 = every pixel.", range=(0.0, 1.0))
    band: int = setting(8, "Pixels added around the uncertain region (with crf.confidence_threshold).",
                        range=(0, 256))
    downsample: int = setting(0, "Fast CRF: run the mean field on a grid this many times coarser than the frame "
                              "(its last update at full resolution); 1 = full resolution, 0 = auto (grid's longer "
                              f"side >= {AUTO_GRID_SIDE}).", range=(0, 16))
    exact_fallback: bool = setting(False, "With crf.method=exact and pydensecrf2 missing: use the fast CRF "
                                   "(true) or refuse (false).")

    def __post_init__(self) -> None:
        check_fields(self, "crf.")

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


LIMITS: dict[str, tuple[float, float]] = {f.name: f.metadata["range"] for f in fields(CRFConfig)
                                           if f.metadata["range"] is not None}
"""Inclusive ranges of the numeric settings, from the fields' metadata."""

__all__ = ["AUTO_GRID_SIDE", "LIMITS", "METHODS", "CRFConfig", "check_reference_size", "grid_name"]
