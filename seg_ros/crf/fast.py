"""The fast dense CRF: the same energy and mean-field updates as the exact one, in PyTorch (CUDA or CPU).

Both kernels are filtered with :class:`~seg_ros.crf.lattice.Permutohedral`,
whose geometry matches the lattice inside pydensecrf2, and normalised the same
way (``D^-1/2 K D^-1/2`` with ``D = K·1``), so at full resolution
(``crf.downsample: 1``) the two compute the same messages up to float rounding
and hashing order. Where its speed comes from:

* a coarser grid (``crf.downsample``, auto by default on frames whose longer
  side is at least 640 pixels): the mean field runs on cells of s×s pixels
  (log-probabilities and colours averaged, kernel widths kept in frame pixels,
  so the energy is the same one sampled s² times more sparsely) and the last
  update is taken at every pixel, with the network's full-resolution unary and
  the grid's message upsampled bilinearly, or, where the grid's labels change,
  with joint bilateral upsampling guided by the pixel's colour, so labels
  still snap to image edges. This is an approximation; ``seg-ros bench crf``
  measures its agreement with the exact CRF;
* whole-tensor splat / blur / slice on the GPU (or on every CPU core);
* the smoothness kernel's lattice depends only on the grid size and is built
  once per size;
* classes that no pixel gives a probability above :data:`PRUNE_PROB` are left
  out of the mean field (they can never win a pixel; they get no message),
  which on driving scenes typically halves C;
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


def _grid(h: int, w: int, device: torch.device, step: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1) x and y frame-pixel coordinates of an (h, w) grid whose cells are ``step`` pixels apart, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32) * step,
                            torch.arange(w, device=device, dtype=torch.float32) * step, indexing="ij")
    return xs.reshape(-1, 1), ys.reshape(-1, 1)


def _normalised(feats: torch.Tensor) -> tuple[Permutohedral, torch.Tensor]:
    lat = Permutohedral(feats)
    ones = torch.ones((feats.shape[0], 1), device=feats.device)
    return lat, (lat.filter(ones) + 1e-20).rsqrt_()


@functools.lru_cache(maxsize=4)
def _smoothness(h: int, w: int, step: int, gamma: float, device: str
                ) -> tuple[Permutohedral, torch.Tensor]:
    """The smoothness kernel's lattice depends on the grid only: built once per size (video)."""
    xs, ys = _grid(h, w, torch.device(device), step)
    return _normalised(torch.cat([xs / gamma, ys / gamma], dim=1))


def _kernels(image: torch.Tensor, cfg: CRFConfig, frame_size: tuple[int, int], step: int
             ) -> list[tuple[float, Permutohedral, torch.Tensor]]:
    """(weight, lattice, (N, 1) normalisation D^-1/2) per kernel with a non-zero weight.

    ``image`` is the (h, w, 3) grid the mean field runs on: the frame itself (``step`` 1) or its cells of
    step × step pixels; kernel widths are those of the (H, W) ``frame_size``, in frame pixels.
    """
    alpha, beta, gamma = cfg.widths(*frame_size)
    h, w = image.shape[:2]
    kernels = []
    if cfg.w2 > 0:
        kernels.append((float(cfg.w2), *_smoothness(h, w, step, float(gamma), str(image.device))))
    if cfg.w1 > 0:
        xs, ys = _grid(h, w, image.device, step)
        rgb = image.reshape(-1, 3).float() / beta
        kernels.append((float(cfg.w1), *_normalised(torch.cat([xs / alpha, ys / alpha, rgb], dim=1))))
    return kernels


