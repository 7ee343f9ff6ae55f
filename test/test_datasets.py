"""Every replay frame source satisfies the one FrameSource protocol that bag writing and replay are typed against."""

import cv2
import numpy as np
import pytest

from seg_ros.core.labels import CAMVID, CITYSCAPES
from seg_ros.io.datasets import (
    CamVidSource,
    CityscapesSource,
    FolderDataset,
    FrameSource,
    ImageFolderSource,
    SourceFrame,
    SyntheticDriveSource,
)


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


@pytest.fixture
def sources(tmp_path):
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        _png(tmp_path / "camvid/val/images" / f"{stem}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        _png(tmp_path / "camvid/val/labels" / f"{stem}.png", rng.integers(0, 11, (24, 32), dtype=np.uint8))
        _png(tmp_path / "cs/leftImg8bit/val/ulm" / f"ulm_{stem}_leftImg8bit.png",
             rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        _png(tmp_path / "cs/gtFine/val/ulm" / f"ulm_{stem}_gtFine_labelIds.png", np.full((24, 32), 7, np.uint8))
    return {
        "camvid": CamVidSource(tmp_path / "camvid", "val"),
        "cityscapes": CityscapesSource(tmp_path / "cs", "val"),
        "folder": ImageFolderSource(tmp_path / "camvid/val/images", tmp_path / "camvid/val/labels"),
        "synthetic": SyntheticDriveSource(3, 2, (32, 48)),
    }


@pytest.mark.parametrize("kind", ["camvid", "cityscapes", "folder", "synthetic"])
def test_each_source_is_a_frame_source_of_labelled_frames_in_order(sources, kind):
    source: FrameSource = sources[kind]
    assert isinstance(source, FrameSource)
    assert source.label_set is (CITYSCAPES if kind == "cityscapes" else CAMVID) and source.name
    frames = list(source)
    assert len(frames) == len(source) == 2
    assert all(isinstance(f, SourceFrame) and f.image.dtype == np.uint8 and f.image.ndim == 3 for f in frames)
    assert all(f.labels is not None and f.labels.shape == f.image.shape[:2] for f in frames)
    assert [f.name for f in source] == [f.name for f in frames]  # iterating again starts from the first frame
    if kind == "cityscapes":
        assert (frames[0].labels == 0).all()  # labelId 7 (road) is trainId 0


def test_an_indexable_training_dataset_is_not_a_frame_source(tmp_path, sources):
    assert not isinstance(FolderDataset(tmp_path / "camvid", "val"), FrameSource)
