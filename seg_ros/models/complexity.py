"""Parameter and multiply-accumulate counts of registered architectures.

MACs are counted with PyTorch's own ``torch.utils.flop_counter.FlopCounterMode``
(convolutions and matrix products; FLOPs / 2) on the ``meta`` device, so no
weights are allocated and nothing is computed. That still takes about a second
per architecture, so results are cached in memory and in a small JSON file in
the cache folder (:func:`~seg_ros.core.cache_entry.default_cache_dir`). The
file is a sealed record (:func:`~seg_ros.core.cache_entry.seal`): its source
is a fingerprint of the torch version and of the network code
(:func:`fingerprint_sources`: every ``models/*.py`` except the model-file
format, ImageNet weight loading and checkpoint import, which move weights but
never change a network's shape or cost), and the SHA-256 of its entries is
checked on every read, so an edited, truncated or stale file is logged and
measured anew. A cache that cannot be read or written costs one warning and
the measurement, never the command: it only saves time.

``python -m seg_ros.models.complexity`` prints the architecture table of
docs/models.md from these measurements.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seg_ros.models.registry import available, build, get_spec

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((360, 640), (512, 1024))
"""Input sizes (height, width) at which ``seg-ros models --details`` reports MACs."""
CACHE_FILE = "complexity.json"
NOT_FINGERPRINTED: frozenset[str] = frozenset({"checkpoint_import.py", "modelfile.py", "pretrained.py"})
"""Files of seg_ros/models/ left out of the cache's fingerprint: they read and write weights only."""

log = logging.getLogger("seg_ros.models")


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one architecture: ``params`` (count), ``macs`` ({(H, W): multiply-accumulates})."""

    architecture: str
    num_classes: int
    params: int
    macs: dict[tuple[int, int], int]

    def gmacs(self, size: tuple[int, int]) -> float:
        """Giga-MACs for one (H, W) image."""
        return self.macs[tuple(size)] / 1e9


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases; BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass of a (1, 3, H, W) input (``model`` in eval mode).

    The model may live on the ``meta`` device; the input is created on the device of its first parameter.
    """
    device = next(model.parameters()).device
    x = torch.empty(1, 3, *size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def measure(name: str, num_classes: int = 19, sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
            **kwargs: Any) -> Complexity:
    """Build ``name`` on the meta device and count its parameters and MACs (no caching)."""
    with torch.device("meta"):
        model = build(name, num_classes, **kwargs).eval()
    return Complexity(name, num_classes, count_parameters(model), {tuple(s): count_macs(model, s) for s in sizes})


def fingerprint_sources() -> list[Path]:
    """The source files whose bytes key the cache, sorted: the modules that define, register or measure networks.

    That is every ``seg_ros/models/*.py`` but :data:`NOT_FINGERPRINTED`, so a new architecture module is covered
    without being listed, and a change to the model-file format keeps the measured entries.
    """
    return [p for p in sorted(Path(__file__).resolve().parent.glob("*.py")) if p.name not in NOT_FINGERPRINTED]


@functools.cache
def _fingerprint() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    for p in fingerprint_sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_path() -> Path:
    """Where measured complexities are kept between runs."""
    from seg_ros.core.cache_entry import default_cache_dir

    return default_cache_dir() / CACHE_FILE


def _source() -> dict[str, str]:
    return {"code_and_torch": _fingerprint()}


def _read_cache(path: Path) -> dict[str, Any]:
    """The verified entries of the cache file, or {} (absent; unusable ones are logged)."""
    from seg_ros.core.cache_entry import unseal

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        _warn_once(f"complexity cache {path} cannot be read ({e.strerror or e}); measuring without it.")
        return {}
    try:
        record: Any = json.loads(text)
    except ValueError as e:
        record, reason = None, f"it is not JSON ({e})"
    else:
        content = unseal(record, _source())
        if isinstance(content, dict) and isinstance(content.get("entries"), dict):
            return content["entries"]
        reason = content if isinstance(content, str) else "it holds no entries"
    log.warning("complexity cache %s is unusable: %s; measuring again.", path, reason)
    return {}


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    from seg_ros.core.cache_entry import ensure_cache_dir, seal
    from seg_ros.core.errors import SegRosError
    from seg_ros.core.staging import atomic_path

    try:
        ensure_cache_dir(path.parent)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(seal("complexity", _source(), entries=entries), sort_keys=True))
    except (OSError, SegRosError) as e:
        _warn_once(f"complexity cache {path} cannot be written ({str(e).rstrip('.')}); measured without it.")


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


@functools.cache
def _cached(name: str, num_classes: int, sizes: tuple[tuple[int, int], ...], kwargs_json: str) -> Complexity:
    key = json.dumps([name, num_classes, sizes, kwargs_json])
    path = cache_path()
    entries = _read_cache(path)
    hit = entries.get(key)
    if isinstance(hit, dict) and isinstance(hit.get("params"), int) and isinstance(hit.get("macs"), list):
        macs = {tuple(s): int(m) for s, m in zip(sizes, hit["macs"])}
        if len(macs) == len(sizes):
            return Complexity(name, num_classes, hit["params"], macs)
    c = measure(name, num_classes, sizes, **json.loads(kwargs_json))
    entries = _read_cache(path)  # another process may have added entries meanwhile
    entries[key] = {"params": c.params, "macs": [c.macs[s] for s in sizes]}
    _write_cache(path, entries)
    return c


def complexity(name: str, num_classes: int = 19, sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
               **kwargs: Any) -> Complexity:
    """Parameters and MACs of registered architecture ``name`` built with ``num_classes`` and ``kwargs`` (cached)."""
    return _cached(name, num_classes, tuple((int(h), int(w)) for h, w in sizes), json.dumps(kwargs, sort_keys=True))


def clear_memory_cache() -> None:
    """Forget the complexities memoised in this process (the cache file stays)."""
    _cached.cache_clear()


def markdown_table(num_classes: int = 19, sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES) -> str:
    """The architecture table of docs/models.md: every registered architecture (sorted) at its default options.

    Columns: name, backbone, output stride, parameters (millions) at ``num_classes``, GMACs at each (H, W) of
    ``sizes``. Every number is measured (:func:`complexity`, cached).
    """
    lines = ["| name | backbone | output stride | params | " + " | ".join(f"GMACs {h}×{w}" for h, w in sizes) + " |",
             "|---|---|---|---|" + "---|" * len(sizes)]
    for name in available():
        spec = get_spec(name)
        c = complexity(name, num_classes, sizes)
        macs = " | ".join(f"{c.gmacs(s):.2f}" for s in sizes)
        lines.append(f"| `{name}` | {spec.backbone} | {spec.output_stride} | {c.params / 1e6:.2f} M | {macs} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
