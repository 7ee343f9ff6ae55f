"""``evaluate_bag``: replay a bag through a Segmenter, score it, write the report (and an output bag)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seg_ros import __version__
from seg_ros.core.errors import InputError
from seg_ros.core.labels import LabelSet
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.staging import StagedDir, staged_output
from seg_ros.evaluate.cameras import CameraInput, resolve_cameras
from seg_ros.evaluate.ground_truth import GroundTruthDir
from seg_ros.evaluate.markdown import CONFUSION_CHART, IOU_CHART, LATENCY_CHART, report_markdown, summary_lines
from seg_ros.evaluate.options import EvalOptions, check_options
from seg_ros.evaluate.replay import FramePair, Replay
from seg_ros.evaluate.report import (
    Accuracy,
    BagSummary,
    CameraResult,
    EvaluationReport,
    GroundTruthSource,
    ModelSummary,
    OutputBag,
)
from seg_ros.evaluate.sequences import SequenceTally
from seg_ros.evaluate.tally import RunTally
from seg_ros.evaluate.tta import TTASegmenter
from seg_ros.io.bags import CAMERA_INFO, CUSTOM_IMAGE_TOPIC, BagInfo, BagReader, BagWriter, recorded_sequences
from seg_ros.io.datasets import check_label_ids, read_labels
from seg_ros.pipeline import Segmenter, SegResult, format_resolution

FrameSegmenter = Callable[[np.ndarray, Sequence[str]], SegResult]
"""One (H, W, 3) uint8 RGB frame and the outputs wanted → its result: the Segmenter's, or test-time augmented."""


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


def _replay(replay: Replay, segment: FrameSegmenter, label_set: LabelSet, opts: EvalOptions,
            gt_dir: GroundTruthDir | None, cms: Sequence[ConfusionMatrix | None], writer: BagWriter | None,
            totals: Sequence[int], output_topics: Sequence[tuple[str, str, str]],
            sequences: SequenceTally | None) -> tuple[list[RunTally], float]:
    """Segment (and score, where a camera has a confusion matrix in ``cms``) the first ``totals[k]`` frames of
    camera k of ``replay``, camera 0's frames also per sequence into ``sequences``; returns one tally per camera
    and the seconds the loop took."""
    tallies = [RunTally() for _ in totals]
    outputs = ("labels", "color", "overlay") if writer else ("labels",)
    bar = tqdm(total=sum(totals), desc="evaluate", unit="frame", disable=not opts.progress)
    loop0 = time.perf_counter()
    for pair in replay:
        tally, cm = tallies[pair.camera], cms[pair.camera]
        if tally.frames >= totals[pair.camera]:
            if all(t.frames >= n for t, n in zip(tallies, totals)):
                break
            continue
        f = pair.frame
        t0 = time.perf_counter()
        rgb = f.to_rgb(opts.max_pixels)
        gt = _ground_truth(pair, gt_dir, rgb.shape[:2], label_set, opts.max_pixels)
        t1 = time.perf_counter()
        r = segment(rgb, outputs)
        t2 = time.perf_counter()
        if gt is not None and cm is not None:
            cm.update(r.labels, gt)
            tally.scored += 1
        elif cm is not None:
            tally.add_missing(f)
        if sequences is not None and pair.camera == 0:
            sequences.add(f.index, r.labels, gt)
        t3 = time.perf_counter()
        if writer is not None:
            writer.write_raw(f.topic, f.msgtype, f.raw, f.log_time_ns)
            for topic, arr in zip(output_topics[pair.camera], (r.labels, r.color, r.overlay)):
                writer.write_image(topic, arr, f.stamp_ns, f.frame_id, f.log_time_ns)
        t4 = time.perf_counter()
        tally.add_frame((rgb.shape[0], rgb.shape[1]), r.timings,
                        {"read": pair.read_s, "decode": t1 - t0, "score": t3 - t2, "write": t4 - t3})
        bar.update(1)
    bar.close()
    return tallies, time.perf_counter() - loop0


