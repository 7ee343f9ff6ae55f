"""Bag I/O through rosbags: real bags written to tmp paths in both storages and both metadata versions."""

import json

import cv2
import numpy as np
import pytest
import yaml

from seg_ros.cli import main
from seg_ros.core.errors import InputError
from seg_ros.core.labels import CAMVID, CITYSCAPES_LABEL_TO_TRAIN
from seg_ros.io.bags import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    BagCorruptError,
    BagNotFoundError,
    BagReader,
    BagTopicError,
    BagWriteError,
    BagWriter,
    CameraIntrinsics,
    CameraTopics,
    EmptyBagError,
    read_bag_info,
    recorded_cameras,
    recorded_sequences,
    sequence_runs,
    write_dataset_bag,
    write_multi_camera_bag,
)
from seg_ros.io.datasets import CamVidSource, CityscapesSource, ImageFolderSource, SyntheticDriveSource, sequence_of
from seg_ros.io.messages import MessageError
from seg_ros.synthetic import generate_drive

T0 = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def scenes():
    return list(generate_drive(5, 4, (48, 64)))


def _write_sample(path, scenes, distro="jazzy", storage="sqlite3"):
    with BagWriter(path, distro=distro, storage=storage, custom={"k": "v"}) as w:
        for i, s in enumerate(scenes):
            t = T0 + i * 100_000_000
            w.write_image("/cam/image_raw", s.image, t, "cam")
            w.write_compressed("/cam/image_raw/compressed", s.image, t, "cam", quality=95)
            w.write_image("/cam/labels", s.labels, t, "cam")
            w.write_camera_info("/cam/camera_info", CameraIntrinsics.pinhole(48, 64, 40.0, 41.0, 32.0, 24.0), t, "cam")
    return path


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("distro,version", [("humble", 8), ("jazzy", 9)])
def test_round_trip_in_both_storages_and_versions(tmp_path, scenes, storage, distro, version):
    bag = _write_sample(tmp_path / "bag", scenes, distro, storage)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == version and meta["storage_identifier"] == storage
    assert meta["relative_file_paths"] == [f"bag.{'mcap' if storage == 'mcap' else 'db3'}"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    with BagReader(bag) as r:
        info = r.info
        assert (info.version, info.storage, info.message_count) == (version, storage, 16)
        assert info.custom == {"k": "v"}
        assert info.start_ns == T0 and info.end_ns >= T0 + 300_000_000
        assert {t.name: (t.msgtype, t.count) for t in info.topics} == {
            "/cam/image_raw": (IMAGE, 4), "/cam/image_raw/compressed": (COMPRESSED_IMAGE, 4),
            "/cam/labels": (IMAGE, 4), "/cam/camera_info": (CAMERA_INFO, 4)}
        assert [t.name for t in info.image_topics()] == ["/cam/image_raw", "/cam/image_raw/compressed", "/cam/labels"]
        raw = list(r.images("/cam/image_raw"))
        assert [m.index for m in raw] == [0, 1, 2, 3]
        assert [m.stamp_ns for m in raw] == [T0 + i * 100_000_000 for i in range(4)]
        assert [m.log_time_ns for m in raw] == [m.stamp_ns for m in raw]
        assert all(m.frame_id == "cam" and m.encoding == "rgb8" for m in raw)
        for m, s in zip(raw, scenes):
            rgb = m.to_rgb()
            assert np.array_equal(rgb, s.image) and rgb.flags.writeable  # a copy of the read-only stored bytes
        for m, s in zip(r.images("/cam/labels"), scenes):
            assert np.array_equal(m.to_labels(), s.labels)
        for m, s in zip(r.images("/cam/image_raw/compressed"), scenes):
            assert m.compressed and m.encoding == "rgb8; jpeg compressed bgr8"
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            assert np.array_equal(m.msg.data, jpg.reshape(-1))
            assert np.array_equal(m.to_rgb(), cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        infos = list(r.camera_infos("/cam/camera_info"))
        assert len(infos) == 4 and infos[2].stamp_ns == T0 + 200_000_000
        assert infos[0].k == (40.0, 0.0, 32.0, 0.0, 41.0, 24.0, 0.0, 0.0, 1.0) and infos[0].calibrated
        assert (infos[0].height, infos[0].width, infos[0].frame_id) == (48, 64, "cam")
        order = [(m.topic, m.log_time_ns) for m in r.messages(["/cam/image_raw", "/cam/labels"])]
        assert [t for _, t in order] == sorted(t for _, t in order)


@pytest.mark.parametrize("storage,suffix", [("sqlite3", ".db3"), ("mcap", ".mcap")])
def test_bare_storage_files_are_read_too(tmp_path, scenes, storage, suffix):
    bag = _write_sample(tmp_path / "bag", scenes, storage=storage)
    with BagReader(bag / f"bag{suffix}") as r:
        assert r.info.version is None and r.info.storage == storage
        assert [m.stamp_ns for m in r.images("/cam/image_raw")][-1] == T0 + 300_000_000


def test_writer_is_atomic_and_refuses_to_overwrite(tmp_path, scenes):
    dest = tmp_path / "bag"
    with pytest.raises(RuntimeError):
        with BagWriter(dest) as w:
            w.write_image("/cam/image_raw", scenes[0].image, T0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the bag nor a staging folder
    _write_sample(dest, scenes[:1])
    with pytest.raises(BagWriteError, match="already exists"):
        BagWriter(dest)
    with BagWriter(dest, overwrite=True) as w:
        w.write_image("/other", scenes[1].labels, T0)
    with BagReader(dest) as r:
        assert [t.name for t in r.info.topics] == ["/other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


@pytest.mark.parametrize("kwargs,match", [({"distro": "noetic"}, "unknown ROS 2 distribution"),
                                          ({"storage": "rosbag1"}, "unknown bag storage")])
def test_writer_options_are_checked(tmp_path, kwargs, match):
    with pytest.raises(BagWriteError, match=match):
        BagWriter(tmp_path / "b", **kwargs)


def test_writer_rejects_relative_topics_and_type_clashes(tmp_path, scenes):
    with BagWriter(tmp_path / "b") as w:
        with pytest.raises(BagWriteError, match="absolute"):
            w.write_image("camera/image", scenes[0].image, T0)
        w.write_image("/a", scenes[0].image, T0)
        with pytest.raises(BagWriteError, match="already"):
            w.write_camera_info("/a", CameraIntrinsics(48, 64), T0)


def test_topic_errors_list_the_image_topics(tmp_path, scenes):
    bag = _write_sample(tmp_path / "bag", scenes)
    with BagReader(bag) as r:
        with pytest.raises(BagTopicError) as e:
            r.require_topic("/nope")
        msg = str(e.value)
        assert "/nope is not in bag" in msg
        assert "/cam/image_raw (sensor_msgs/Image, 4 messages)" in msg and "/cam/image_raw/compressed" in msg
        assert "/cam/camera_info" not in msg
        with pytest.raises(BagTopicError, match="carries sensor_msgs/msg/CameraInfo"):
            r.require_topic("/cam/camera_info")


def test_empty_bag_and_empty_topic(tmp_path, scenes):
    with BagWriter(tmp_path / "empty"):
        pass
    with BagReader(tmp_path / "empty") as r:
        assert r.info.message_count == 0 and r.info.topics == ()
        with pytest.raises(EmptyBagError, match="is empty"):
            r.require_topic("/cam/image_raw")
    with BagWriter(tmp_path / "notopic") as w:
        w.add_topic("/cam/image_raw", IMAGE)
        w.write_image("/other", scenes[0].image, T0)
    with BagReader(tmp_path / "notopic") as r:
        with pytest.raises(EmptyBagError, match="holds no messages"):
            r.require_topic("/cam/image_raw")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_truncated_storage_is_reported_as_corrupt(tmp_path, scenes, storage):
    bag = _write_sample(tmp_path / "bag", scenes, storage=storage)
    f = next(p for p in bag.iterdir() if p.name != "metadata.yaml")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagCorruptError, match="truncated or corrupt"):
        with BagReader(bag) as r:
            list(r.images("/cam/image_raw"))


def test_garbage_metadata_and_non_bags(tmp_path, scenes):
    bag = _write_sample(tmp_path / "bag", scenes)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [1, 2\n")
    with pytest.raises(BagCorruptError, match="cannot be opened"):
        BagReader(bag)
    with pytest.raises(BagNotFoundError, match="does not exist"):
        BagReader(tmp_path / "absent")
    (tmp_path / "folder").mkdir()
    with pytest.raises(BagNotFoundError, match="no metadata.yaml"):
        BagReader(tmp_path / "folder")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(BagNotFoundError, match="not a ROS 2 bag"):
        BagReader(tmp_path / "x.txt")


def test_garbled_message_and_undecodable_encoding(tmp_path, scenes):
    with BagWriter(tmp_path / "b") as w:
        w.write_raw("/garbled", IMAGE, b"\x00\x01\x00\x00\x05", T0)
        w.write_image("/float", np.zeros((4, 5), np.float32), T0)
    with BagReader(tmp_path / "b") as r:
        with pytest.raises(BagCorruptError, match="truncated or corrupt"):
            list(r.images("/garbled"))
        (m,) = r.images("/float")
        with pytest.raises(MessageError, match=r"frame 0 of /float .*encoding '32FC1' is not supported"):
            m.to_rgb()
        with pytest.raises(MessageError, match="mono8"):
            m.to_labels()


def test_dataset_bag_from_a_synthetic_drive(tmp_path):
    src = SyntheticDriveSource(11, 3, (48, 64))
    s = write_dataset_bag(src, tmp_path / "drive", fps=4.0, storage="mcap", distro="humble", progress=False,
                          start_ns=5_000_000_000)
    assert (s.frames, s.labelled, s.version, s.image_topic) == (3, 3, 8, "/camera/image_raw")
    scenes = list(generate_drive(11, 3, (48, 64)))
    with BagReader(tmp_path / "drive") as r:
        assert r.info.custom["seg_ros.gt_label_set"] == "camvid"
        assert r.info.custom["seg_ros.gt_topic"] == "/camera/gt_labels"
        imgs = list(r.images("/camera/image_raw"))
        gts = list(r.images("/camera/gt_labels"))
        infos = list(r.camera_infos("/camera/camera_info"))
    stamps = [5_000_000_000 + 250_000_000 * i for i in range(3)]
    assert [m.stamp_ns for m in imgs] == [m.stamp_ns for m in gts] == [i.stamp_ns for i in infos] == stamps
    for im, gt, sc in zip(imgs, gts, scenes):
        assert np.array_equal(im.to_rgb(), sc.image) and np.array_equal(gt.to_labels(), sc.labels)
    assert not infos[0].calibrated and (infos[0].height, infos[0].width) == (48, 64)


def test_dataset_bag_jpeg_and_limit(tmp_path):
    s = write_dataset_bag(SyntheticDriveSource(1, 5, (48, 64)), tmp_path / "b", image_format="jpeg", limit=2,
                          progress=False)
    assert s.frames == 2 and s.image_topic == "/camera/image_raw/compressed"
    with BagReader(tmp_path / "b") as r:
        assert r.info.topic("/camera/image_raw/compressed").msgtype == COMPRESSED_IMAGE
        assert r.info.topic("/camera/gt_labels").msgtype == IMAGE  # labels stay lossless
        assert r.info.topic("/camera/gt_labels").count == 2


def test_dataset_bag_options_are_checked(tmp_path):
    src = SyntheticDriveSource(1, 2, (48, 64))
    for kw, match in (({"fps": 0}, "frame rate"), ({"image_format": "png"}, "image format"),
                      ({"gt_topic": "/camera/image_raw"}, "three different topics"), ({"limit": 0}, "limit")):
        with pytest.raises(BagWriteError, match=match):
            write_dataset_bag(src, tmp_path / "b", progress=False, **kw)
    assert not (tmp_path / "b").exists()


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_cityscapes_source_maps_label_ids_and_keeps_name_order_per_city(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cs"
    names = {"bonn": ["bonn_000000_000019", "bonn_000001_000019"], "aachen": ["aachen_000002_000019"]}
    for city, stems in names.items():
        for stem in stems:
            _png(root / "leftImg8bit/val" / city / f"{stem}_leftImg8bit.png", rng.integers(0, 256, (32, 48, 3),
                                                                                          dtype=np.uint8))
            if stem != "bonn_000001_000019":  # one frame without ground truth
                _png(root / "gtFine/val" / city / f"{stem}_gtFine_labelIds.png",
                     rng.integers(0, 34, (32, 48), dtype=np.uint8))
    cam = root / "camera/val/aachen/aachen_000002_000019_camera.json"
    cam.parent.mkdir(parents=True)
    cam.write_text(json.dumps({"intrinsic": {"fx": 2262.5, "fy": 2265.3, "u0": 1096.9, "v0": 513.1}}))
    src = CityscapesSource(root, "val")
    frames = list(src)
    assert [f.name for f in frames] == ["aachen_000002_000019", "bonn_000000_000019", "bonn_000001_000019"]
    ids = cv2.imread(str(root / "gtFine/val/aachen/aachen_000002_000019_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(frames[0].labels, CITYSCAPES_LABEL_TO_TRAIN[ids])
    assert set(np.unique(frames[0].labels)) <= set(range(19)) | {255}
    assert frames[2].labels is None
    assert frames[0].intrinsics == (2262.5, 2265.3, 1096.9, 513.1) and frames[1].intrinsics is None
    assert [f.name for f in CityscapesSource(root, "val", ["bonn"])] == ["bonn_000000_000019", "bonn_000001_000019"]
    with pytest.raises(InputError, match="no city 'paris'"):
        CityscapesSource(root, "val", ["paris"])
    with pytest.raises(InputError, match="does not exist"):
        CityscapesSource(root, "train")
    s = write_dataset_bag(src, tmp_path / "bag", progress=False)
    assert (s.frames, s.labelled, s.label_set) == (3, 2, "cityscapes")
    with BagReader(tmp_path / "bag") as r:
        infos = list(r.camera_infos("/camera/camera_info"))
    assert infos[0].k[0] == 2262.5 and not infos[1].calibrated


def test_image_folder_with_partial_labels_and_camvid_layout(tmp_path, scenes):
    for i, s in enumerate(scenes):
        _png(tmp_path / "imgs" / f"f{i}.png", cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        if i != 2:
            _png(tmp_path / "labs" / f"f{i}.png", s.labels)
    frames = list(ImageFolderSource(tmp_path / "imgs", tmp_path / "labs"))
    assert [f.name for f in frames] == ["f0", "f1", "f2", "f3"]
    assert frames[2].labels is None and np.array_equal(frames[3].labels, scenes[3].labels)
    assert np.array_equal(frames[0].image, scenes[0].image)
    # the CamVid layout
    for split in ("val",):
        for i, s in enumerate(scenes[:2]):
            _png(tmp_path / "camvid" / split / "images" / f"0001TP_{i:06d}.png", cv2.cvtColor(s.image,
                                                                                              cv2.COLOR_RGB2BGR))
            _png(tmp_path / "camvid" / split / "labels" / f"0001TP_{i:06d}.png", s.labels)
    src = CamVidSource(tmp_path / "camvid", "val")
    assert len(src) == 2 and src.label_set == CAMVID
    assert [f.name for f in src] == ["0001TP_000000", "0001TP_000001"]


def test_label_ids_outside_the_label_set_are_refused_at_conversion(tmp_path, scenes):
    bad = scenes[0].labels.copy()
    bad[0, 0] = 40
    _png(tmp_path / "imgs" / "a.png", scenes[0].image)
    _png(tmp_path / "labs" / "a.png", bad)
    with pytest.raises(InputError, match=r"ids \[40\] outside the camvid label set"):
        list(ImageFolderSource(tmp_path / "imgs", tmp_path / "labs"))
    bad[0, 0] = CAMVID.ignore_id  # void is fine
    _png(tmp_path / "labs" / "a.png", bad)
    assert list(ImageFolderSource(tmp_path / "imgs", tmp_path / "labs"))[0].labels[0, 0] == 11


# -- several cameras ---------------------------------------------------------------------------------------------

def test_multi_camera_bag_has_each_cameras_topics_with_the_same_stamps(tmp_path):
    s = write_multi_camera_bag([("front", SyntheticDriveSource(7, 3, (48, 64))),
                                ("rear", SyntheticDriveSource(8, 3, (48, 64)))], tmp_path / "b", fps=5.0,
                               progress=False)
    assert s.frames == 3 and [(c.topics.name, c.frames, c.labelled) for c in s.cameras] == [("front", 3, 3),
                                                                                             ("rear", 3, 3)]
    with BagReader(tmp_path / "b") as r:
        assert {t.name: (t.msgtype, t.count) for t in r.info.topics} == {
            f"/{n}/{t}": (ty, 3) for n in ("front", "rear")
            for t, ty in (("image_raw", IMAGE), ("gt_labels", IMAGE), ("camera_info", CAMERA_INFO))}
        assert r.info.custom == {
            "seg_ros.gt_label_set": "camvid", "seg_ros.cameras": "front,rear",
            **{f"seg_ros.cameras.{n}.{k}": f"/{n}/{t}" for n in ("front", "rear")
               for k, t in (("image_topic", "image_raw"), ("gt_topic", "gt_labels"),
                            ("camera_info_topic", "camera_info"))},
            "seg_ros.cameras.front.source": "synthetic drive seed 7, 3 frames at 48x64",
            "seg_ros.cameras.rear.source": "synthetic drive seed 8, 3 frames at 48x64"}
        assert recorded_cameras(r.info) == (
            CameraTopics("front", "/front/image_raw", "/front/gt_labels", "/front/camera_info"),
            CameraTopics("rear", "/rear/image_raw", "/rear/gt_labels", "/rear/camera_info"))
        images = {n: list(r.images(f"/{n}/image_raw")) for n in ("front", "rear")}
        gts = {n: list(r.images(f"/{n}/gt_labels")) for n in ("front", "rear")}
        infos = {n: list(r.camera_infos(f"/{n}/camera_info")) for n in ("front", "rear")}
    stamps = [T0 + 200_000_000 * i for i in range(3)]
    for n, seed in (("front", 7), ("rear", 8)):
        assert [m.stamp_ns for m in images[n]] == [m.stamp_ns for m in gts[n]] == [i.stamp_ns for i in infos[n]]
        assert [m.stamp_ns for m in images[n]] == stamps
        assert {m.frame_id for m in images[n]} == {m.frame_id for m in gts[n]} == {i.frame_id for i in infos[n]} == {n}
        for im, gt, sc in zip(images[n], gts[n], generate_drive(seed, 3, (48, 64))):
            assert np.array_equal(im.to_rgb(), sc.image) and np.array_equal(gt.to_labels(), sc.labels)
    assert all(not np.array_equal(f.to_rgb(), r.to_rgb()) for f, r in zip(images["front"], images["rear"]))


def test_a_one_camera_bag_records_no_cameras_and_jpeg_cameras_get_compressed_topics(tmp_path):
    write_dataset_bag(SyntheticDriveSource(1, 1, (48, 64)), tmp_path / "one", progress=False)
    with BagReader(tmp_path / "one") as r:
        assert recorded_cameras(r.info) == () and "seg_ros.cameras" not in r.info.custom
    s = write_multi_camera_bag([("left", SyntheticDriveSource(1, 2, (48, 64))),
                                ("right", SyntheticDriveSource(2, 3, (48, 64)))], tmp_path / "j", image_format="jpeg",
                               progress=False)
    assert s.frames == 2  # as many as the shortest source holds
    with BagReader(tmp_path / "j") as r:
        assert r.info.topic("/right/image_raw/compressed").msgtype == COMPRESSED_IMAGE
        assert r.info.topic("/right/image_raw/compressed").count == 2 and r.info.topic("/right/gt_labels").count == 2


def test_recorded_cameras_without_their_topics_are_corrupt_metadata(tmp_path, scenes):
    with BagWriter(tmp_path / "b", custom={"seg_ros.cameras": "front"}) as w:
        w.write_image("/front/image_raw", scenes[0].image, T0)
    with BagReader(tmp_path / "b") as r:
        with pytest.raises(BagCorruptError, match="records camera front without seg_ros.cameras.front.image_topic"):
            recorded_cameras(r.info)


def test_bag_from_dataset_writes_one_drive_per_camera(tmp_path, capsys):
    assert main(["bag-from-dataset", "--synthetic", "2", "--size", "48x64", "--seed", "40", "--cameras",
                 "front,rear_1", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 cameras of 2 frames each" in out and "camera rear_1 (synthetic drive seed 41, 2 frames at 48x64" in out
    with BagReader(tmp_path / "b") as r:
        assert [c.name for c in recorded_cameras(r.info)] == ["front", "rear_1"]
        for name, seed in (("front", 40), ("rear_1", 41)):
            first = next(r.images(f"/{name}/image_raw")).to_rgb()
            assert np.array_equal(first, next(iter(generate_drive(seed, 2, (48, 64)))).image)


@pytest.mark.parametrize("extra,message", [
    (["--cameras", "front,1rear"], "camera name '1rear' is not a ROS name token: it must start with a letter"),
    (["--cameras", "front,"], "camera name '' is not a ROS name token"),
    (["--cameras", "front,back-left"], "camera name 'back-left' is not a ROS name token"),
    (["--cameras", "front,rear,front"], "camera names must differ; front is given more than once."),
    (["--cameras", "front,rear", "--image-topic", "/x"], "--image-topic cannot be combined with --cameras"),
    (["--cameras", "front,rear", "--gt-topic", "/x", "--camera-info-topic", "/y"],
     "--gt-topic, --camera-info-topic cannot be combined with --cameras"),
    (["--cameras", "front", "--frame-id", "cam"], "--frame-id cannot be combined with --cameras"),
])
def test_bad_cameras_are_one_sentence_and_exit_2(tmp_path, capsys, extra, message):
    rc = main(["bag-from-dataset", "--synthetic", "2", "--size", "48x64", "--out", str(tmp_path / "b"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("seg-ros bag-from-dataset: error: ") and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_cameras_need_a_synthetic_source(tmp_path, capsys, scenes):
    _png(tmp_path / "imgs" / "a.png", scenes[0].image)
    rc = main(["bag-from-dataset", "--images", str(tmp_path / "imgs"), "--cameras", "front,rear",
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["seg-ros bag-from-dataset: error: --cameras goes with --synthetic N (one synthetic "
                               "drive per camera)."]
    assert not (tmp_path / "b").exists()


def test_frame_names_give_sequences_and_runs():
    assert sequence_of("0016E5_07959") == "0016E5" and sequence_of("frankfurt_000000_000294") == "frankfurt"
    assert sequence_of("000012") is None and sequence_of("_x") is None
    assert sequence_runs(["A_0", "A_1", "B_0", "A_2"]) == (("A", 2), ("B", 1), ("A", 1))
    assert sequence_runs(["A_0", "A_1"]) == () and sequence_runs(["A_0", "000001"]) == () and sequence_runs([]) == ()


def test_a_camvid_bag_of_two_sequences_records_them_and_others_do_not(tmp_path, scenes):
    names = ["0001TP_000000", "0001TP_000030", "Seq05VD_f00000", "Seq05VD_f00030"]
    for name, s in zip(names, scenes):
        _png(tmp_path / "camvid/val/images" / f"{name}.png", cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        _png(tmp_path / "camvid/val/labels" / f"{name}.png", s.labels)
    write_dataset_bag(CamVidSource(tmp_path / "camvid", "val"), tmp_path / "two", progress=False)
    write_dataset_bag(CamVidSource(tmp_path / "camvid", "val"), tmp_path / "limited", limit=3, progress=False)
    write_dataset_bag(CamVidSource(tmp_path / "camvid", "val"), tmp_path / "one", limit=2, progress=False)
    write_dataset_bag(SyntheticDriveSource(1, 2, (48, 64)), tmp_path / "drive", progress=False)
    with BagReader(tmp_path / "two") as r:
        assert r.info.custom["seg_ros.sequences"] == '[["0001TP", 2], ["Seq05VD", 2]]'
        assert recorded_sequences(r.info) == (("0001TP", 2), ("Seq05VD", 2))
    assert recorded_sequences(read_bag_info(tmp_path / "limited")) == (("0001TP", 2), ("Seq05VD", 1))
    for single in ("one", "drive"):  # one sequence, or names without one: metadata as before
        info = read_bag_info(tmp_path / single)
        assert recorded_sequences(info) == () and "seg_ros.sequences" not in info.custom
        assert set(info.custom) == {"seg_ros.gt_label_set", "seg_ros.image_topic", "seg_ros.gt_topic",
                                    "seg_ros.source"}


@pytest.mark.parametrize("text", ["[[\"A\", 0]]", "{", "[[\"A\"]]", "[[1, 2]]", "7"])
def test_garbled_recorded_sequences_are_corrupt_metadata(tmp_path, scenes, text):
    with BagWriter(tmp_path / "b", custom={"seg_ros.sequences": text}) as w:
        w.write_image("/camera/image_raw", scenes[0].image, T0)
    with BagReader(tmp_path / "b") as r:
        with pytest.raises(BagCorruptError, match="records its sequences garbled"):
            recorded_sequences(r.info)
