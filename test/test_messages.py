"""Image message conversion against the real ROS 2 message definitions (rosbags typestore), CDR round trips."""

import array
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from seg_ros.core.labels import CAMVID
from seg_ros.io.messages import (
    SUPPORTED_ENCODINGS,
    MessageError,
    array_to_image_fields,
    compressed_to_rgb,
    confidence_image,
    encode_rgb,
    image_message,
    image_to_array,
    image_to_rgb,
    label_info_json,
    label_info_message,
)
from seg_ros.synthetic import generate_scene

TS = get_typestore(Stores.ROS2_KILTED)
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id="camera")


def _round_trip(msg):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _image(h, w, enc, data, step, big=0):
    return _round_trip(Image(header=HEADER, height=h, width=w, encoding=enc, is_bigendian=big, step=step,
                             data=np.frombuffer(bytes(data), np.uint8).copy()))


@pytest.fixture(scope="module")
def rgb():
    return generate_scene(3, (48, 64)).image  # a real scene: smooth regions and edges


def _pad(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Rows of bytes (h, row) padded to step = row + pad."""
    h = rows.shape[0]
    out = np.zeros((h, rows.shape[1] + pad), np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.tobytes(), rows.shape[1] + pad


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_are_exact(rgb, enc, pad):
    conv = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA, "bgra8": cv2.COLOR_RGB2BGRA}[enc]
    px = rgb if conv is None else cv2.cvtColor(rgb, conv)
    data, step = _pad(px.reshape(48, -1), pad)
    assert (image_to_rgb(_image(48, 64, enc, data, step)) == rgb).all()


@pytest.mark.parametrize("pad", [0, 3])
def test_mono8(rgb, pad):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    data, step = _pad(gray, pad)
    out = image_to_rgb(_image(48, 64, "mono8", data, step))
    assert out.shape == (48, 64, 3) and (out[..., 0] == gray).all() and (out[..., 2] == gray).all()


@pytest.mark.parametrize("big", [0, 1])
def test_mono16_both_byte_orders(big):
    v = (np.arange(48 * 64, dtype=np.uint32) * 21 % 65536).astype(np.uint16).reshape(48, 64)
    data, step = _pad(v.astype(">u2" if big else "<u2").view(np.uint8).reshape(48, -1), 4)
    out = image_to_rgb(_image(48, 64, "mono16", data, step, big))
    assert (out[..., 1] == (v >> 8)).all()


@pytest.mark.parametrize("enc,code", [("yuv422", cv2.COLOR_YUV2RGB_UYVY), ("yuv422_yuy2", cv2.COLOR_YUV2RGB_YUY2)])
def test_yuv422_packings(rgb, enc, code):
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    y, u, v = (yuv[..., i].astype(np.int32) for i in range(3))
    u2 = ((u[:, 0::2] + u[:, 1::2]) // 2).astype(np.uint8)
    v2 = ((v[:, 0::2] + v[:, 1::2]) // 2).astype(np.uint8)
    packed = np.empty((48, 64 * 2), np.uint8)
    if enc == "yuv422":  # UYVY
        packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = u2, y[:, 0::2], v2, y[:, 1::2]
    else:  # YUYV
        packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = y[:, 0::2], u2, y[:, 1::2], v2
    data, step = _pad(packed, 8)
    out = image_to_rgb(_image(48, 64, enc, data, step))
    assert (out == cv2.cvtColor(packed.reshape(48, 64, 2), code)).all()
    # chroma subsampling loses a little; the picture must still be the same one
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 8


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_recover_the_colours(pattern):
    # Flat colour patches: demosaicing is exact away from the patch borders.
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 40, 10)
    rgb[:, 32:] = (20, 90, 220)
    idx = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty((48, 64), np.uint8)
    for k, ch in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, idx[ch]]
    out = image_to_rgb(_image(48, 64, f"bayer_{pattern}8", mosaic.tobytes(), 64))
    inner = (slice(4, -4), np.r_[4:28, 36:60])
    assert np.abs(out[inner].astype(int) - rgb[inner].astype(int)).max() <= 2


def test_every_supported_encoding_decodes_to_rgb():
    for enc in SUPPORTED_ENCODINGS:
        bpp = {"mono16": 2, "16UC1": 2, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}.get(enc, 1)
        bpp = 2 if enc in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv") else bpp
        out = image_to_rgb(_image(4, 6, enc, bytes(range(4 * 6 * bpp)), 6 * bpp))
        assert out.shape == (4, 6, 3) and out.dtype == np.uint8, enc


@pytest.mark.parametrize("kwargs,message", [
    (dict(encoding="hsv8"), "encoding 'hsv8' is not supported"),
    (dict(height=0, width=0, step=0, data=b""), "empty"),
    (dict(step=10), "step 10 is smaller than width × bytes per pixel = 12"),
    (dict(data=bytes(40)), "40 bytes, fewer than step × height = 48"),
    (dict(encoding="yuv422", width=3, step=6), "even width"),
])
def test_malformed_images(kwargs, message):
    base = dict(height=4, width=4, encoding="rgb8", step=12, data=bytes(48))
    base.update(kwargs)
    with pytest.raises(MessageError, match=message):
        image_to_rgb(_image(base["height"], base["width"], base["encoding"], base["data"], base["step"]))


def test_data_containers_rclpy_and_python():
    class Msg:  # rclpy gives uint8[] as array.array('B')
        height, width, encoding, is_bigendian, step = 2, 2, "mono8", 0, 2
        data = array.array("B", [1, 2, 3, 4])
    assert image_to_rgb(Msg())[..., 0].tolist() == [[1, 2], [3, 4]]
    Msg.data = [1, 2, 3, 4]
    assert image_to_rgb(Msg())[1, 1, 0] == 4
    Msg.data = b"\x01\x02\x03\x04"
    assert image_to_rgb(Msg())[0, 1, 2] == 2


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_compressed_jpeg_and_png(rgb, ext):
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    msg = _round_trip(CompressedImage(header=HEADER, format=ext[1:], data=buf.reshape(-1)))
    out = compressed_to_rgb(msg)
    tol = 0 if ext == ".png" else 12
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb.astype(int)).mean() <= max(tol, 0.01)


def test_corrupt_compressed_image():
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    for data in (buf.reshape(-1)[:20], np.frombuffer(b"garbage!", np.uint8), np.zeros(0, np.uint8)):
        with pytest.raises(MessageError, match="compressed image"):
            compressed_to_rgb(_round_trip(CompressedImage(header=HEADER, format="jpeg", data=data.copy())))


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.arange(36, dtype=np.uint8).reshape(3, 4, 3),
    np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
])
def test_array_to_image_and_back(array):
    f = array_to_image_fields(array)
    msg = _round_trip(Image(header=HEADER, height=f.height, width=f.width, encoding=f.encoding,
                            is_bigendian=f.is_bigendian, step=f.step, data=f.data.copy()))
    assert msg.header.frame_id == "camera" and msg.header.stamp.nanosec == 345
    back = image_to_array(msg)
    assert back.dtype == array.dtype and (back == array).all()
    assert {2: {np.dtype(np.uint8): "mono8", np.dtype(np.float32): "32FC1"}, 3: {np.dtype(np.uint8): "rgb8"}}[
        array.ndim][array.dtype] == f.encoding


def test_array_to_image_rejects_what_it_cannot_send():
    with pytest.raises(MessageError, match="cannot encode"):
        array_to_image_fields(np.zeros((3, 4), np.int64))
    with pytest.raises(MessageError, match="cannot be sent as mono8"):
        array_to_image_fields(np.zeros((3, 4, 3), np.uint8), "mono8")
    assert array_to_image_fields(np.zeros((3, 4, 3), np.uint8), "bgr8").encoding == "bgr8"
    big = Image(header=HEADER, height=1, width=2, encoding="32FC1", is_bigendian=1, step=8,
                data=np.array([0.5, 2.0], ">f4").view(np.uint8).copy())
    assert image_to_array(big).tolist() == [[0.5, 2.0]]
    with pytest.raises(MessageError, match="not a label, colour or confidence encoding"):
        image_to_array(Image(header=HEADER, height=1, width=1, encoding="bgr8", is_bigendian=0, step=3,
                             data=np.zeros(3, np.uint8)))


@pytest.mark.parametrize("enc", SUPPORTED_ENCODINGS)
def test_encode_rgb_round_trips_through_the_real_definition(rgb, enc):
    f = encode_rgb(rgb, enc)
    msg = _image(f.height, f.width, f.encoding, f.data.tobytes(), f.step)
    out = image_to_rgb(msg)
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        assert (out == rgb).all()
    elif enc in ("mono8", "8UC1", "mono16", "16UC1"):
        assert (out[..., 0] == cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).all()
    else:  # chroma subsampling / demosaicing: the same picture, a little softer
        assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 12, enc


def test_encode_rgb_refuses_what_it_cannot_encode(rgb):
    with pytest.raises(MessageError, match="not supported"):
        encode_rgb(rgb, "hsv8")
    with pytest.raises(MessageError, match="even width"):
        encode_rgb(rgb[:, :63], "yuv422")
    with pytest.raises(MessageError, match=r"\(H, W, 3\) uint8"):
        encode_rgb(rgb[..., 0], "rgb8")


def test_image_message_builds_rosbags_and_rclpy_style_messages(rgb):
    msg = image_message(Image, HEADER, rgb)
    back = _round_trip(msg)
    assert back.header.frame_id == "camera" and back.encoding == "rgb8" and (image_to_array(back) == rgb).all()
    assert isinstance(msg.data, np.ndarray)

    class RclpyLikeImage:  # rclpy stores uint8[] as array.array('B')
        def __init__(self, **kw):
            self.__dict__.update(kw)

    m = image_message(RclpyLikeImage, HEADER, rgb[..., 0].copy())
    assert isinstance(m.data, array.array) and m.data.typecode == "B" and m.encoding == "mono8"
    assert bytes(m.data) == rgb[..., 0].tobytes()


def test_confidence_image_encodings():
    conf = np.array([[1 / 11, 0.5], [0.998, 1.0]], np.float32)
    assert confidence_image(conf, "mono8").tolist() == [[23, 128], [254, 255]]
    assert confidence_image(conf, "32FC1").dtype == np.float32
    with pytest.raises(MessageError, match="mono8 or 32FC1"):
        confidence_image(conf, "16UC1")


# vision_msgs has no wheel and is not in the rosbags store: register its two definitions.
LABEL_INFO_MSG = "std_msgs/Header header\nVisionClass[] class_map\nfloat32 threshold\n"
VISION_CLASS_MSG = "uint16 class_id\nstring class_name\n"


def test_label_info_on_the_vision_msgs_definition():
    from rosbags.typesys import get_types_from_msg

    ts = get_typestore(Stores.ROS2_KILTED)
    types = get_types_from_msg(VISION_CLASS_MSG, "vision_msgs/msg/VisionClass")
    types.update(get_types_from_msg(LABEL_INFO_MSG, "vision_msgs/msg/LabelInfo"))
    ts.register(types)
    LabelInfo, VisionClass = ts.types["vision_msgs/msg/LabelInfo"], ts.types["vision_msgs/msg/VisionClass"]
    msg = label_info_message(LabelInfo, VisionClass, HEADER, CAMVID)
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert [(c.class_id, c.class_name) for c in back.class_map] == list(enumerate(CAMVID.names))
    assert back.header.frame_id == "camera" and back.threshold == 0.0


def test_label_info_json_fallback():
    d = json.loads(label_info_json(CAMVID))
    assert d["label_set"] == CAMVID.name and d["ignore_id"] == CAMVID.ignore_id
    assert [(c["id"], c["name"], tuple(c["color"])) for c in d["classes"]] == [
        (i, n, tuple(c)) for i, (n, c) in enumerate(zip(CAMVID.names, CAMVID.colors))]


def test_io_loads_without_ros_or_the_layers_above_it():
    """seg_ros.io runs offline and under rclpy alike: importing it pulls in no ROS client library and no upper layer."""
    code = ("import sys, seg_ros.io.messages, seg_ros.io.bags, seg_ros.io.datasets; "
            "print('\\n'.join(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "seg_ros.io.bags" in loaded
    upper = ("rclpy", "seg_ros.runtime", "seg_ros.pipeline", "seg_ros.ros", "seg_ros.tools", "seg_ros.cli",
             "seg_ros.train", "seg_ros.evaluate", "seg_ros.config")
    assert [m for m in loaded if m.split(".")[0] == "rclpy" or m.startswith(upper)] == []
