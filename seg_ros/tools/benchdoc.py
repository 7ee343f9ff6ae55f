"""The benchmark tables of docs/benchmarks.md, rendered from the JSON reports ``seg-ros bench speed`` writes.

A generated table sits between two markers that name its report, relative to the Markdown file::

    <!-- benchdoc: bench_cpu_360x640.json -->
    | mode | backend | ...
    <!-- /benchdoc -->

``python -m seg_ros.tools.benchdoc [--check] [FILE.md]`` rewrites every marked table of FILE.md (default:
docs/benchmarks.md) from its report, or with ``--check`` only says whether they are up to date (exit 1 if not).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

from seg_ros.tools.benchrow import BenchReport, BenchRow

SECTION = re.compile(r"(<!-- benchdoc: (?P<json>\S+) -->\n)(?P<body>.*?)(<!-- /benchdoc -->)", re.S)
DEFAULT_DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def load_report(path: str | os.PathLike) -> BenchReport:
    """Read a ``seg-ros bench speed`` JSON report."""
    return BenchReport.from_json(json.loads(Path(path).read_text()))


def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{fmt}}{suffix}"


def _fps(value: float | None) -> str:
    """Three significant digits, never an exponent: 0.868, 7.40, 48.0, 1234."""
    if value is None or not math.isfinite(value) or value <= 0:
        return _num(value, ".3g")
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def _miou(row: BenchRow) -> str:
    return _num(None if row.miou is None else 100 * row.miou, ".1f")


def _rows_table(report: BenchReport) -> str:
    """One line per row: the layout for a report of one resolution."""
    lines = ["| mode | backend | precision | fps | p50 ms | p99 ms | preprocess | infer | postprocess | render "
             "| overhead | peak host MB | mIoU | vs naive |", "|" + "---|" * 14]
    for r in report.rows:
        st = r.stages_ms
        stages = " | ".join(_num(st.get(s), ".1f") for s in ("preprocess", "infer", "postprocess", "render"))
        lines.append(f"| {r.mode} | {r.backend} | {r.precision} | {_fps(r.fps)} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
                     f"| {stages} | {_num(r.overhead_pct, '.1f', '%')} | {_num(r.peak_host_mb, '.0f')} "
                     f"| {_miou(r)} | {_num(r.vs_naive, '.2f', '×')} |")
    return "\n".join(lines)


def _pairs_table(report: BenchReport) -> str:
    """One line per resolution × backend × precision, model and e2e side by side: for several resolutions."""
    lines = ["| resolution | backend | precision | model fps | e2e fps | e2e p50 ms | infer | postprocess | overhead "
             "| peak host MB | mIoU | vs naive |", "|" + "---|" * 12]
    model = {(r.device, r.resolution, r.backend, r.precision): r for r in report.rows if r.mode == "model"}
    for e in (r for r in report.rows if r.mode == "e2e"):
        m = model.get((e.device, e.resolution, e.backend, e.precision))
        st = e.stages_ms
        lines.append(f"| {e.resolution.replace('x', '×')} | {e.backend} | {e.precision} "
                     f"| {_fps(m.fps if m else None)} | {_fps(e.fps)} | {e.p50_ms:.1f} "
                     f"| {_num(st.get('infer'), '.1f')} | {_num(st.get('postprocess'), '.1f')} "
                     f"| {_num(e.overhead_pct, '.1f', '%')} "
                     f"| {_num(e.peak_host_mb, '.0f')} | {_miou(e)} | {_num(e.vs_naive, '.2f', '×')} |")
    return "\n".join(lines)


def doc_table(report: BenchReport) -> str:
    """The Markdown table of ``report`` as docs/benchmarks.md shows it (CPU columns: no GPU memory, no CRF)."""
    return _rows_table(report) if len({r.resolution for r in report.rows}) == 1 else _pairs_table(report)


def render(text: str, base: str | os.PathLike) -> str:
    """``text`` with each marked table regenerated from its report (paths relative to ``base``)."""
    def table(m: re.Match) -> str:
        body = doc_table(load_report(Path(base) / m["json"]))
        return f"{m.group(1)}{body}\n{m.group(4)}"

    return SECTION.sub(table, text)


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


__all__ = ["doc_table", "load_report", "main", "render"]
