"""The machine a measurement or a training run was made on, in one line (benchmark reports, provenance)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in Linux's ``/proc/cpuinfo``; None where there is none or it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except (OSError, UnicodeDecodeError):
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name and core count, e.g. ``"Intel(R) Xeon(R) ... (2 cores)"``."""
    return f"{_cpuinfo('model name') or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty where it cannot be read."""
    return frozenset((_cpuinfo("flags") or "").split())


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 in hardware (AVX-512 BF16 or AMX), so that bf16 arithmetic is faster than
    fp32 rather than emulated."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def describe_machine() -> str:
    """CPU, GPU (when CUDA is available), OS and torch's thread count: the conditions of a benchmark."""
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu_name()}{gpu}, {platform.system()} {platform.release()}, {torch.get_num_threads()} torch threads"
