"""JSON reports of the benchmarks: the machine header, dataclass → JSON, atomic writing.

Every report a benchmark writes starts with a ``kind`` key (which benchmark wrote it: the key
:mod:`seg_ros.tools.benchdoc` picks the table layout by) and, when a command wrote it, ends with ``command``
(the command line as typed).
"""

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
    KIND: str
    """The report's ``kind`` key."""

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


def report_json(report: dict[str, Any] | JsonReport, command: str | None = None) -> dict[str, Any]:
    """The JSON of ``report``: ``kind`` first (from ``report.KIND`` unless the dict has one), ``command`` last.

    ``command`` is added only when given and the report does not carry one already.
    """
    data = report if isinstance(report, dict) else report.to_json()
    kind = data.get("kind", getattr(report, "KIND", None))
    out = {"kind": kind} if kind is not None else {}
    out.update(data)
    if command is not None and not out.get("command"):
        out.pop("command", None)
        out["command"] = command
    return out


def write_report(report: dict[str, Any] | JsonReport, path: str | os.PathLike, command: str | None = None) -> Path:
    """Write :func:`report_json` of ``report`` as indented JSON, atomically; returns the path."""
    data = report_json(report, command)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return Path(path)


__all__ = ["JsonReport", "MachineHeader", "json_fields", "report_json", "write_report"]
