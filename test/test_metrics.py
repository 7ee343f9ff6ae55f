import numpy as np
import pytest

from seg_ros.core.metrics import ConfusionMatrix


def test_hand_computed_scores():
    gt = np.array([[0, 0, 1, 1], [2, 2, 9, 9]], np.uint8)  # 9 = ignore
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]], np.uint8)
    cm = ConfusionMatrix(3, ignore_id=9)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU_c = TP / (TP + FP + FN): class 0: 1 / (1 + 1 + 1), class 1: 2 / (2 + 1 + 0), class 2: 1 / (1 + 0 + 1)
    assert cm.iou() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    assert cm.total == 6


def test_classes_absent_everywhere_are_left_out_of_the_mean():
    cm = ConfusionMatrix(4, ignore_id=255)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    iou = cm.iou()
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    assert cm.miou() == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert np.isnan(cm.class_accuracy()[3])


def test_accumulates_over_frames_like_one_big_frame(rng):
    a = ConfusionMatrix(5)
    b = ConfusionMatrix(5)
    gts = [rng.integers(0, 5, (7, 9)) for _ in range(4)]
    preds = [rng.integers(0, 5, (7, 9)) for _ in range(4)]
    for p, g in zip(preds, gts):
        a.update(p, g)
    b.update(np.concatenate(preds), np.concatenate(gts))
    assert (a.matrix == b.matrix).all()
    c = ConfusionMatrix(5)
    c.merge(a)
    assert c.miou() == a.miou()


def test_bad_ids_and_shapes_raise():
    cm = ConfusionMatrix(3, ignore_id=255)
    with pytest.raises(ValueError, match=r"label ids \[7\] outside 0..2"):
        cm.update(np.zeros(2, np.uint8), np.array([0, 7], np.uint8))
    with pytest.raises(ValueError, match="prediction holds"):
        cm.update(np.array([0, 3]), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros(3), np.zeros(2))
    assert np.isnan(ConfusionMatrix(2).miou())


@pytest.mark.parametrize("num_classes,ignore_id", [(11, 11), (19, 255), (3, 200)])
def test_uint8_fast_path_equals_the_general_path(rng, num_classes, ignore_id):
    gt = rng.integers(0, num_classes, (37, 53)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = ignore_id
    pred = rng.integers(0, num_classes, (37, 53)).astype(np.uint8)
    fast, general = ConfusionMatrix(num_classes, ignore_id), ConfusionMatrix(num_classes, ignore_id)
    fast.update(pred, gt)
    general.update(pred.astype(np.int64), gt.astype(np.int64))
    assert fast.matrix.tolist() == general.matrix.tolist() and fast.total == int((gt != ignore_id).sum())
    bad_gt = gt.copy()
    bad_gt[0, 0] = num_classes + 1 if num_classes + 1 != ignore_id else num_classes + 2
    with pytest.raises(ValueError, match=rf"ground truth holds label ids \[{bad_gt[0, 0]}\]"):
        ConfusionMatrix(num_classes, ignore_id).update(pred, bad_gt)
    bad_pred = pred.copy()
    bad_pred[1, 1] = num_classes
    with pytest.raises(ValueError, match="prediction holds label ids"):
        ConfusionMatrix(num_classes, ignore_id).update(bad_pred, gt)
