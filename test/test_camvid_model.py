"""The shipped CamVid model: present, small, described, loadable by name, and as accurate as recorded.

The model is trained on every labelled CamVid frame (train + val); its honest score is the cross-validation by
held-out drive recorded in its provenance (docs/train/camvid_folds.json). The checks that read CamVid
(../shared/data/camvid, outside the repository; SEG_ROS_CAMVID overrides the folder) skip only where that
folder is absent.
"""

import os
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seg_ros.config import load_params_file, segmenter_kwargs
from seg_ros.core.labels import CAMVID
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.io.datasets import FolderDataset
from seg_ros.models.modelfile import read_meta, shipped_models
from seg_ros.pipeline import Segmenter
from seg_ros.train.folds import read_folds_report
from seg_ros.train.frames import PooledFrames
from seg_ros.train.sequences import parse_grouping

NAME = "liteseg_mobilenetv2_camvid"
REPO = Path(__file__).resolve().parents[1]
FOLDS_REPORT = REPO / "docs" / "train" / "camvid_folds.json"
CAMVID_DIR = Path(os.environ.get("SEG_ROS_CAMVID", REPO.parent / "shared" / "data" / "camvid"))
needs_camvid = pytest.mark.skipif(not (CAMVID_DIR / "val" / "images").is_dir(),
                                  reason=f"CamVid val is not at {CAMVID_DIR} (set SEG_ROS_CAMVID)")
# Mean mIoU over the three folds, each drive scored by a model that never saw it (recorded: 0.500; the 0.65
# this should reach is not met yet, docs/models.md). A retrained model must not fall below it.
HELD_OUT_FLOOR = 0.49
# Val is trained on, so its score is memory, not generalisation; it still catches a broken file or pipeline.
MIN_VAL_MIOU = 0.65
# Options that differ between the folds' command and the final model's by design.
_RUN_OPTIONS = {"--folds", "--cross-validation", "--out"}


def _provenance() -> dict:
    return read_meta(shipped_models()[NAME]).provenance


def _recipe(command: str) -> list[str]:
    """The command's arguments without those naming the run (folds, report, output) and without --quiet."""
    words, out = shlex.split(command), []
    i = 0
    while i < len(words):
        if words[i] in _RUN_OPTIONS:
            i += 2
            continue
        if words[i] != "--quiet":
            out.append(words[i])
        i += 1
    return out


def test_camvid_model_is_shipped_with_provenance():
    path = shipped_models()[NAME]
    assert path.stat().st_size <= 10 * 2**20
    meta = read_meta(path)
    assert meta.architecture == "liteseg_mobilenetv2" and meta.label_set == CAMVID
    assert meta.input_size == (540, 720)
    prov = meta.provenance
    assert prov["pretrained"] == "imagenet" and prov["dataset"] == "camvid/train+val"
    assert prov["validation"]["held_out"] is False and prov["validation"]["train_splits"] == ["train", "val"]
    assert prov["recipe"]["keep"] == "last" and prov["epochs"] == prov["epochs_planned"]
    assert prov["recipe"]["photometric"] and prov["val_miou"] >= MIN_VAL_MIOU
    assert set(prov["val_iou"]) == set(CAMVID.names)


def test_camvid_model_records_the_cross_validation_of_its_own_recipe():
    cv = _provenance()["validation"]["cross_validation"]
    report = read_folds_report(FOLDS_REPORT)
    assert cv == report.provenance(cv["report"])
    assert len(cv["fold_mious"]) == 3 and cv["mean_miou"] == pytest.approx(np.mean(cv["fold_mious"]), abs=1e-5)
    assert cv["mean_miou"] >= HELD_OUT_FLOOR
    # The folds and the final model ran the same recipe; only what names the run differs.
    assert "--folds sequence" in cv["command"] and "--keep last" in cv["command"]
    assert _recipe(cv["command"]) == _recipe(_provenance()["command"])


@needs_camvid
def test_recorded_folds_hold_out_each_camvid_drive_once():
    """The folds behind the floor partition the drives of the CamVid folder with its frame counts."""
    cv = _provenance()["validation"]["cross_validation"]
    pool = PooledFrames(CAMVID_DIR, cv["splits"])
    frames = Counter(parse_grouping(cv["group_by"]).groups(pool.stems))
    held = [seq for fold in cv["held_out"] for seq in fold]
    assert sorted(held) == sorted(frames) == ["0001TP", "0006R0", "0016E5"]
    assert cv["fold_frames"] == [[len(pool) - sum(frames[s] for s in fold), sum(frames[s] for s in fold)]
                                 for fold in cv["held_out"]]


def test_camvid_preset_selects_the_model_at_its_default_size():
    values = load_params_file(REPO / "config" / "camvid.yaml")
    kwargs = segmenter_kwargs(values)
    assert values["model"] == NAME and kwargs["resolution"] == "540x720"


def _camvid_val(seg: Segmenter) -> ConfusionMatrix:
    val = FolderDataset(CAMVID_DIR, "val")
    cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for i in range(len(val)):
        image, labels = val[i]
        cm.update(seg.segment(image, outputs=("labels",)).labels, labels)
    return cm


@pytest.mark.slow
@needs_camvid
def test_camvid_model_scores_its_recorded_miou_on_camvid_val():
    meta = read_meta(shipped_models()[NAME])
    cm = _camvid_val(Segmenter(NAME, device="cpu"))
    iou = dict(zip(CAMVID.names, np.round(cm.iou(), 4)))
    # fp16 storage and the Segmenter's resize path may move the score by a few hundredths of a point.
    assert cm.miou() >= MIN_VAL_MIOU and abs(cm.miou() - meta.provenance["val_miou"]) < 0.005, iou


@pytest.mark.slow
@needs_camvid
def test_training_validation_scores_camvid_frames_as_the_segmenter_does():
    """train.validate on the shipped model equals the Segmenter at the model file's defaults, pixel for pixel."""
    import torch

    from seg_ros.models.modelfile import load_model
    from seg_ros.train import validate

    val = FolderDataset(CAMVID_DIR, "val")
    frames = [val[i] for i in range(0, len(val), len(val) // 6)]
    seg = Segmenter(NAME, device="cpu")
    expected = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for image, labels in frames:
        expected.update(seg.segment(image, outputs=("labels",)).labels, labels)
    model, meta = load_model(shipped_models()[NAME])
    got = validate(model.to(memory_format=torch.channels_last), meta, frames, torch.device("cpu"))
    assert (got.matrix == expected.matrix).all()