def _bag_summary(info: BagInfo, cameras: Sequence[CameraInput]) -> BagSummary:
    return BagSummary(path=str(info.path), storage=info.storage, version=info.version,
                      duration_s=round(info.duration_s, 3), messages=info.message_count,
                      image_topic=", ".join(c.image_topic for c in cameras),
                      image_type=", ".join(dict.fromkeys(c.image_type for c in cameras)))


def _ground_truth_source(cameras: Sequence[CameraInput], gt_dir: GroundTruthDir | None) -> GroundTruthSource | None:
    topics = [c.gt_topic for c in cameras if c.gt_topic is not None]
    if topics:
        return GroundTruthSource(topic=", ".join(topics))
    if gt_dir is not None:
        return GroundTruthSource(dir=str(gt_dir.path), match=gt_dir.match, files=len(gt_dir.files))
    return None


def _total_confusion(cms: Sequence[ConfusionMatrix | None], label_set: LabelSet) -> ConfusionMatrix | None:
    """The sum of the cameras' confusion matrices; None when no camera was scored."""
    scored = [cm for cm in cms if cm is not None]
    if not scored:
        return None
    total = ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
    for cm in scored:
        total.merge(cm)
    return total


def _camera_results(cameras: Sequence[CameraInput], tallies: Sequence[RunTally], cms: Sequence[ConfusionMatrix | None],
                    replay: Replay, label_set: LabelSet, output_topics: Sequence[tuple[str, ...]]
                    ) -> tuple[CameraResult, ...]:
    return tuple(
        CameraResult(name=c.name, image_topic=c.image_topic, image_type=c.image_type, gt_topic=c.gt_topic,
                     frames=t.frame_counts(replay.gt_unmatched(k), replay.gt_duplicates(k)),
                     metrics=Accuracy.from_confusion(cm, label_set.names) if cm is not None else None,
                     latency_ms=t.latency()["total"], output_topics=out)
        for k, (c, t, cm, out) in enumerate(zip(cameras, tallies, cms, output_topics)))


def _model_summary(seg: Segmenter, tta: TTASegmenter | None) -> ModelSummary:
    ls = seg.label_set
    return ModelSummary(description=seg.describe(), path=str(seg.model_path), architecture=seg.meta.architecture,
                        label_set=ls.name, classes=tuple(ls.names), ignore_id=ls.ignore_id,
                        resolution=format_resolution(seg.resolution), provenance=seg.meta.provenance,
                        backend=seg.backend.name, precision=seg.backend.precision,
                        tta=None if tta is None else tta.config)


def _sequence_tally(info: BagInfo, cameras: Sequence[CameraInput], cms: Sequence[ConfusionMatrix | None],
                    label_set: LabelSet) -> SequenceTally | None:
    """Per-sequence scoring of a scored one-camera run on the image topic whose sequences the bag records."""
    if len(cameras) != 1 or cms[0] is None or cameras[0].image_topic != info.custom.get(CUSTOM_IMAGE_TOPIC):
        return None
    runs = recorded_sequences(info)
    return SequenceTally(runs, label_set) if runs else None


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


