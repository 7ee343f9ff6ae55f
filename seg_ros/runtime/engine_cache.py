"""The TensorRT engine cache: serialized engines under a fingerprint of everything they depend on.

Layout, one folder per engine under ``<cache>/tensorrt``::

    <cache>/tensorrt/<model stem>-<precision>-<N>x<C>x<H>x<W>-<key>/
        engine.plan         the serialized engine
        fingerprint.json    the fingerprint fields, its key, the plan's size and SHA-256 (written last)
    <cache>/tensorrt/calibration/<onnx sha[:16]>-<calibration sha[:16]>-<shape>.cache

``key`` is the SHA-256 of the fingerprint (ONNX SHA-256, TensorRT version, GPU name and compute capability,
precision, input shape, calibration data hash). Both files are written through a temporary file and a
rename, the fingerprint last, so an entry either verifies or is absent. Loading checks the fingerprint and
the plan's size and SHA-256; a stale or corrupt entry is logged, removed and rebuilt, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from seg_ros.outputs import atomic_path

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
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()[:24]

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

    def calibration_cache(self, fp: EngineFingerprint) -> Path:
        shape = "x".join(str(v) for v in fp.input_shape)
        return self.root / "calibration" / f"{fp.onnx_sha256[:16]}-{fp.calibration_sha256[:16]}-{shape}.cache"

    def load(self, fp: EngineFingerprint) -> bytes | None:
        """The verified plan for ``fp``, or None (absent; or stale / corrupt, which is logged and removed)."""
        d = self.entry(fp)
        if not d.exists():
            return None
        problem = self._verify(d, fp)
        if isinstance(problem, bytes):
            return problem
        self.invalidate(fp, problem)
        return None

    def _verify(self, d: Path, fp: EngineFingerprint) -> bytes | str:
        try:
            rec = json.loads((d / FINGERPRINT).read_text())
        except FileNotFoundError:
            return "its fingerprint.json is missing (an interrupted build)"
        except (OSError, ValueError) as e:
            return f"its fingerprint.json is unreadable ({e})"
        if not isinstance(rec, dict) or rec.get("fingerprint") != fp.fields() or rec.get("key") != fp.key():
            return "its fingerprint does not match (stale)"
        try:
            plan = (d / PLAN).read_bytes()
        except OSError as e:
            return f"its engine.plan cannot be read ({e.strerror or e})"
        if len(plan) != rec.get("plan_bytes") or hashlib.sha256(plan).hexdigest() != rec.get("plan_sha256"):
            return "its engine.plan does not match the recorded size and SHA-256 (corrupt)"
        return plan

    def store(self, fp: EngineFingerprint, plan: bytes, build_seconds: float | None = None) -> Path:
        """Write ``plan`` for ``fp`` atomically (plan first, then the fingerprint that validates it)."""
        if not plan:
            raise ValueError("refusing to cache an empty engine")
        d = self.entry(fp)
        d.mkdir(parents=True, exist_ok=True)
        (d / FINGERPRINT).unlink(missing_ok=True)
        with atomic_path(d / PLAN) as tmp:
            tmp.write_bytes(plan)
        rec = {"fingerprint": fp.fields(), "key": fp.key(), "plan_bytes": len(plan),
               "plan_sha256": hashlib.sha256(plan).hexdigest(), "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "build_seconds": build_seconds}
        with atomic_path(d / FINGERPRINT) as tmp:
            tmp.write_text(json.dumps(rec, indent=2, sort_keys=True))
        return d

    def invalidate(self, fp: EngineFingerprint, reason: str) -> None:
        d = self.entry(fp)
        self._log(f"TensorRT engine cache entry {d} is unusable: {reason}; rebuilding it.")
        shutil.rmtree(d, ignore_errors=True)

    def get_or_build(self, fp: EngineFingerprint, build: Callable[[], bytes]) -> tuple[bytes, bool]:
        """The cached plan, or ``build()``'s (then cached). Returns (plan, built_now)."""
        plan = self.load(fp)
        if plan is not None:
            return plan, False
        t0 = time.perf_counter()
        plan = build()
        self.store(fp, plan, time.perf_counter() - t0)
        return plan, True
