"""Latency statistics and peak memory of a benchmark row."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

E2E_OUTPUTS = ("labels", "color", "overlay")
"""What the default e2e row asks for."""
E2E_MODES = (("e2e", E2E_OUTPUTS), ("e2e+conf", (*E2E_OUTPUTS, "confidence")))
"""The end-to-end row modes and their outputs: the ``e2e+conf`` row adds the confidence map, so its cost shows."""


def time_calls(fn: Callable[[], Any], frames: int, sync: Callable[[], None] | None = None,
               each: Callable[[Any], None] | None = None) -> list[float]:
    """Seconds each of ``frames`` calls of ``fn`` took (``sync`` waits for the device inside the timed span);
    ``each`` sees every result after its timing."""
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        samples.append(time.perf_counter() - t0)
        if each is not None:
            each(out)
    return samples


def time_interleaved(calls: list[Callable[[], Any]], frames: int,
                     sync: Callable[[], None] | None = None) -> list[list[float]]:
    """Seconds of ``frames`` calls of each of ``calls``, taken in turn frame by frame with the order rotating
    (A B C, B C A, C A B, ...), so that load on the machine while they run falls on all of them alike; one list
    of samples per call, in the order given."""
    samples: list[list[float]] = [[] for _ in calls]
    for i in range(frames):
        for k in range(len(calls)):
            j = (i + k) % len(calls)
            t0 = time.perf_counter()
            calls[j]()
            if sync is not None:
                sync()
            samples[j].append(time.perf_counter() - t0)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float, float, float]:
    """(fps, p50 ms, p90 ms, p99 ms) of per-frame times in seconds; fps is 1 / the median time, so that one
    slow frame cannot reorder a ranking the way it moves a mean."""
    a = np.asarray(samples)
    p50, p90, p99 = (float(np.percentile(a, q) * 1000) for q in (50, 90, 99))
    return 1000.0 / p50, p50, p90, p99


def reset_peaks(device: torch.device) -> None:
    """Start a new high-water mark of this process's resident set (Linux) and of torch's CUDA allocator."""
    try:  # Linux: "5" resets the VmHWM high-water mark of this process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peaks(device: torch.device) -> tuple[float, float | None]:
    """(host MB, GPU MB or None off CUDA): the high-water marks since :func:`reset_peaks`."""
    host = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                host = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if host is None:
        host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return host, gpu


def synchronizer(device: torch.device):
    """A no-argument function that waits for ``device``'s queued work (nothing to wait for on the CPU)."""
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


__all__ = ["peaks", "percentiles", "reset_peaks", "synchronizer", "time_calls", "time_interleaved"]
