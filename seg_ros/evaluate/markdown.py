"""Reports in words: the terminal summary, report.md and the side-by-side comparison of two reports."""

from __future__ import annotations

from collections.abc import Sequence

from seg_ros.evaluate.report import Accuracy, CameraResult, EvaluationReport, LatencyStats, SequenceResult
from seg_ros.pipeline import STAGES

IOU_CHART = "iou_per_class.png"
CONFUSION_CHART = "confusion_matrix.png"
LATENCY_CHART = "latency_histogram.png"
TTA_NOTE = "with test-time augmentation (offline; the robot's score is the one without)"
"""How reports mark the scores of a run with test-time augmentation."""


def _tta_timing_note(report: EvaluationReport) -> str:
    """How reports mark the times of a run with test-time augmentation ("" without)."""
    tta = report.model.tta
    return "" if tta is None else f" with test-time augmentation ({tta.views} network runs per frame; not the " \
                                  "robot's latency)"


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def summary_lines(report: EvaluationReport) -> list[str]:
    """A few lines for the terminal: scores, frames, speed."""
    fr, m = report.frames, report.metrics
    tta = f" {TTA_NOTE}" if report.model.tta is not None else ""
    lines = []
    if m is not None:
        lines.append(f"mIoU {_f(m.miou)}, pixel accuracy {_f(m.pixel_accuracy)} over {fr.scored} scored "
                     f"frames of {fr.total}{tta}")
    else:
        lines.append(f"no ground truth given: latency only, {fr.total} frames")
    if fr.missing_gt:
        lines.append(f"warning: {fr.missing_gt} of {fr.total} frames had no ground truth and were not scored "
                     f"(listed in report.json under frames.missing_gt_frames)")
    if fr.gt_without_frame:
        lines.append(f"warning: {fr.gt_without_frame} ground-truth images matched no camera frame")
    for c in report.cameras:
        cm, cf = c.metrics, c.frames
        scores = (f"mIoU {_f(cm.miou)}, pixel accuracy {_f(cm.pixel_accuracy)} over {cf.scored} scored frames of "
                  f"{cf.total}" if cm is not None else f"latency only, {cf.total} frames")
        lines.append(f"camera {c.name} ({c.image_topic}): {scores}")
    for q in report.sequences:
        lines.append(f"sequence {q.name}: {_sequence_scores(q)}")
    lat = report.latency_ms["total"]
    if lat:
        lines.append(f"{report.fps} fps in the pipeline{_tta_timing_note(report)} (p50 {lat.p50:.1f} ms, "
                     f"p99 {lat.p99:.1f} ms per frame); evaluate's own overhead {_f(report.overhead_pct, 1)}% of the "
                     "pipeline time")
    return lines


def _class_table(m: Accuracy, cams: Sequence[CameraResult]) -> list[str]:
    """Per-class IoU and accuracy of the run; with several cameras also each camera's IoU."""
    head = "| class | IoU | accuracy |" + "".join(f" {c.name} IoU |" for c in cams)
    rule = "|---|---|---|" + "---|" * len(cams)
    rows = [f"| {n} | {_f(v)} | {_f(m.class_accuracy[n])} |" +
            "".join(f" {_f(c.metrics.iou.get(n)) if c.metrics else 'n/a'} |" for c in cams) for n, v in m.iou.items()]
    return [head, rule, *rows]


