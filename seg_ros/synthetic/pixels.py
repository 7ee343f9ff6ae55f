"""Pixel helpers shared by the ground pass and the finishing effects."""

from __future__ import annotations

import numpy as np


def hash_noise(ix: np.ndarray, iz: np.ndarray) -> np.ndarray:
    """Deterministic per-cell noise in [-1, 1) from integer cell coordinates (uint32 arithmetic)."""
    h = ix.astype(np.uint32) * np.uint32(374761393) + iz.astype(np.uint32) * np.uint32(668265263)
    h ^= h >> np.uint32(13)
    h *= np.uint32(1274126177)
    h ^= h >> np.uint32(16)
    return (h & np.uint32(1023)).astype(np.float32) * np.float32(2.0 / 1024) - np.float32(1.0)


def to_u8(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to 0..255 and converted to uint8 (fractions are truncated)."""
    return np.clip(x, 0, 255).astype(np.uint8)


def upsample2(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear 2× upsampling of samples taken at the centres of 2×2 blocks, cropped to (h, w).

    Plain numpy arithmetic (unlike cv2.resize on floats, bit-identical on every CPU).
    """
    q = np.float32(0.25)
    p = np.float32(0.75)
    e = np.concatenate([a[:1], a, a[-1:]], 0)
    rows = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
    rows[0::2] = p * e[1:-1] + q * e[:-2]
    rows[1::2] = p * e[1:-1] + q * e[2:]
    e = np.concatenate([rows[:, :1], rows, rows[:, -1:]], 1)
    out = np.empty((rows.shape[0], 2 * a.shape[1]), a.dtype)
    out[:, 0::2] = p * e[:, 1:-1] + q * e[:, :-2]
    out[:, 1::2] = p * e[:, 1:-1] + q * e[:, 2:]
    return out[:h, :w]
