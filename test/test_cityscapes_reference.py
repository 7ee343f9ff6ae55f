"""IoU and mIoU of seg-ros evaluate equal cityscapesscripts' evalPixelLevelSemanticLabeling on the same predictions.

A tiny Cityscapes tree (two cities, labelId ground truth including ignored labels) is written to tmp_path,
turned into a bag with bag-from-dataset, and evaluated with a real (random-weight) Cityscapes model and an output
bag. The predictions in the output bag are written as labelId PNGs and scored by cityscapesscripts' own code.

cityscapesscripts' instance-level score (nIoU) and pixel accuracy call ``np.in1d``, which numpy 2.4 removed, so
both are switched off here; the class IoU and its average do not use it.
"""

import math

import cv2
import numpy as np
import pytest
import torch
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as csev

from seg_ros.core.labels import CITYSCAPES, CITYSCAPES_LABEL_TO_TRAIN, CITYSCAPES_TRAIN_TO_LABEL
from seg_ros.evaluate import EvalOptions, evaluate_bag
from seg_ros.io.bags import BagReader, write_dataset_bag
from seg_ros.io.datasets import CityscapesSource
from seg_ros.models import build
from seg_ros.models.modelfile import ModelMeta, save_model
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_scene

SIZE = (48, 96)
FRAMES = {"bonn": ["bonn_000000_000019", "bonn_000001_000019"], "aachen": ["aachen_000000_000019"]}
IGNORED_LABEL_IDS = np.array([i for i in range(34) if CITYSCAPES_LABEL_TO_TRAIN[i] == 255], np.uint8)


@pytest.fixture(scope="module")
def cityscapes_model(tmp_path_factory):
    torch.manual_seed(3)
    model = build("liteseg_mobilenetv2", CITYSCAPES.num_classes).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("models") / "cityscapes_random.safetensors"
    save_model(path, model, ModelMeta("liteseg_mobilenetv2", CITYSCAPES, (32, 64), provenance={"dataset": "none"}))
    return path


def _ground_truth(pred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """labelIds that agree with ``pred`` (trainIds) in part: some blocks relabelled, some ignored."""
    train = pred.copy()
    h, w = train.shape
    for _ in range(6):  # blocks of other classes: false negatives / positives
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        train[y:y + rng.integers(4, 16), x:x + rng.integers(4, 24)] = rng.integers(0, 19)
    ids = CITYSCAPES_TRAIN_TO_LABEL[train]
    for _ in range(3):  # ignored regions (unlabeled, ego vehicle, parking, ...)
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        ids[y:y + rng.integers(4, 12), x:x + rng.integers(4, 20)] = rng.choice(IGNORED_LABEL_IDS)
    return ids


@pytest.mark.slow
def test_iou_and_miou_equal_cityscapesscripts(tmp_path, cityscapes_model, monkeypatch):
    seg = Segmenter(cityscapes_model, device="cpu")
    rng = np.random.default_rng(7)
    root = tmp_path / "cityscapes"
    gt_files = {}
    for n, (city, stems) in enumerate(FRAMES.items()):
        for k, stem in enumerate(stems):
            image = generate_scene(100 + 10 * n + k, SIZE).image
            (root / "leftImg8bit/val" / city).mkdir(parents=True, exist_ok=True)
            (root / "gtFine/val" / city).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "leftImg8bit/val" / city / f"{stem}_leftImg8bit.png"),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            gt = _ground_truth(seg.segment(image, ("labels",)).labels, rng)
            gt_files[stem] = root / "gtFine/val" / city / f"{stem}_gtFine_labelIds.png"
            cv2.imwrite(str(gt_files[stem]), gt)

    src = CityscapesSource(root, "val")
    order = [f.name for f in src]
    assert order == ["aachen_000000_000019", "bonn_000000_000019", "bonn_000001_000019"]  # name order per city
    write_dataset_bag(src, tmp_path / "bag", progress=False)
    report = evaluate_bag(EvalOptions(bag=tmp_path / "bag", out=tmp_path / "report", out_bag=tmp_path / "pred",
                                      charts=False, progress=False), seg, log=lambda s: None)
    assert report.frames.scored == 3

    # the predictions, as cityscapesscripts wants them: labelId PNGs named after the ground truth
    results = tmp_path / "results"
    results.mkdir()
    with BagReader(tmp_path / "pred") as r:
        preds = [m.to_labels() for m in r.images("/segmentation_node/labels")]
    pred_files = []
    for stem, p in zip(order, preds):
        pred_files.append(results / f"{stem}_pred_labelIds.png")
        cv2.imwrite(str(pred_files[-1]), CITYSCAPES_TRAIN_TO_LABEL[p])

    for name, value in (("evalInstLevelScore", False), ("evalPixelAccuracy", False), ("JSONOutput", False),
                        ("quiet", True)):
        monkeypatch.setattr(csev.args, name, value)
    ref = csev.evaluateImgLists([str(p) for p in pred_files], [str(gt_files[s]) for s in order], csev.args)

    ours = report.metrics
    assert ours.pixels == int(np.sum(ref["confMatrix"]) - sum(
        np.sum(np.asarray(ref["confMatrix"])[i]) for i in IGNORED_LABEL_IDS))
    finite = 0
    for name in CITYSCAPES.names:
        theirs = ref["classScores"][name]
        if math.isnan(theirs):
            assert ours.iou[name] is None, name
        else:
            assert ours.iou[name] == pytest.approx(theirs, rel=1e-12, abs=1e-15), name
            finite += 0.0 < theirs < 1.0
    assert ours.miou == pytest.approx(ref["averageScoreClasses"], rel=1e-12)
    # a meaningful comparison: several classes partly right, and classes with no IoU at all
    assert finite >= 3
    assert any(v is None for v in ours.iou.values())
