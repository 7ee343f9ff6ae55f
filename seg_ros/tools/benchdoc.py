"""The measurement tables of docs/benchmarks.md, rendered from the JSON reports the benchmarks wrote.

A generated block sits between two markers that name its report, relative to the Markdown file, and, for a
report holding several measurements, the part wanted (:data:`seg_ros.tools.doctables.TABLES`)::

    <!-- benchdoc: bench/crf_bench.json speed -->
    2026-12-05, Intel(R) Xeon(R) ...; torch 2.13.0+cpu:
    ...the command, then the table...
    <!-- /benchdoc -->

``python -m seg_ros.tools.benchdoc [--check] [FILE.md]`` rewrites every marked block of FILE.md (default:
docs/benchmarks.md) from its report, or with ``--check`` only says whether they are up to date (exit 1 if not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from seg_ros.core.errors import InputError
from seg_ros.core.paths import read_text_file
from seg_ros.tools.benchrow import BenchReport
from seg_ros.tools.doctables import render_part, speed_table

SECTION = re.compile(r"(?P<open><!-- benchdoc: (?P<json>\S+)(?: (?P<part>\S+))? -->\n)(?P<body>.*?)"
                     r"(?P<close><!-- /benchdoc -->)", re.S)
DEFAULT_DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON report as a dict."""
    return json.loads(Path(path).read_text())


def load_report(path: str | os.PathLike) -> BenchReport:
    """Read a ``seg-ros bench speed`` JSON report; InputError (one sentence) if the file is not one."""
    try:
        data = json.loads(read_text_file(path, "report"))
    except ValueError as e:
        raise InputError(f"report {path} is not JSON ({e}).") from None
    if not isinstance(data, dict) or data.get("kind") != BenchReport.KIND:
        raise InputError(f"{path} is not a report of seg-ros bench speed (its kind is not {BenchReport.KIND}).")
    try:
        return BenchReport.from_json(data)
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"report {path} is incomplete or malformed ({type(e).__name__}: {e}).") from None


def doc_table(report: BenchReport) -> str:
    """The Markdown table of a speed report as docs/benchmarks.md shows it (CPU columns: no GPU memory, no CRF)."""
    return speed_table(report)


def marked_reports(text: str) -> list[tuple[str, str]]:
    """(report path as written in the marker, part) of every marked block of ``text``, in order."""
    return [(m["json"], m["part"] or "") for m in SECTION.finditer(text)]


def render(text: str, base: str | os.PathLike) -> str:
    """``text`` with each marked block regenerated from its report (paths relative to ``base``)."""
    def block(m: re.Match) -> str:
        body = render_part(read_json(Path(base) / m["json"]), m["part"] or "")
        return f"{m['open']}{body}\n{m['close']}"

    return SECTION.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_ros.tools.benchdoc", description=__doc__.splitlines()[0])
    p.add_argument("doc", nargs="?", default=str(DEFAULT_DOC), help="Markdown file (default: docs/benchmarks.md)")
    p.add_argument("--check", action="store_true", help="only check that the tables are up to date")
    args = p.parse_args(argv)
    doc = Path(args.doc)
    text = doc.read_text()
    new = render(text, doc.parent)
    if args.check:
        if new != text:
            print(f"{doc}: the benchmark tables differ from their JSON reports; run without --check", file=sys.stderr)
            return 1
        return 0
    if new != text:
        doc.write_text(new)
        print(f"rewrote {len(SECTION.findall(text))} table(s) in {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["SECTION", "doc_table", "load_report", "main", "marked_reports", "read_json", "render"]
