"""``evaluate_bag``: replay a bag through a Segmenter, score it, write the report (and an output bag)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seg_ros import __version__
from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.labels import LabelSet
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.staging import StagedDir, staged_output
from seg_ros.evaluate.ground_truth import GroundTruthDir
from seg_ros.evaluate.markdown import CONFUSION_CHART, IOU_CHART, LATENCY_CHART, report_markdown, summary_lines
from seg_ros.evaluate.options import EvalOptions, check_options
from seg_ros.evaluate.replay import FramePair, Replay, pick_image_topic, recorded_gt_topic
from seg_ros.evaluate.report import (
    Accuracy,
    BagSummary,
    EvaluationReport,
    GroundTruthSource,
    ModelSummary,
    OutputBag,
)
from seg_ros.evaluate.tally import RunTally
from seg_ros.io.bags import CAMERA_INFO, CUSTOM_LABEL_SET, IMAGE, BagInfo, BagReader, BagWriter
from seg_ros.io.datasets import check_label_ids, read_labels
from seg_ros.pipeline import Segmenter, format_resolution


@dataclass(frozen=True)
class _Inputs:
    """The topics a run reads: the camera topic (its message type and count), the ground-truth topic if any."""

    image_topic: str
    image_type: str
    image_count: int
    gt_topic: str | None


def _resolve_inputs(reader: BagReader, opts: EvalOptions, gt_dir: GroundTruthDir | None,
                    label_set: LabelSet) -> _Inputs:
    info = reader.info
    if info.message_count == 0:
        reader.require_topic(opts.image_topic or "")  # raises EmptyBagError
    image_topic = pick_image_topic(info, opts.image_topic, opts.gt_topic)
    image_info = reader.require_topic(image_topic)
    gt_topic = opts.gt_topic
    if gt_topic is None and gt_dir is None:
        gt_topic = recorded_gt_topic(info)
    if gt_topic is not None:
        if gt_topic == image_topic:
            raise ConfigError(f"the ground-truth topic and the image topic are both {gt_topic}.")
        reader.require_topic(gt_topic, (IMAGE,), role="ground-truth")
        bag_labels = info.custom.get(CUSTOM_LABEL_SET)
        if bag_labels and bag_labels != label_set.name:
            raise ConfigError(f"the ground truth in bag {opts.bag} uses the {bag_labels} label set but the model "
                              f"predicts {label_set.name}; evaluate it with a {bag_labels} model.")
    return _Inputs(image_topic, image_info.msgtype, image_info.count, gt_topic)


def _ground_truth(pair: FramePair, gt_dir: GroundTruthDir | None, frame_hw: tuple[int, int], label_set: LabelSet,
                  max_pixels: int) -> np.ndarray | None:
    """The (H, W) uint8 ground-truth ids of ``pair``'s frame, checked against its size and the label set."""
    f = pair.frame
    gt = None
    if pair.gt is not None:
        gt = pair.gt.to_labels(max_pixels)
    elif gt_dir is not None and (path := gt_dir.lookup(f)) is not None:
        gt = read_labels(path, max_pixels)
    if gt is not None:
        if gt.shape != frame_hw:
            raise InputError(f"the ground truth of {f.describe()} is {gt.shape[1]}x{gt.shape[0]} but "
                             f"the camera image is {frame_hw[1]}x{frame_hw[0]}.")
        check_label_ids(gt, label_set, f"the ground truth of {f.describe()}")
    return gt


def _replay(replay: Replay, segmenter: Segmenter, opts: EvalOptions, gt_dir: GroundTruthDir | None,
            cm: ConfusionMatrix | None, writer: BagWriter | None, total: int) -> tuple[RunTally, float]:
    """Segment (and score, with ``cm``) the first ``total`` frames of ``replay``; returns the tally and the
    seconds the loop took."""
    tally = RunTally()
    outputs = ("labels", "color", "overlay") if writer else ("labels",)
    bar = tqdm(total=total, desc="evaluate", unit="frame", disable=not opts.progress)
    loop0 = time.perf_counter()
    for pair in replay:
        if tally.frames >= total:
            break
        f = pair.frame
        t0 = time.perf_counter()
        rgb = f.to_rgb(opts.max_pixels)
        gt = _ground_truth(pair, gt_dir, rgb.shape[:2], segmenter.label_set, opts.max_pixels)
        t1 = time.perf_counter()
        r = segmenter.segment(rgb, outputs)
        t2 = time.perf_counter()
        if gt is not None and cm is not None:
            cm.update(r.labels, gt)
            tally.scored += 1
        elif cm is not None:
            tally.add_missing(f)
        t3 = time.perf_counter()
        if writer is not None:
            writer.write_raw(f.topic, f.msgtype, f.raw, f.log_time_ns)
            for topic, arr in zip(opts.output_topics, (r.labels, r.color, r.overlay)):
                writer.write_image(topic, arr, f.stamp_ns, f.frame_id, f.log_time_ns)
        t4 = time.perf_counter()
        tally.add_frame((rgb.shape[0], rgb.shape[1]), r.timings,
                        {"read": pair.read_s, "decode": t1 - t0, "score": t3 - t2, "write": t4 - t3})
        bar.update(1)
    bar.close()
    return tally, time.perf_counter() - loop0


