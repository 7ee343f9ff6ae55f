"""``seg-ros demo``: a synthetic drive written to a bag, replayed through the shipped model and scored.

The demo is the replay workflow of ``seg-ros bag-from-dataset`` + ``seg-ros evaluate`` on generated data:

1. a temporally coherent synthetic drive (:func:`seg_ros.synthetic.generate_drive`) is written as a ROS 2 bag,
   ``<out>/drive_bag`` (camera images, ground-truth labels and camera_info with identical stamps);
2. every frame of that bag is segmented with the shipped model, configured through the node's parameter schema,
   and scored against the ground truth;
3. the report (``report.md``, ``report.json``, per-class IoU, confusion matrix and latency charts) lands in
   ``<out>/`` and the segmentation in ``<out>/segmented_bag`` (labels / color / overlay topics with the input
   stamps), ready for ``ros2 bag play`` or Foxglove.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from seg_ros.bags import write_dataset_bag
from seg_ros.datasets import SyntheticDriveSource
from seg_ros.errors import ConfigError
from seg_ros.evaluate import EvalOptions, evaluate_bag, segmenter_from_params
from seg_ros.labels import CAMVID
from seg_ros.modelfile import DEFAULT_MODEL
from seg_ros.paths import check_output_dir

DRIVE_BAG = "drive_bag"
SEGMENTED_BAG = "segmented_bag"


def run_demo(out: str | os.PathLike = "demo_out", frames: int = 60, size: tuple[int, int] = (360, 640),
             model: str = DEFAULT_MODEL, device: str = "auto", seed: int = 2024, progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo; returns the evaluation report that is also written to ``<out>/report.json``."""
    if frames < 1:
        raise ConfigError(f"the demo needs at least one frame, not {frames}.")
    out = check_output_dir(out, "demo output folder")
    seg, _ = segmenter_from_params(None, {"model": str(model), "device": device})
    if seg.label_set.names != CAMVID.names:
        raise ConfigError(f"the demo scores against CamVid-11 synthetic ground truth, but model {model!r} "
                          f"predicts the {seg.label_set.name!r} label set.")
    log(f"1/2 writing a {frames}-frame synthetic drive ({size[0]}x{size[1]}) to the bag {out / DRIVE_BAG}")
    bag = write_dataset_bag(SyntheticDriveSource(seed, frames, size), out / DRIVE_BAG, overwrite=True,
                            progress=progress)
    log(f"2/2 replaying it through {seg.describe()}")
    report = evaluate_bag(
        EvalOptions(bag=bag.path, out=out, out_bag=out / SEGMENTED_BAG, overwrite=True, progress=progress),
        seg, settings={"demo": True, "model": str(model), "device": device},
        command=f"seg-ros demo --out {out} --frames {frames} --size {size[0]}x{size[1]}", log=log)
    log("")
    log(f"Report:  {out / 'report.md'} (mIoU, per-class IoU, latency p50/p90/p99 per stage), {out / 'report.json'}")
    log(f"Charts:  {out / 'iou_per_class.png'}, {out / 'confusion_matrix.png'}, {out / 'latency_histogram.png'}")
    log(f"Bags:    {out / DRIVE_BAG} (input: {bag.image_topic}, {bag.gt_topic}, {bag.camera_info_topic})")
    log(f"         {out / SEGMENTED_BAG} (/segmentation_node/labels, /color, /overlay with the input stamps)")
    log(f"Replay:  ros2 bag play {out / SEGMENTED_BAG}   (or open it in Foxglove Studio)")
    log("Note: synthetic scenes are a smoke test of the pipeline, not a measure of accuracy on real data.")
    return report
