"""The TensorRT engine cache: serialized engines under a fingerprint of everything they depend on.

Layout, one folder per engine under ``<cache>/tensorrt``::

    <cache>/tensorrt/<model stem>-<precision>-<N>x<C>x<H>x<W>-<key>/
        engine.plan         the serialized engine
        fingerprint.json    its manifest: the fingerprint fields (the source), the plan's size and SHA-256
    <cache>/tensorrt/calibration/<onnx sha[:16]>-<calibration sha[:16]>-<shape>.cache (+ .manifest.json)

``key`` is the SHA-256 of the fingerprint (ONNX SHA-256, TensorRT version, GPU name and compute capability,
precision, input shape, calibration data hash). Entries are :class:`~seg_ros.core.cache_entry.CacheEntry`
objects: written through a temporary file and a rename, the manifest last, and verified on load (source and
content hash); a stale or corrupt entry is logged, removed and rebuilt, never a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from seg_ros.core.cache_entry import CacheEntry, ensure_cache_dir, sha256_json

log = logging.getLogger("seg_ros.runtime")

PLAN, FINGERPRINT = "engine.plan", "fingerprint.json"


@dataclass(frozen=True)
class EngineFingerprint:
    """What a TensorRT engine depends on; engines are reused only when every field matches."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    """``major.minor``, e.g. ``9.0`` for an H100."""
    precision: str
    input_shape: tuple[int, int, int, int]
    """(N, 3, H, W) of the optimisation profile (min = opt = max)."""
    calibration_sha256: str = ""
    """int8 only: :func:`seg_ros.runtime.calibration.calibration_hash` of the calibration frames."""
    model_stem: str = "model"

    def fields(self) -> dict:
        d = asdict(self)
        d.pop("model_stem")
        d["input_shape"] = list(self.input_shape)
        return d

    def key(self) -> str:
        return sha256_json(self.fields())[:24]

    def dirname(self) -> str:
        shape = "x".join(str(v) for v in self.input_shape)
        return f"{self.model_stem}-{self.precision}-{shape}-{self.key()}"


class EngineCache:
    """Engines by fingerprint under ``root`` (normally ``<cache dir>/tensorrt``)."""

    def __init__(self, root: str | Path, log_fn: Callable[[str], None] | None = None):
        self.root = Path(root)
        self._log = log_fn or log.warning

    def entry(self, fp: EngineFingerprint) -> Path:
        return self.root / fp.dirname()

    def _entry(self, fp: EngineFingerprint) -> CacheEntry:
        d = self.entry(fp)
        return CacheEntry(d / PLAN, d / FINGERPRINT, fp.fields(), "TensorRT engine", self._log)

    def calibration_cache(self, fp: EngineFingerprint) -> CacheEntry:
        """The int8 calibration table for ``fp``'s ONNX model, calibration frames and input shape."""
        shape = "x".join(str(v) for v in fp.input_shape)
        content = self.root / "calibration" / f"{fp.onnx_sha256[:16]}-{fp.calibration_sha256[:16]}-{shape}.cache"
        source = {"onnx_sha256": fp.onnx_sha256, "calibration_sha256": fp.calibration_sha256,
                  "input_shape": list(fp.input_shape)}
        return CacheEntry.beside(content, source, "TensorRT calibration table", self._log)

    def load(self, fp: EngineFingerprint) -> bytes | None:
        """The verified plan for ``fp``, or None (absent; or stale / corrupt, which is logged and removed)."""
        return self._entry(fp).load_bytes()

    def store(self, fp: EngineFingerprint, plan: bytes, build_seconds: float | None = None) -> Path:
        """Write ``plan`` for ``fp`` atomically (plan first, then the manifest that validates it)."""
        if not plan:
            raise ValueError("refusing to cache an empty engine")
        self._entry(fp).store_bytes(plan, key=fp.key(), build_seconds=build_seconds)
        return self.entry(fp)

    def invalidate(self, fp: EngineFingerprint, reason: str) -> None:
        entry = self._entry(fp)
        entry.invalidate(reason)
        try:
            entry.content.parent.rmdir()
        except OSError:
            pass

    def get_or_build(self, fp: EngineFingerprint, build: Callable[[], bytes]) -> tuple[bytes, bool]:
        """The cached plan, or ``build()``'s (then cached). Returns (plan, built_now).

        The cache folder is checked before building, so an unusable cache is reported before minutes of work.
        """
        plan = self.load(fp)
        if plan is not None:
            return plan, False
        ensure_cache_dir(self.root)
        t0 = time.perf_counter()
        plan = build()
        self.store(fp, plan, round(time.perf_counter() - t0, 3))
        return plan, True
