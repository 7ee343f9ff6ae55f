import numpy as np
import pytest

from seg_ros.core.labels import (
    CAMVID,
    CITYSCAPES,
    CITYSCAPES_LABEL_TO_TRAIN,
    CITYSCAPES_TRAIN_TO_LABEL,
    VOC,
    LabelSet,
    LabelSetError,
    get_label_set,
)


def test_camvid_matches_the_dataset_readme():
    assert CAMVID.num_classes == 11
    assert CAMVID.ignore_id == 11
    assert CAMVID.names[3] == "Road" and CAMVID.colors[3] == (128, 64, 128)
    assert CAMVID.names[4] == "Pavement" and CAMVID.colors[4] == (60, 40, 222)
    assert CAMVID.names[10] == "Bicyclist" and CAMVID.colors[10] == (0, 128, 192)
    assert tuple(CAMVID.palette[11]) == (0, 0, 0)


def test_cityscapes_train_ids_and_official_colours():
    assert CITYSCAPES.num_classes == 19 and CITYSCAPES.ignore_id == 255
    assert CITYSCAPES.names[0] == "road" and CITYSCAPES.colors[0] == (128, 64, 128)
    assert CITYSCAPES.names[10] == "sky" and CITYSCAPES.colors[10] == (70, 130, 180)
    assert CITYSCAPES.names[13] == "car" and CITYSCAPES.colors[13] == (0, 0, 142)
    assert CITYSCAPES.names[18] == "bicycle" and CITYSCAPES.colors[18] == (119, 11, 32)


@pytest.mark.parametrize("label_id,train_id", [
    (0, 255), (1, 255), (6, 255), (7, 0), (8, 1), (9, 255), (11, 2), (14, 255), (17, 5), (18, 255),
    (19, 6), (20, 7), (21, 8), (23, 10), (24, 11), (26, 13), (29, 255), (30, 255), (31, 16), (33, 18),
])
def test_cityscapes_label_id_to_train_id(label_id, train_id):
    assert CITYSCAPES_LABEL_TO_TRAIN[label_id] == train_id


def test_cityscapes_mapping_round_trips():
    train_ids = np.arange(19, dtype=np.uint8)
    assert (CITYSCAPES_LABEL_TO_TRAIN[CITYSCAPES_TRAIN_TO_LABEL[train_ids]] == train_ids).all()
    assert (CITYSCAPES_LABEL_TO_TRAIN != 255).sum() == 19


def test_voc_devkit_colour_map():
    assert VOC.num_classes == 21
    assert VOC.colors[0] == (0, 0, 0)
    assert VOC.colors[1] == (128, 0, 0)
    assert VOC.colors[15] == (192, 128, 128)  # person
    assert VOC.colors[20] == (0, 64, 128)  # tvmonitor
    assert tuple(VOC.palette[255]) == (224, 224, 192)


def test_colorize_uses_palette_and_ignore_colour():
    labels = np.array([[0, 3], [11, 10]], np.uint8)
    rgb = CAMVID.colorize(labels)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == (128, 64, 128) and tuple(rgb[1, 0]) == (0, 0, 0)


def test_dict_round_trip_and_lookup():
    for ls in (CAMVID, CITYSCAPES, VOC):
        assert LabelSet.from_dict(ls.to_dict()) == ls
        assert get_label_set(ls.name.upper()) is ls
    with pytest.raises(LabelSetError, match="unknown label set"):
        get_label_set("kitti")


def test_malformed_label_sets_are_rejected():
    with pytest.raises(LabelSetError, match="names but"):
        LabelSet("x", ("a", "b"), ((0, 0, 0),))
    with pytest.raises(LabelSetError, match="ignore id"):
        LabelSet("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), ignore_id=1)
    with pytest.raises(LabelSetError, match="RGB"):
        LabelSet("x", ("a",), ((0, 0, 300),))
    with pytest.raises(LabelSetError, match="malformed"):
        LabelSet.from_dict({"names": ["a"]})
    assert LabelSet("one", ("thing",), ((1, 2, 3),)).num_classes == 1
