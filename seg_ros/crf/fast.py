"""The fast dense CRF: the same energy and mean-field updates as the exact one, in PyTorch (CUDA or CPU).

Both kernels are filtered with :class:`~seg_ros.crf.lattice.Permutohedral`,
whose geometry matches the lattice inside pydensecrf2, and normalised the same
way (``D^-1/2 K D^-1/2`` with ``D = K·1``), so the two compute the same
messages up to float rounding and hashing order. Where its speed comes from:

* whole-tensor splat / blur / slice on the GPU (or on every CPU core);
* the smoothness kernel's lattice depends only on the frame size and is built
  once per size;
* classes that no pixel gives a probability above :data:`PRUNE_PROB` are left
  out of the mean field (they can never win a pixel; their marginal is
  reported as 0), which on driving scenes typically halves C;
* optionally (``confidence_threshold > 0``) only uncertain pixels and a band
  around them are updated; the others keep the network's probabilities, so
  their contribution to every message is splatted once instead of every
  iteration, and only the updated pixels are sliced.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from seg_ros.crf.config import CRFConfig
from seg_ros.crf.lattice import Permutohedral

PRUNE_PROB = 1e-5
"""Classes whose probability stays below this at every pixel are left out of the mean field."""


def _grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1) x and y pixel coordinates of an (h, w) frame, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return xs.reshape(-1, 1), ys.reshape(-1, 1)


def _normalised(feats: torch.Tensor) -> tuple[Permutohedral, torch.Tensor]:
    lat = Permutohedral(feats)
    ones = torch.ones((feats.shape[0], 1), device=feats.device)
    return lat, (lat.filter(ones) + 1e-20).rsqrt_()


@functools.lru_cache(maxsize=4)
def _smoothness(h: int, w: int, gamma: float, device: str) -> tuple[Permutohedral, torch.Tensor]:
    """The smoothness kernel's lattice depends on the frame size only: built once per size (video)."""
    xs, ys = _grid(h, w, torch.device(device))
    return _normalised(torch.cat([xs / gamma, ys / gamma], dim=1))


def _kernels(h: int, w: int, image: torch.Tensor, cfg: CRFConfig) -> list[tuple[float, Permutohedral, torch.Tensor]]:
    """(weight, lattice, (N, 1) normalisation D^-1/2) per kernel with a non-zero weight."""
    alpha, beta, gamma = cfg.widths(h, w)
    kernels = []
    if cfg.w2 > 0:
        kernels.append((float(cfg.w2), *_smoothness(h, w, float(gamma), str(image.device))))
    if cfg.w1 > 0:
        xs, ys = _grid(h, w, image.device)
        rgb = image.reshape(-1, 3).float() / beta
        kernels.append((float(cfg.w1), *_normalised(torch.cat([xs / alpha, ys / alpha, rgb], dim=1))))
    return kernels


def fast_crf(log_probs: torch.Tensor, image: torch.Tensor, cfg: CRFConfig,
             active: torch.Tensor | None = None) -> torch.Tensor:
    """Mean-field inference of the dense CRF on ``log_probs``' device.

    Args:
        log_probs: (C, H, W) float log-softmax of the network output at the image's resolution.
        image: (H, W, 3) uint8 RGB on the same device.
        cfg: kernel weights and widths (spatial widths scaled to the image by ``cfg.widths``) and iterations.
        active: optional (H, W) bool; only these pixels are updated, the others keep ``softmax(log_probs)``.

    Returns:
        (C, H, W) float32 marginals Q.
    """
    c, h, w = log_probs.shape
    n = h * w
    lp = log_probs.reshape(c, n).t().float()
    keep = lp.amax(dim=0) > math.log(PRUNE_PROB)
    pruned = not bool(keep.all())
    if pruned:
        lp = lp[:, keep]
    lp = lp.contiguous()
    q = torch.softmax(lp, dim=1)
    kernels = _kernels(h, w, image, cfg)
    if active is None or bool(active.all()):
        for _ in range(cfg.iterations):
            msg = lp.clone()
            for weight, lat, norm in kernels:
                msg.addcmul_(lat.filter(q * norm), norm, value=weight)
            q = torch.softmax(msg, dim=1)
    elif bool(active.any()):
        mask = active.reshape(-1)
        rows, fixed = mask.nonzero().squeeze(1), (~mask).nonzero().squeeze(1)
        parts = [(lat.part(rows), norm[rows], lat.splat((q * norm)[fixed], lat.part(fixed)))
                 for _, lat, norm in kernels]
        lp_a, q_a = lp[rows], q[rows]
        for _ in range(cfg.iterations):
            msg = lp_a.clone()
            for (weight, lat, _), (part, norm_a, base) in zip(kernels, parts):
                filtered = lat.slice(lat.blur(base + lat.splat(q_a * norm_a, part)), part)
                msg.addcmul_(filtered, norm_a, value=weight)
            q_a = torch.softmax(msg, dim=1)
        q[rows] = q_a
    if pruned:
        full = torch.zeros((n, c), device=q.device)
        full[:, keep] = q
        q = full
    out = q.t().reshape(c, h, w)
    if active is not None:  # outside the region: the network's probabilities, exactly
        out = torch.where(active[None], out, log_probs.float().exp())
    return out.contiguous()


def uncertain_region(confidence: torch.Tensor, threshold: float, band: int) -> torch.Tensor:
    """(H, W) bool: pixels with ``confidence < threshold``, dilated by ``band`` pixels (Chebyshev distance)."""
    region = (confidence < threshold).float()[None, None]
    if band > 0:
        region = F.max_pool2d(region, kernel_size=2 * band + 1, stride=1, padding=band)
    return region[0, 0] > 0


__all__ = ["PRUNE_PROB", "fast_crf", "uncertain_region"]
