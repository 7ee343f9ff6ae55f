"""JSON reports of the benchmarks: the machine header, dataclass → JSON, atomic writing."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from seg_ros.core.machine import describe_machine
from seg_ros.core.staging import atomic_path


class JsonReport(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@dataclass
class MachineHeader:
    """Where and when a benchmark ran: the first keys of every benchmark report."""

    machine: str
    date: str
    """YYYY-MM-DD."""
    torch: str

    @classmethod
    def here(cls) -> MachineHeader:
        import torch

        return cls(describe_machine(), time.strftime("%Y-%m-%d"), torch.__version__)

    def line(self) -> str:
        """``machine, torch VERSION, date``: the first printed line of a benchmark."""
        return f"{self.machine}, torch {self.torch}, {self.date}"


def json_fields(obj: Any, omit_if_none: tuple[str, ...] = ()) -> dict[str, Any]:
    """``asdict(obj)`` in field order, without the ``omit_if_none`` fields whose value is None."""
    out = asdict(obj)
    return {f.name: out[f.name] for f in fields(obj) if not (f.name in omit_if_none and out[f.name] is None)}


def write_report(report: dict[str, Any] | JsonReport, path: str | os.PathLike) -> Path:
    """Write ``report`` (a dict, or an object with ``to_json()``) as indented JSON, atomically; returns the path."""
    data = report if isinstance(report, dict) else report.to_json()
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return Path(path)


__all__ = ["JsonReport", "MachineHeader", "json_fields", "write_report"]
