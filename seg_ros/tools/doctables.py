"""The Markdown of one measurement in docs/benchmarks.md, rendered from the JSON report a benchmark wrote.

A report's ``kind`` key (``report.json`` of ``seg-ros evaluate``: its ``format``) picks the renderer; a report
that holds several measurements (the CRF's speed and accuracy tests, an evaluation's summary and per-class IoU)
names the one wanted by a part. Each rendering is a provenance line (date, machine, library versions), the
command that wrote the report, and one table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from seg_ros.crf.config import grid_name
from seg_ros.evaluate.report import REPORT_FORMAT, EvaluationReport
from seg_ros.ros.tools.camerabench_report import CameraBenchReport, format_camera_tables
from seg_ros.ros.tools.nodebench import format_node_table
from seg_ros.tools.bagbench import BagReadRow, EvaluateOverhead, format_bag_table, format_evaluate_table
from seg_ros.tools.benchrow import BenchReport, BenchRow
from seg_ros.tools.crfaccuracy import CRFAccuracy, VariantScore
from seg_ros.tools.crfbench import CRFSpeedRow
from seg_ros.tools.soak import SoakReport

Report = dict[str, Any]
"""A parsed JSON report."""
Renderer = Callable[[Report], str]
EVALUATION = "evaluation"
"""The kind of a ``seg-ros evaluate`` report.json (which has ``format`` instead of ``kind``)."""


def report_kind(data: Report) -> str | None:
    """The benchmark that wrote ``data``: its ``kind`` key, or ``evaluation`` for an evaluate report.json."""
    if data.get("format") == REPORT_FORMAT:
        return EVALUATION
    return data.get("kind")


def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{fmt}}{suffix}"


def _fps(value: float | None) -> str:
    """Three significant digits, never an exponent: 0.868, 7.40, 48.0, 1234."""
    if value is None or not math.isfinite(value) or value <= 0:
        return _num(value, ".3g")
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def _miou(row: BenchRow) -> str:
    return _num(None if row.miou is None else 100 * row.miou, ".1f")


def _speed_rows_table(report: BenchReport) -> str:
    """One line per row: the layout for a report of one resolution."""
    lines = ["| mode | backend | precision | fps | p50 ms | p90 ms | p99 ms | preprocess | infer | postprocess "
             "| render | e2e / model | overhead | peak host MB | mIoU | Δ mIoU vs fp32 | vs naive |", "|" + "---|" * 17]
    for r in report.rows:
        st = r.stages_ms
        stages = " | ".join(_num(st.get(s), ".1f") for s in ("preprocess", "infer", "postprocess", "render"))
        backend, precision = r.shown()
        lines.append(f"| {r.mode} | {backend} | {precision} | {_fps(r.fps)} | {r.p50_ms:.1f} "
                     f"| {_num(r.p90_ms, '.1f')} | {r.p99_ms:.1f} | {stages} | {_num(r.e2e_over_model, '.2f', '×')} "
                     f"| {_num(r.overhead_pct, '.1f', '%')} | {_num(r.peak_host_mb, '.0f')} | {_miou(r)} "
                     f"| {_num(r.miou_delta_pts, '+.2f')} | {_num(r.vs_naive, '.2f', '×')} |")
    return "\n".join(lines)


def _speed_pairs_table(report: BenchReport) -> str:
    """One line per resolution × backend × precision, model and e2e side by side: for several resolutions."""
    lines = ["| resolution | backend | precision | model p50 ms | model p90 ms | e2e p50 ms | e2e p90 ms | e2e fps "
             "| e2e / model | + confidence ms | infer | postprocess | overhead | peak host MB | mIoU "
             "| Δ mIoU vs fp32 | vs naive |", "|" + "---|" * 17]
    by_key = {(r.mode, r.device, r.resolution, r.backend, r.precision): r for r in report.rows}
    for e in (r for r in report.rows if r.mode == "e2e"):
        m = by_key.get(("model", e.device, e.resolution, e.backend, e.precision))
        conf = by_key.get(("e2e+conf", e.device, e.resolution, e.backend, e.precision))
        st = e.stages_ms
        backend, precision = e.shown()
        lines.append(f"| {e.resolution.replace('x', '×')} | {backend} | {precision} "
                     f"| {_num(m and m.p50_ms, '.1f')} | {_num(m and m.p90_ms, '.1f')} | {e.p50_ms:.1f} "
                     f"| {_num(e.p90_ms, '.1f')} | {_fps(e.fps)} | {_num(e.e2e_over_model, '.2f', '×')} "
                     f"| {_num(conf and conf.p50_ms - e.p50_ms, '+.1f')} "
                     f"| {_num(st.get('infer'), '.1f')} | {_num(st.get('postprocess'), '.1f')} "
                     f"| {_num(e.overhead_pct, '.1f', '%')} | {_num(e.peak_host_mb, '.0f')} | {_miou(e)} "
                     f"| {_num(e.miou_delta_pts, '+.2f')} | {_num(e.vs_naive, '.2f', '×')} |")
    return "\n".join(lines)


def first_use_table(report: BenchReport) -> str:
    """Seconds to build the Segmenter into an empty cache and again from it, per row that measured it; "" if none."""
    built = [r for r in report.rows if r.build_cold_s is not None]
    if not built:
        return ""
    lines = ["| resolution | backend | precision | build, empty cache (s) | build, warm cache (s) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.resolution.replace('x', '×')} | {r.backend} | {r.precision} | {r.build_cold_s:.2f} "
              f"| {_num(r.build_warm_s, '.2f')} |" for r in built]
    return "\n".join(lines)


TARGET_RESOLUTION = "360x640"
"""The resolution the speed targets are stated at."""
TARGET_BUDGET, TARGET_VS_NAIVE = 1.25, 3.0
"""auto e2e median ≤ this × the best bare-network median of the run; auto e2e ≥ this × faster than naive."""


def speed_targets(report: BenchReport) -> list[str]:
    """One line per target and device at :data:`TARGET_RESOLUTION`: the numbers, met or not. From the contenders
    timed in turn where the report has them (load on the machine falls on all alike), else from the rows'
    medians, each timed in a block of its own."""
    lines = []
    res = TARGET_RESOLUTION.replace("x", "×")
    turns = [x for x in report.interleaved if x.resolution == TARGET_RESOLUTION]
    for x in turns:
        lines.append(f"- auto end to end at {res} on {x.device} ≤ {TARGET_BUDGET:g}× the best bare-network time "
                     f"(timed in turn, {x.frames} frames each, medians): {x.auto_ms:.1f} ms ({x.auto}) vs "
                     f"{x.bare_ms:.1f} ms ({x.bare}) = {x.over_bare:.2f}×: **{_met(x.over_bare <= TARGET_BUDGET)}**")
        lines.append(f"- auto end to end at {res} on {x.device} ≥ {TARGET_VS_NAIVE:g}× the naive pipeline (timed "
                     f"in turn): {x.naive_ms:.1f} ms (naive → {x.naive}) / {x.auto_ms:.1f} ms = {x.vs_naive:.2f}×: "
                     f"**{_met(x.vs_naive >= TARGET_VS_NAIVE)}**")
    done = {x.device for x in turns}
    for auto in (r for r in report.rows if (r.mode, r.backend, r.resolution) == ("e2e", "auto", TARGET_RESOLUTION)
                 and r.device not in done):
        bare = [r for r in report.rows if r.mode == "model" and r.backend not in ("auto", "naive")
                and (r.device, r.resolution) == (auto.device, auto.resolution)]
        if bare:
            best = min(bare, key=lambda r: r.p50_ms)
            ratio = auto.p50_ms / best.p50_ms
            lines.append(f"- auto end to end at {res} on {auto.device} ≤ {TARGET_BUDGET:g}× the best bare-network "
                         f"time of the same run: {auto.p50_ms:.1f} ms vs {best.p50_ms:.1f} ms ({best.backend} "
                         f"{best.precision}) = {ratio:.2f}×: **{_met(ratio <= TARGET_BUDGET)}**")
        if auto.vs_naive is not None:
            lines.append(f"- auto end to end at {res} on {auto.device} ≥ {TARGET_VS_NAIVE:g}× the naive pipeline "
                         f"(medians): {auto.vs_naive:.2f}×: **{_met(auto.vs_naive >= TARGET_VS_NAIVE)}**")
    return lines


def interleaved_table(report: BenchReport) -> str:
    """The contenders timed in turn, a line per device and resolution; "" if the report has none."""
    if not report.interleaved:
        return ""
    lines = ["| device | resolution | frames | auto e2e | ms | best bare network | ms | naive e2e | ms "
             "| auto / bare | vs naive | bare networks timed in turn (ms) |", "|" + "---|" * 12]
    lines += [f"| {x.device} | {x.resolution.replace('x', '×')} | {x.frames} | {x.auto} | {x.auto_ms:.1f} | {x.bare} "
              f"| {x.bare_ms:.1f} | naive → {x.naive} | {x.naive_ms:.1f} | {x.over_bare:.2f}× | {x.vs_naive:.2f}× "
              f"| {', '.join(f'{k} {v:.1f}' for k, v in x.bare_candidates.items())} |" for x in report.interleaved]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def speed_table(report: BenchReport) -> str:
    """The tables of a ``seg-ros bench speed`` report (CPU columns: no GPU memory, no CRF): the rows, the
    first-use cost where measured, the contenders timed in turn, and the speed targets where the report has an
    auto row at 360×640."""
    one_size = len({r.resolution for r in report.rows}) == 1
    parts = [_speed_rows_table(report) if one_size else _speed_pairs_table(report), first_use_table(report),
             interleaved_table(report), "\n".join(speed_targets(report))]
    return "\n\n".join(p for p in parts if p)


def render_speed(data: Report) -> str:
    return speed_table(BenchReport.from_json(data))


def render_node(data: Report) -> str:
    return format_node_table(data)


def render_cameras(data: Report) -> str:
    """Several cameras in one node against one node per camera: the runs, the ratios and the targets."""
    return format_camera_tables(CameraBenchReport.from_json(data))


def render_soak(data: Report) -> str:
    """One line: frame accounting, parameter changes, outputs, resident memory (MB) and the verdict."""
    r = SoakReport(**{k: v for k, v in data.items() if k not in ("machine", "date", "torch", "command", "ok")})
    outputs = sorted(r.published)
    at_1000 = _num(r.rss_mb_at_1000, ".1f", " MB")
    growth = _num(r.rss_growth_pct, "+.2f", "%")
    verdict = "OK" if r.ok else f"{len(r.problems)} problem(s)"
    return "\n".join([
        "| frames | seconds | processed | dropped (newest-frame only) | bad | errors | parameter changes "
        f"| pipeline rebuilds | rejected as expected | published {' / '.join(outputs)} | RSS at frame 1,000 "
        "| RSS at the end | result |",
        "|" + "---|" * 13,
        f"| {r.frames} | {r.seconds:.1f} | {r.processed} | {r.dropped} | {r.bad_frames} | {r.errors} "
        f"| {r.param_changes} | {r.reloads} | {r.params_rejected} | {' / '.join(str(r.published[k]) for k in outputs)} "
        f"| {at_1000} | {r.rss_mb_end:.1f} MB ({growth}) | {verdict} |"])


def render_bag_read(data: Report) -> str:
    return format_bag_table([BagReadRow(**r) for r in data["bag_read"]])


def render_evaluate_overhead(data: Report) -> str:
    return format_evaluate_table(EvaluateOverhead(**data["evaluate"]))


def render_crf_speed(data: Report) -> str:
    """The CRF stage's timings: method, grid, gate, wall and CPU time, speed-up and agreement with the exact CRF."""
    lines = ["| method | device | resolution | classes | iterations | grid | confidence gate | pixels refined "
             "| wall ms (p50) | CPU ms | speed-up vs exact (wall / CPU) | labels = exact |", "|" + "---|" * 12]
    for r in (CRFSpeedRow(**row) for row in data["speed"]):
        gate = f"< {r.confidence_threshold:g}" if r.confidence_threshold > 0 else "off"
        speedup = "" if r.speedup is None or r.cpu_speedup is None else f"{r.speedup:.1f}× / {r.cpu_speedup:.1f}×"
        lines.append(f"| {r.method} | {r.device} | {r.resolution} | {r.classes} | {r.iterations} "
                     f"| {grid_name(r.grid_step)} | {gate} | {r.refined_pct:.0f}% | {r.p50_ms:.1f} | {r.cpu_ms:.1f} "
                     f"| {speedup} | {_num(r.agreement_pct, '.2f', '%')} |")
    return "\n".join(lines)


