"""The exact dense CRF: Krähenbühl's permutohedral-lattice implementation through ``pydensecrf2`` (CPU).

pydensecrf2 is an optional dependency (``pip install seg_ros[crf]``; it builds
from source, about a minute, and needs a C++ compiler). Kernels use its
defaults: diagonal features, symmetric normalisation ``D^-1/2 K D^-1/2`` and
Potts compatibility, the message of a pixel including the pixel itself.
"""

from __future__ import annotations

import numpy as np

from seg_ros.core.errors import ConfigError
from seg_ros.crf.config import CRFConfig


class CRFUnavailableError(ConfigError):
    """The exact CRF was asked for but pydensecrf2 is not installed."""


INSTALL_HINT = ("install it with `pip install pydensecrf2` (or `pip install seg_ros[crf]`; it compiles, about a "
                "minute), choose crf.method=fast, or set crf.exact_fallback=true to use the fast CRF instead")


def exact_available() -> bool:
    """Whether pydensecrf2 can be imported."""
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return False
    return True


def exact_crf(log_probs: np.ndarray, image: np.ndarray, cfg: CRFConfig) -> np.ndarray:
    """Mean-field inference of the dense CRF with pydensecrf2.

    Args:
        log_probs: (C, H, W) float log-softmax of the network output at the image's resolution.
        image: (H, W, 3) uint8 RGB.
        cfg: kernel weights and widths (spatial widths are scaled to the image by ``cfg.widths``) and iterations.

    Returns:
        (C, H, W) float32 marginals Q (each pixel's column sums to 1).
    """
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:
        raise CRFUnavailableError(f"crf.method=exact needs pydensecrf2, which is not installed; {INSTALL_HINT}.") \
            from e
    c, h, w = log_probs.shape
    alpha, beta, gamma = cfg.widths(h, w)
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(-log_probs.reshape(c, h * w), dtype=np.float32))
    if cfg.w2 > 0:
        crf.addPairwiseGaussian(sxy=gamma, compat=float(cfg.w2))
    if cfg.w1 > 0:
        crf.addPairwiseBilateral(sxy=alpha, srgb=beta, rgbim=np.ascontiguousarray(image, dtype=np.uint8),
                                 compat=float(cfg.w1))
    q = np.asarray(crf.inference(int(cfg.iterations)), dtype=np.float32)
    return q.reshape(c, h, w)


__all__ = ["CRFUnavailableError", "exact_available", "exact_crf"]