def _assemble_report(info: BagInfo, cameras: Sequence[CameraInput], gt_source: GroundTruthSource | None,
                     segmenter: Segmenter, tta: TTASegmenter | None, tally: RunTally, tallies: Sequence[RunTally],
                     cms: Sequence[ConfusionMatrix | None], sequences: SequenceTally | None, replay: Replay,
                     loop_s: float, out_bag: OutputBag | None, output_topics: Sequence[tuple[str, ...]],
                     settings: dict[str, Any], command: str | None) -> EvaluationReport:
    """The report of a finished replay: the totals over every camera (``tally``: every camera's ``tallies``
    combined) and, with several cameras, one result per camera."""
    label_set = segmenter.label_set
    cm = _total_confusion(cms, label_set)
    if out_bag is None:
        output_topics = [() for _ in cameras]
    k = range(len(cameras))
    return EvaluationReport(
        seg_ros_version=__version__, date=time.strftime("%Y-%m-%d %H:%M:%S"), command=command,
        bag=_bag_summary(info, cameras), ground_truth=gt_source, model=_model_summary(segmenter, tta),
        settings=settings,
        frames=tally.frame_counts(sum(map(replay.gt_unmatched, k)), sum(map(replay.gt_duplicates, k))),
        metrics=Accuracy.from_confusion(cm, label_set.names) if cm is not None else None,
        latency_ms=tally.latency(), fps=tally.pipeline_fps(), throughput_fps=tally.throughput_fps(loop_s),
        overhead_ms=tally.overhead(), overhead_pct=tally.overhead_pct(), out_bag=out_bag,
        cameras=_camera_results(cameras, tallies, cms, replay, label_set, output_topics) if len(cameras) > 1 else (),
        sequences=sequences.results() if sequences is not None else ())


def evaluate_bag(opts: EvalOptions, segmenter: Segmenter, *, settings: dict[str, Any] | None = None,
                 command: str | None = None, log: Callable[[str], None] = print) -> EvaluationReport:
    """Replay ``opts.bag`` through ``segmenter``, write the report (and output bag); returns the report.

    With several cameras (:attr:`EvalOptions.image_topics`, or those a multi-camera bag records) every camera is
    replayed in the same pass and the report holds one :class:`CameraResult` per camera besides the total. A scored
    bag whose frames span several dataset sequences (``bag-from-dataset`` records them) also gets one
    :class:`SequenceResult` per sequence. With :attr:`EvalOptions.tta` every frame is segmented by a
    :class:`TTASegmenter` over ``segmenter``.
    Raises a SegRosError subclass (one sentence) for any bad input; then nothing is written.
    """
    check_options(opts)
    tta = TTASegmenter(segmenter, opts.tta) if opts.tta is not None else None
    segment: FrameSegmenter = tta.segment if tta is not None else segmenter.segment
    label_set = segmenter.label_set
    gt_dir = GroundTruthDir(opts.gt_dir, opts.gt_match) if opts.gt_dir is not None else None
    wall0 = time.perf_counter()
    with BagReader(opts.bag) as reader:
        info = reader.info
        cameras = resolve_cameras(reader, opts, label_set)
        several = len(cameras) > 1
        gt_source = _ground_truth_source(cameras, gt_dir)
        totals = [c.image_count if opts.limit is None else min(c.image_count, opts.limit) for c in cameras]
        output_topics = [opts.camera_output_topics(c.name if several else None) for c in cameras]
        cam_topics = [t.name for t in info.topics if t.msgtype == CAMERA_INFO] if opts.out_bag else []
        writer = (BagWriter(opts.out_bag, distro=opts.out_distro, storage=opts.out_storage or info.storage,
                            overwrite=opts.overwrite) if opts.out_bag else None)
        try:
            with staged_output(opts.out) as stage:
                replay = Replay(reader, [(c.image_topic, c.gt_topic) for c in cameras], round(opts.gt_window_s * 1e9),
                                cam_topics, (lambda m: writer.write_raw(m.topic, m.msgtype, m.raw, m.log_time_ns))
                                if writer else None)
                cms = [ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
                       if c.gt_topic is not None or gt_dir is not None else None for c in cameras]
                sequences = _sequence_tally(info, cameras, cms, label_set)
                tallies, loop_s = _replay(replay, segment, label_set, opts, gt_dir, cms, writer, totals,
                                          output_topics, sequences)
                tally = RunTally.combined(tallies)
                out_bag = (OutputBag(str(opts.out_bag), tuple(t for ts in output_topics for t in ts))
                           if opts.out_bag else None)
                report = _assemble_report(info, cameras, gt_source, segmenter, tta, tally, tallies, cms, sequences,
                                          replay, loop_s, out_bag, output_topics, settings or {}, command)
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