def crf_accuracy_table(result: CRFAccuracy) -> str:
    """One line per variant: mIoU (%), gain over the network alone (points), agreement with the exact CRF, time."""
    lines = ["| variant | mIoU % | gain (points) | labels = exact | CRF ms / frame |", "|---|---|---|---|---|"]
    for name, v in result.variants.items():
        gain = "—" if name == "none" else f"{v.gain:+.2f}"
        lines.append(f"| {'no CRF' if name == 'none' else name} | {v.miou:.2f} | {gain} "
                     f"| {_num(v.agreement_pct, '.2f', '%')} | {_num(v.ms_per_frame, ',.0f') or '0'} |")
    return "\n".join(lines)


def _crf_accuracy(part: str) -> Renderer:
    def render(data: Report) -> str:
        block = data["accuracy"][part]
        variants = {n: VariantScore(**v) for n, v in block["variants"].items()}
        return crf_accuracy_table(CRFAccuracy(frames=block["frames"], variants=variants))

    render.__doc__ = f"The ``{part}`` accuracy test of a ``seg-ros bench crf`` report."
    return render


def render_evaluation_summary(data: Report) -> str:
    """Scores, frames, the pipeline's speed and evaluate's own overhead of one ``seg-ros evaluate`` run."""
    r = EvaluationReport.from_json(data)
    m, total = r.metrics, r.latency_ms.get("total")
    params = r.settings.get("params_file")
    ran_on = " ".join(x for x in (r.model.backend, r.model.precision) if x)  # empty in older reports
    return "\n".join([
        "| parameters | backend | model resolution | mIoU | pixel accuracy | scored frames | fps in the pipeline "
        "| p50 ms | p99 ms | evaluate's own overhead |", "|" + "---|" * 10,
        f"| {f'`{params}`' if params else 'defaults'} | {ran_on} "
        f"| {r.model.resolution} | {_num(m and m.miou, '.3f')} "
        f"| {_num(m and m.pixel_accuracy, '.3f')} "
        f"| {r.frames.scored} of {r.frames.total} | {_num(r.fps, '.2f')} | {_num(total and total.p50, '.1f')} "
        f"| {_num(total and total.p99, '.1f')} | {_num(r.overhead_pct, '.1f', '%')} |"])