def _camera_table(report: EvaluationReport) -> list[str]:
    """One row per camera of a run of several cameras (nothing for one camera)."""
    if not report.cameras:
        return []
    lines = [f"Cameras: {len(report.cameras)}, scored one by one; the scores above are the total over all of them "
             "(one confusion matrix summed over the cameras).", "",
             "| camera | image topic | ground truth | frames | scored | mIoU | pixel accuracy | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in report.cameras:
        m, lat = c.metrics, c.latency_ms
        lines.append(f"| {c.name} | `{c.image_topic}` | {f'`{c.gt_topic}`' if c.gt_topic else 'none'} "
                     f"| {c.frames.total} | {c.frames.scored} | {_f(m.miou if m else None)} "
                     f"| {_f(m.pixel_accuracy if m else None)} | {_f(lat.p50 if lat else None, 2)} "
                     f"| {_f(lat.p99 if lat else None, 2)} |")
    return [*lines, ""]


def _sequence_scores(q: SequenceResult) -> str:
    m = q.metrics
    if m is None:
        return f"not scored, {q.frames} frames"
    return f"mIoU {_f(m.miou)}, pixel accuracy {_f(m.pixel_accuracy)} over {q.scored} scored frames of {q.frames}"


def _sequence_table(report: EvaluationReport) -> list[str]:
    """One row per dataset sequence of a run over several (nothing otherwise)."""
    if not report.sequences:
        return []
    lines = [f"Sequences: {len(report.sequences)}, scored one by one; the scores above are over all of them.", "",
             "| sequence | frames | scored | mIoU | pixel accuracy |", "|---|---|---|---|---|"]
    for q in report.sequences:
        m = q.metrics
        lines.append(f"| {q.name} | {q.frames} | {q.scored} | {_f(m.miou if m else None)} "
                     f"| {_f(m.pixel_accuracy if m else None)} |")
    return [*lines, ""]


def _tta_lines(report: EvaluationReport) -> list[str]:
    tta = report.model.tta
    return [] if tta is None else [f"- Test-time augmentation: {tta.describe()}; every score and time here is "
                                   f"{TTA_NOTE}"]


def report_markdown(report: EvaluationReport) -> str:
    """report.md: the run, the scores, per-class IoU, latency per stage and overhead, with the charts."""
    fr, m, b, gt = report.frames, report.metrics, report.bag, report.ground_truth
    gt_text = ("none (latency only)" if gt is None else f"topic `{gt.topic}`" if gt.topic is not None
               else f"folder `{gt.dir}` (files named by frame {gt.match})")
    lines = [
        "# seg_ros evaluation",
        "",
        f"- Bag: `{b.path}` ({b.storage}, rosbag2 metadata version {b.version or 'n/a'}, "
        f"{b.duration_s} s, {b.messages} messages)",
        f"- Camera images: `{b.image_topic}` ({b.image_type}), {fr.size or 'n/a'}",
        f"- Ground truth: {gt_text}",
        f"- Model: {report.model.description}",
        *_tta_lines(report),
        f"- Date: {report.date}, seg_ros {report.seg_ros_version}",
    ]
    if report.command:
        lines.append(f"- Command: `{report.command}`")
    lines += [
        "",
        f"Frames: **{fr.total}** replayed, **{fr.scored}** scored, **{fr.missing_gt}** without ground "
        f"truth (not scored), {fr.gt_without_frame} ground-truth images without a camera frame.",
        "",
    ]
    if m is not None:
        lines += [
            f"**mIoU {_f(m.miou)}**, pixel accuracy {_f(m.pixel_accuracy)} "
            f"({m.pixels:,} scored pixels; one confusion matrix over the whole run, ignore id excluded)"
            + (f", {TTA_NOTE}." if report.model.tta is not None else "."),
            "",
            *_class_table(m, report.cameras),
            "",
        ]
        for png, alt in ((IOU_CHART, "per-class IoU"), (CONFUSION_CHART, "confusion matrix")):
            if png in report.charts:
                lines += [f"![{alt}]({png})", ""]
    lines += _camera_table(report)
    lines += _sequence_table(report)
    lines += [
        f"Pipeline{_tta_timing_note(report)}: **{report.fps} fps** (from the mean total); "
        f"{report.throughput_fps} frames/s through the whole replay including evaluate's own work.",
        "",
        "| stage | p50 ms | p90 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in (("", report.latency_ms), ("evaluate: ", report.overhead_ms)):
        for s, st in block.items():
            if st:
                lines.append(f"| {name}{s} | {st.p50:.2f} | {st.p90:.2f} | {st.p99:.2f} | {st.max:.2f} "
                             f"| {st.mean:.2f} |")
    lines += [
        "",
        f"Evaluate's own overhead (reading, decoding, scoring, writing): {_f(report.overhead_pct, 1)}% of the "
        "pipeline time.",
    ]
    if LATENCY_CHART in report.charts:
        lines += ["", "![latency](latency_histogram.png)"]
    if fr.missing_gt_frames:
        lines += ["", "Frames without ground truth (first "
                  f"{len(fr.missing_gt_frames)}): " + ", ".join(
                      f"{x.index} ({x.stamp_ns / 1e9:.3f} s)" for x in fr.missing_gt_frames)]
    if report.out_bag:
        lines += ["", f"Output bag: `{report.out_bag.path}` with " +
                  ", ".join(f"`{t}`" for t in report.out_bag.topics) + ", the input images and camera_info."]
    return "\n".join(lines) + "\n"


def _latency(report: EvaluationReport, stage: str, quantile: str) -> float | None:
    st: LatencyStats | None = report.latency_ms.get(stage)
    return None if st is None else float(getattr(st, quantile))


def _opt(v: float | None) -> float | None:
    return None if v is None else float(v)


def compare_reports(a: EvaluationReport, b: EvaluationReport, names: tuple[str, str] = ("A", "B")) -> str:
    """A Markdown table of two reports side by side, with B − A for the numbers."""
    def row(label: str, va: float | None, vb: float | None, digits: int = 3) -> str:
        d = "" if va is None or vb is None else f"{vb - va:+.{digits}f}"
        return f"| {label} | {_f(va, digits)} | {_f(vb, digits)} | {d} |"

    ma, mb = a.metrics, b.metrics
    lines = [f"| | {names[0]} | {names[1]} | {names[1]} − {names[0]} |", "|---|---|---|---|"]
    lines.append(f"| model | {a.model.description} | {b.model.description} | |")
    if a.model.tta is not None or b.model.tta is not None:
        lines.append("| test-time augmentation (offline) | " +
                     " | ".join(t.describe() if t is not None else "none" for t in (a.model.tta, b.model.tta)) + " | |")
    lines.append(f"| bag | {a.bag.path} ({a.bag.image_topic}) | {b.bag.path} ({b.bag.image_topic}) | |")
    lines.append(row("frames scored", float(a.frames.scored), float(b.frames.scored), 0))
    lines.append(row("frames without ground truth", float(a.frames.missing_gt), float(b.frames.missing_gt), 0))
    lines.append(row("mIoU", _opt(ma.miou if ma else None), _opt(mb.miou if mb else None)))
    lines.append(row("pixel accuracy", _opt(ma.pixel_accuracy if ma else None),
                    _opt(mb.pixel_accuracy if mb else None)))
    classes = list(dict.fromkeys([*(ma.iou if ma else {}), *(mb.iou if mb else {})]))
    for c in classes:
        lines.append(row(f"IoU {c}", _opt(ma.iou.get(c) if ma else None), _opt(mb.iou.get(c) if mb else None)))
    lines.append(row("fps (pipeline)", _opt(a.fps), _opt(b.fps), 1))
    for s in (*STAGES, "total"):
        for q in ("p50", "p99"):
            lines.append(row(f"{s} {q} ms", _latency(a, s, q), _latency(b, s, q), 2))
    lines.append(row("evaluate overhead %", _opt(a.overhead_pct), _opt(b.overhead_pct), 1))
    return "\n".join(lines)