def _bag_summary(info: BagInfo, inputs: _Inputs) -> BagSummary:
    return BagSummary(path=str(info.path), storage=info.storage, version=info.version,
                      duration_s=round(info.duration_s, 3), messages=info.message_count,
                      image_topic=inputs.image_topic, image_type=inputs.image_type)


def _model_summary(seg: Segmenter) -> ModelSummary:
    ls = seg.label_set
    return ModelSummary(description=seg.describe(), path=str(seg.model_path), architecture=seg.meta.architecture,
                        label_set=ls.name, classes=tuple(ls.names), ignore_id=ls.ignore_id,
                        resolution=format_resolution(seg.resolution), provenance=seg.meta.provenance,
                        backend=seg.backend.name, precision=seg.backend.precision)


def _draw_charts(stage: StagedDir, report: EvaluationReport, stage_ms: dict[str, list[float]]) -> tuple[str, ...]:
    """Draw the report's PNG charts into ``stage``; returns their file names."""
    from seg_ros.evaluate.plots import plot_confusion, plot_iou, plot_latency

    charts: list[str] = []
    m = report.metrics
    if m is not None and m.pixels > 0:
        plot_iou(report.model.classes, list(m.iou.values()), stage.path(IOU_CHART),
                 f"Per-class IoU — {Path(report.bag.path).name}")
        plot_confusion(report.model.classes, np.asarray(m.confusion_matrix), stage.path(CONFUSION_CHART))
        charts += [IOU_CHART, CONFUSION_CHART]
    if report.frames.total:
        plot_latency(stage_ms, stage.path(LATENCY_CHART), f"Latency per stage — {report.model.description}")
        charts.append(LATENCY_CHART)
    return tuple(charts)


def evaluate_bag(opts: EvalOptions, segmenter: Segmenter, *, settings: dict[str, Any] | None = None,
                 command: str | None = None, log: Callable[[str], None] = print) -> EvaluationReport:
    """Replay ``opts.bag`` through ``segmenter``, write the report (and output bag); returns the report.

    Raises a SegRosError subclass (one sentence) for any bad input; then nothing is written.
    """
    check_options(opts)
    label_set = segmenter.label_set
    gt_dir = GroundTruthDir(opts.gt_dir, opts.gt_match) if opts.gt_dir is not None else None
    wall0 = time.perf_counter()
    with BagReader(opts.bag) as reader:
        info = reader.info
        inputs = _resolve_inputs(reader, opts, gt_dir, label_set)
        gt_source = (GroundTruthSource(topic=inputs.gt_topic) if inputs.gt_topic else
                     GroundTruthSource(dir=str(gt_dir.path), match=gt_dir.match, files=len(gt_dir.files))
                     if gt_dir else None)
        total = inputs.image_count if opts.limit is None else min(inputs.image_count, opts.limit)
        cam_topics = [t.name for t in info.topics if t.msgtype == CAMERA_INFO] if opts.out_bag else []
        writer = (BagWriter(opts.out_bag, distro=opts.out_distro, storage=opts.out_storage or info.storage,
                            overwrite=opts.overwrite) if opts.out_bag else None)
        try:
            with staged_output(opts.out) as stage:
                replay = Replay(reader, inputs.image_topic, inputs.gt_topic, round(opts.gt_window_s * 1e9),
                                cam_topics, (lambda m: writer.write_raw(m.topic, m.msgtype, m.raw, m.log_time_ns))
                                if writer else None)
                cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_id) if gt_source else None
                tally, loop_s = _replay(replay, segmenter, opts, gt_dir, cm, writer, total)
                report = EvaluationReport(
                    seg_ros_version=__version__, date=time.strftime("%Y-%m-%d %H:%M:%S"), command=command,
                    bag=_bag_summary(info, inputs), ground_truth=gt_source, model=_model_summary(segmenter),
                    settings=settings or {}, frames=tally.frame_counts(replay.gt_unmatched, replay.gt_duplicates),
                    metrics=Accuracy.from_confusion(cm, label_set.names) if cm is not None else None,
                    latency_ms=tally.latency(), fps=tally.pipeline_fps(), throughput_fps=tally.throughput_fps(loop_s),
                    overhead_ms=tally.overhead(), overhead_pct=tally.overhead_pct(),
                    out_bag=OutputBag(str(opts.out_bag), opts.output_topics) if opts.out_bag else None)
                t_rep = time.perf_counter()
                if opts.charts:
                    report = replace(report, charts=_draw_charts(stage, report, tally.stage_ms))
                stage.path("report.md").write_text(report_markdown(report))
                report = replace(report, report_write_s=round(time.perf_counter() - t_rep, 3),
                                 wall_s=round(time.perf_counter() - wall0, 3))
                stage.path("report.json").write_text(json.dumps(report.to_json(), indent=2))
                if writer is not None:
                    writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is not None:
        writer.commit()
    for line in summary_lines(report):
        log(line)
    return report