def render_evaluation_classes(data: Report) -> str:
    """mIoU and each class's IoU (0..1) of one ``seg-ros evaluate`` run."""
    r = EvaluationReport.from_json(data)
    if r.metrics is None:
        raise ValueError("the evaluation has no ground truth, so no per-class scores")
    names = list(r.metrics.iou)
    return "\n".join([
        f"| model resolution | mIoU | {' | '.join(names)} |", "|" + "---|" * (len(names) + 2),
        f"| {r.model.resolution} | {_num(r.metrics.miou, '.3f')} | "
        + " | ".join(_num(r.metrics.iou[n], ".3f") for n in names) + " |"])


TABLES: dict[tuple[str, str], Renderer] = {
    ("bench_speed", ""): render_speed,
    ("node_overhead", ""): render_node,
    (CameraBenchReport.KIND, ""): render_cameras,
    ("soak", ""): render_soak,
    ("bag_read", ""): render_bag_read,
    ("evaluate_overhead", ""): render_evaluate_overhead,
    ("bench_crf", "speed"): render_crf_speed,
    ("bench_crf", "synthetic"): _crf_accuracy("synthetic"),
    ("bench_crf", "camvid"): _crf_accuracy("camvid"),
    (EVALUATION, "summary"): render_evaluation_summary,
    (EVALUATION, "classes"): render_evaluation_classes,
}
"""(kind, part) → the renderer of that measurement's table."""