def _mean_field(log_probs: torch.Tensor, image: torch.Tensor, cfg: CRFConfig, active: torch.Tensor | None,
                frame_size: tuple[int, int], step: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean field on one grid: (C, h, w) logits and (h, w, 3) colours → (Q, pairwise), both (C, h, w).

    The grid is the (H, W) frame (``step`` 1) or its cells of step × step pixels (see :func:`_kernels`).
    ``pairwise`` is the last update's message without the unary (Q = softmax(log_probs + pairwise) where
    updated, with log_probs normalised); it is 0 for pixels outside ``active`` (h, w) and for pruned classes.
    """
    c, h, w = log_probs.shape
    n = h * w
    lp = torch.log_softmax(log_probs.float(), dim=0).reshape(c, n).t()
    keep = lp.amax(dim=0) > math.log(PRUNE_PROB)
    pruned = not bool(keep.all())
    if pruned:
        lp = lp[:, keep]
    lp = lp.contiguous()
    q = torch.softmax(lp, dim=1)
    pairwise = torch.zeros_like(lp)
    kernels = _kernels(image, cfg, frame_size, step)
    if active is None or bool(active.all()):
        scaled = [norm * weight for weight, _, norm in kernels]
        for _ in range(cfg.iterations if kernels else 0):  # no kernel (w1 = w2 = 0): the network's Q stands
            terms = [lat.filter(q * norm).mul_(out_scale) for (_, lat, norm), out_scale in zip(kernels, scaled)]
            pairwise = terms[0] if len(terms) == 1 else terms[0].add_(terms[1])
            q = torch.softmax(lp + pairwise, dim=1)
    elif bool(active.any()):
        mask = active.reshape(-1)
        rows, fixed = mask.nonzero().squeeze(1), (~mask).nonzero().squeeze(1)
        parts = [(lat.part(rows), norm[rows], lat.splat((q * norm)[fixed], lat.part(fixed)))
                 for _, lat, norm in kernels]
        lp_a, q_a = lp[rows], q[rows]
        for _ in range(cfg.iterations):
            pair_a = torch.zeros_like(lp_a)
            for (weight, lat, _), (part, norm_a, base) in zip(kernels, parts):
                filtered = lat.slice(lat.blur(base + lat.splat(q_a * norm_a, part)), part)
                pair_a.addcmul_(filtered, norm_a, value=weight)
            q_a = torch.softmax(lp_a + pair_a, dim=1)
        q[rows], pairwise[rows] = q_a, pair_a
    if pruned:
        q, pairwise = (torch.zeros((n, c), device=lp.device).index_copy_(1, keep.nonzero().squeeze(1), t)
                       for t in (q, pairwise))
    return q.t().reshape(c, h, w), pairwise.t().reshape(c, h, w)


def fast_crf(log_probs: torch.Tensor, image: torch.Tensor, cfg: CRFConfig,
             active: torch.Tensor | None = None) -> torch.Tensor:
    """Mean-field inference of the dense CRF on ``log_probs``' device.

    With ``cfg.grid_step(H, W) = s > 1`` the mean field runs on a grid s times coarser than the frame
    (log-probabilities and colours area-averaged into s×s cells, kernel widths unchanged in frame pixels)
    and the last update is taken at full resolution: Q = softmax(log_probs + the grid's pairwise message
    upsampled by :func:`_upsample_message`), so the network's full-resolution detail is kept where the CRF
    has nothing to say and labels follow the image's edges where it has.

    Args:
        log_probs: (C, H, W) float network output at the image's resolution: logits or their log-softmax
            (the same thing up to a per-pixel constant, which the mean field ignores).
        image: (H, W, 3) uint8 RGB on the same device.
        cfg: kernel weights and widths (spatial widths scaled to the image by ``cfg.widths``) and iterations.
        active: optional (H, W) bool; only these pixels are updated, the others keep ``softmax(log_probs)``.

    Returns:
        (C, H, W) float32 marginals Q.
    """
    c, h, w = log_probs.shape
    step = cfg.grid_step(h, w)
    if step == 1:
        q, _ = _mean_field(log_probs, image, cfg, active, (h, w))
    else:
        cells = {"kernel_size": step, "stride": step, "ceil_mode": True}  # partial cells at the edges average less
        lp_grid = F.avg_pool2d(log_probs[None].float(), **cells)[0]
        # (H, W, 3) seen as a channels-last (1, 3, H, W): pooled without a transposing copy
        rgb_grid = F.avg_pool2d(image.float().permute(2, 0, 1)[None], **cells)[0].permute(1, 2, 0).contiguous()
        active_grid = None
        if active is not None:  # every cell that holds an active pixel, and its neighbours (the upsampling reads them)
            held = F.max_pool2d(active[None, None].float(), **cells)
            active_grid = F.max_pool2d(held, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        q_grid, pairwise = _mean_field(lp_grid, rgb_grid, cfg, active_grid, (h, w), step)
        pairwise = _upsample_message(pairwise.contiguous(), q_grid.argmax(dim=0), rgb_grid, image, step,
                                     cfg.theta_beta)
        q = torch.softmax(log_probs.float() + pairwise, dim=0)  # the sum is laid out like log_probs (contiguous)
    if active is not None:  # outside the region: the network's probabilities, exactly
        q = torch.where(active[None], q, torch.softmax(log_probs.float(), dim=0))
    return q.contiguous()


def _upsample_message(pairwise: torch.Tensor, grid_labels: torch.Tensor, grid_rgb: torch.Tensor,
                      image: torch.Tensor, step: int, theta_beta: float) -> torch.Tensor:
    """The grid's (C, h, w) pairwise message at every pixel of the (H, W) frame: (C, H, W), not contiguous.

    Bilinear where the grid's labels (h, w) agree over a cell's 3×3 neighbourhood; at label boundaries,
    joint bilateral upsampling (Kopf et al. 2007): each pixel takes its 2×2 nearest cells with bilinear
    weights times exp(−|I − I_cell|² / 2θβ²), the appearance kernel's colour term, so that the cells on
    the pixel's own side of an image edge count. (Where no cell's colour is near, the weights stay bilinear.)
    """
    c, h, w = pairwise.shape
    H, W = image.shape[:2]
    out = F.interpolate(pairwise[None], scale_factor=step, mode="bilinear", align_corners=False)[0]
    lab = grid_labels[None, None].float()
    boundary = F.max_pool2d(lab, 3, 1, 1) != -F.max_pool2d(-lab, 3, 1, 1)
    pixels = boundary[0, 0].repeat_interleave(step, 0).repeat_interleave(step, 1)[:H, :W].reshape(-1)
    pix = pixels.nonzero().squeeze(1)
    if pix.numel() == 0:
        return out[:, :H, :W]
    ys, xs = pix // W, pix % W

    def taps(p: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = ((p.float() + 0.5) / step - 0.5).clamp_(0, n - 1)
        lo = pos.floor().long()
        return lo, (lo + 1).clamp_(max=n - 1), pos - lo

    y0, y1, fy = taps(ys, h)
    x0, x1, fx = taps(xs, w)
    colour = image.reshape(-1, 3)[pix].float()
    flat_v, flat_c = pairwise.reshape(c, -1), grid_rgb.reshape(-1, 3)
    acc = torch.zeros((c, pix.numel()), device=pairwise.device)
    total = torch.zeros(pix.numel(), device=pairwise.device)
    for yc, wy in ((y0, 1 - fy), (y1, fy)):
        for xc, wx in ((x0, 1 - fx), (x1, fx)):
            cell = yc * w + xc
            d2 = (colour - flat_c[cell]).square_().sum(dim=1)
            wgt = d2.mul_(-0.5 / theta_beta ** 2).exp_().add_(1e-4).mul_(wy * wx)
            acc.addcmul_(flat_v[:, cell], wgt)
            total += wgt
    out.reshape(c, -1).index_copy_(1, ys * out.shape[2] + xs, acc.div_(total))
    return out[:, :H, :W]


def uncertain_region(confidence: torch.Tensor, threshold: float, band: int) -> torch.Tensor:
    """(H, W) bool: pixels with ``confidence < threshold``, dilated by ``band`` pixels (Chebyshev distance)."""
    region = (confidence < threshold).float()[None, None]
    if band > 0:
        region = F.max_pool2d(region, kernel_size=2 * band + 1, stride=1, padding=band)
    return region[0, 0] > 0


__all__ = ["PRUNE_PROB", "fast_crf", "uncertain_region"]
