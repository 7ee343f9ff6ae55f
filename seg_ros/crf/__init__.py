"""Dense CRF refinement of the network's output (Krähenbühl & Koltun 2011, as in DeepLab v1/v2).

:class:`DenseCRF` is the pipeline stage: logits (N, C, H, W) at the frame's
resolution and the frames themselves in, CRF marginals (N, C, H, W) out.
Two implementations of the same energy (``config.py`` describes it):

* ``exact`` — pydensecrf2 (Krähenbühl's C++ permutohedral lattice), CPU only;
* ``fast`` — :func:`~seg_ros.crf.fast.fast_crf`, PyTorch on the pipeline's device; the same messages at
  full resolution (``crf.downsample: 1``), by default on large frames a coarser grid with a full-resolution
  last update (an approximation whose agreement with ``exact`` ``seg-ros bench crf`` measures).
"""

from __future__ import annotations

import numpy as np
import torch

from seg_ros.core.errors import InputError
from seg_ros.crf.config import AUTO_GRID_SIDE, LIMITS, METHODS, CRFConfig, grid_name
from seg_ros.crf.exact import CRFUnavailableError, exact_available, exact_crf
from seg_ros.crf.fast import fast_crf, uncertain_region


def resolve_method(cfg: CRFConfig, device: torch.device) -> str:
    """``exact`` or ``fast``: what ``cfg.method`` means on ``device`` with the packages installed.

    Raises:
        CRFUnavailableError: ``method=exact``, pydensecrf2 missing and ``exact_fallback`` off.
    """
    if cfg.method == "fast":
        return "fast"
    if cfg.method == "auto":
        return "exact" if device.type == "cpu" and exact_available() else "fast"
    if exact_available():
        return "exact"
    if cfg.exact_fallback:
        return "fast"
    raise CRFUnavailableError("crf.method=exact needs pydensecrf2, which is not installed; install it with "
                              "`pip install pydensecrf2` (it compiles, about a minute), choose crf.method=fast, "
                              "or set crf.exact_fallback=true to use the fast CRF instead.")


class DenseCRF:
    """The CRF stage of the Segmenter.

    Args:
        config: the settings.
        device: where the pipeline runs; the fast CRF runs there, the exact one on the CPU.

    Raises:
        CRFUnavailableError: see :func:`resolve_method`.
    """

    def __init__(self, config: CRFConfig, device: torch.device | str = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.method = resolve_method(config, self.device)
        """``exact`` or ``fast``, as resolved for the device."""

    def describe(self) -> str:
        c = self.config
        gate = f", confidence < {c.confidence_threshold:g} + {c.band} px band" if c.confidence_threshold > 0 else ""
        grid = ""
        if self.method == "fast":
            grid = ", grid auto" if c.downsample == 0 else f", {grid_name(c.downsample)}"
        return (f"{self.method} dense CRF ({c.iterations} iterations, w1 {c.w1:g} θα {c.theta_alpha:g} "
                f"θβ {c.theta_beta:g}, w2 {c.w2:g} θγ {c.theta_gamma:g} at {c.reference_size or 'any'} px"
                f"{grid}{gate})")

    def __call__(self, logits: torch.Tensor, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Refine a batch.

        Args:
            logits: (N, C, H, W) network output at the frames' resolution.
            frames: (N, H, W, 3) uint8 RGB (numpy, or a torch tensor on any device).

        Returns:
            (N, C, H, W) float32 marginals on ``logits``' device: the CRF's per-pixel class probabilities.

        Raises:
            InputError: shapes that do not match, or fewer than one class.
        """
        if logits.ndim != 4 or frames.ndim != 4 or tuple(frames.shape[:3]) != (logits.shape[0], *logits.shape[2:]) \
                or frames.shape[3] != 3:
            raise InputError(f"the CRF needs logits (N, C, H, W) and frames (N, H, W, 3) of the same N, H and W, "
                             f"not {tuple(logits.shape)} and {tuple(frames.shape)}.")
        if logits.shape[1] < 1:
            raise InputError("the CRF needs at least one class.")
        logits = logits.float()
        if logits.shape[1] == 1:  # one class: every pixel is that class with probability 1
            return torch.ones_like(logits)
        cfg = self.config
        outs = []
        for i in range(logits.shape[0]):
            active = probs = None
            if cfg.confidence_threshold > 0:
                probs = torch.softmax(logits[i], dim=0)
                active = uncertain_region(probs.amax(dim=0), cfg.confidence_threshold, cfg.band)
                if not bool(active.any()):  # every pixel is certain: nothing to refine
                    outs.append(probs)
                    continue
            if self.method == "exact":
                frame = frames[i].cpu().numpy() if isinstance(frames, torch.Tensor) else frames[i]
                log_probs = torch.log_softmax(logits[i], dim=0)
                q = torch.from_numpy(exact_crf(log_probs.cpu().numpy(), frame, cfg)).to(logits.device)
                if active is not None:  # outside the uncertain region the network's probabilities stand
                    q = torch.where(active[None], q, probs)
                outs.append(q)
            else:
                frame_t = frames[i] if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(
                    frames[i]))
                outs.append(fast_crf(logits[i], frame_t.to(logits.device), cfg, active))
        return outs[0][None] if len(outs) == 1 else torch.stack(outs)


__all__ = ["AUTO_GRID_SIDE", "LIMITS", "METHODS", "CRFConfig", "CRFUnavailableError", "DenseCRF", "exact_available",
           "exact_crf", "fast_crf", "grid_name", "resolve_method", "uncertain_region"]