def provenance(data: Report) -> str:
    """``date, machine; library versions:`` and the command in a bash block, from the report's own keys."""
    versions = data.get("versions") or ({"torch": data["torch"]} if "torch" in data else {})
    where = ", ".join(str(x) for x in (data.get("date"), data.get("machine")) if x)
    libs = ", ".join(f"{name} {v}" for name, v in versions.items())
    line = f"{where}; {libs}:" if libs else f"{where}:"
    command = data.get("command")
    return f"{line}\n\n```bash\n{command}\n```" if command else line


def render_part(data: Report, part: str = "") -> str:
    """The provenance and the table of measurement ``part`` of ``data``; ValueError for an unknown one."""
    kind = report_kind(data)
    renderer = TABLES.get((kind or "", part))
    if renderer is None:
        known = ", ".join(sorted(f"{k} {p}".strip() for k, p in TABLES))
        raise ValueError(f"no table for kind {kind!r} part {part!r}; known: {known}")
    return f"{provenance(data)}\n\n{renderer(data)}"


__all__ = ["EVALUATION", "TABLES", "TARGET_BUDGET", "TARGET_RESOLUTION", "TARGET_VS_NAIVE", "crf_accuracy_table",
           "first_use_table", "interleaved_table", "provenance", "render_part", "report_kind", "speed_table",
           "speed_targets"]
