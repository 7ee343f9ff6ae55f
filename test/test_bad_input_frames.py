"""Hostile and careless input frames and model files: each is refused with one sentence, before any large allocation.

Real crafted inputs: a 333-byte JPEG whose SOF declares 30000x30000, a 196 KB PNG of 8192x8192 zeros, raw
Images whose header lies about their size, other image formats inside a CompressedImage, truncated data,
crafted model-file metadata; decoded through the real message classes (rosbags) and the node's engine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import resource
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from rosbags.typesys import Stores, get_typestore
from safetensors.torch import save

from seg_ros.core.limits import DEFAULT_MAX_PIXELS
from seg_ros.io.messages import MessageError, compressed_to_rgb, image_to_array, image_to_rgb
from seg_ros.models.modelfile import (
    CHECKSUM_KEY,
    MAX_HEADER_BYTES,
    MAX_METADATA_CHARS,
    METADATA_KEY,
    ModelFileError,
    load_model,
    read_meta,
    shipped_models,
)
from seg_ros.ros.engine import SegmentationEngine
from seg_ros.synthetic import generate_scene

TS = get_typestore(Stores.ROS2_KILTED)
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]


def _rt(msg):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _header(sec: int = 1) -> object:
    return Header(stamp=Time(sec=sec, nanosec=0), frame_id="camera")


def compressed(data: bytes, fmt: str = "jpeg", sec: int = 1):
    return _rt(CompressedImage(header=_header(sec), format=fmt, data=np.frombuffer(data, np.uint8).copy()))


def raw(h: int, w: int, enc: str, step: int, data: bytes, sec: int = 1):
    return _rt(Image(header=_header(sec), height=h, width=w, encoding=enc, is_bigendian=0, step=step,
                     data=np.frombuffer(data, np.uint8).copy()))


def jpeg_bomb(height: int = 30000, width: int = 30000) -> bytes:
    """A valid 8x8 grey JPEG whose SOF0 header is rewritten to declare ``height`` x ``width`` (333 bytes)."""
    _, enc = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))
    data = bytearray(enc.tobytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)  # marker, length (2), precision (1), then H, W
    return bytes(data)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@functools.lru_cache(maxsize=2)
def png_bomb(height: int = 8192, width: int = 8192) -> bytes:
    """A valid RGB PNG of zeros, compressed row by row (never held in memory): 196 KB at 8192x8192."""
    z = zlib.compressobj(9)
    row = bytes(width * 3 + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def encoded(ext: str, array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return buf.tobytes()


def pillow_encoded(image: PILImage.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text and "Traceback" not in text


# -- decompression bombs -------------------------------------------------------------------------


def test_jpeg_bomb_is_refused_from_its_header():
    data = jpeg_bomb()
    assert len(data) == 333
    with pytest.raises(MessageError) as e:
        compressed_to_rgb(compressed(data))
    assert str(e.value) == ("compressed image (format 'jpeg', JPEG) declares 30000x30000 = 900,000,000 "
                            f"pixels, more than the pixel budget of {DEFAULT_MAX_PIXELS:,}; raise max_pixels (node "
                            "parameter) or --max-pixels (CLI) if this size is real.")


def test_png_bomb_is_refused_from_its_header():
    data = png_bomb()
    assert 150_000 < len(data) < 250_000
    with pytest.raises(MessageError, match=r"PNG\) declares 8192x8192 = 67,108,864 pixels, more than "
                                           r"the pixel budget") as e:
        compressed_to_rgb(compressed(data, "png"))
    assert one_sentence(str(e.value))


def test_the_budget_is_a_parameter_of_every_decoder():
    png = encoded(".png", np.full((40, 50, 3), 7, np.uint8))
    assert compressed_to_rgb(compressed(png, "png"), max_pixels=40 * 50).shape == (40, 50, 3)
    with pytest.raises(MessageError, match="2,000 pixels, more than the pixel budget of 1,999"):
        compressed_to_rgb(compressed(png, "png"), max_pixels=40 * 50 - 1)
    msg = raw(40, 50, "mono8", 50, bytes(2000))
    assert image_to_rgb(msg, max_pixels=2000).shape == (40, 50, 3)
    assert image_to_array(msg, max_pixels=2000).shape == (40, 50)
    for decode in (image_to_rgb, image_to_array):
        with pytest.raises(MessageError, match=r"image \(mono8\) declares 40x50 = 2,000 pixels"):
            decode(msg, max_pixels=1999)


@pytest.mark.parametrize("enc,bpp", [("rgb8", 3), ("mono16", 2), ("bayer_rggb8", 1)])
def test_raw_image_declaring_30000x30000_with_short_data(enc, bpp):
    msg = raw(30000, 30000, enc, 30000 * bpp, bytes(1000))
    with pytest.raises(MessageError, match=rf"image \({enc}\) declares 30000x30000 = 900,000,000 pixels") as e:
        image_to_rgb(msg)
    assert one_sentence(str(e.value))


PEAK_RSS = """
import resource, sys
import numpy as np
from seg_ros.io.messages import MessageError, compressed_to_rgb

class Msg:
    format = "x"

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(peak_mb())
for path in sys.argv[1:]:
    msg = Msg()
    msg.data = np.fromfile(path, np.uint8)
    try:
        compressed_to_rgb(msg)
    except MessageError:
        pass
    print(peak_mb())
"""


@pytest.mark.skipif(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss == 0, reason="no ru_maxrss here")
def test_decoding_bombs_costs_no_memory(tmp_path):
    """Peak RSS of a fresh interpreter decoding both bombs (decoded, they would take 2.7 GB and 201 MB)."""
    (tmp_path / "bomb.jpg").write_bytes(jpeg_bomb())
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(tmp_path / "bomb.jpg"), str(tmp_path / "bomb.png")],
                         capture_output=True, text=True, timeout=120, check=True)
    base, after_jpeg, after_png = (float(v) for v in out.stdout.split())
    assert after_jpeg - base < 20 and after_png - base < 20, out.stdout


# -- formats, truncation, lies ---------------------------------------------------------------------


@pytest.mark.parametrize("ext,name", [(".bmp", "BMP"), (".tiff", "TIFF"), (".webp", "WEBP"), (".ppm", "PPM"),
                                      (".pgm", "PPM")])
def test_other_formats_inside_a_compressed_image_are_refused(ext, name):
    data = encoded(ext, np.full((16, 16, 3) if ext != ".pgm" else (16, 16), 90, np.uint8))
    with pytest.raises(MessageError) as e:
        compressed_to_rgb(compressed(data, "jpeg"))
    assert str(e.value) == f"compressed image (format 'jpeg') holds {name} data; only JPEG and PNG are accepted."


def test_unrecognised_bytes_are_refused():
    with pytest.raises(MessageError, match=r"holds unrecognised data \(starting 67 61 72 62\); only JPEG and PNG"):
        compressed_to_rgb(compressed(b"garbage bytes, not an image"))


def _scene_bgr() -> np.ndarray:
    return cv2.cvtColor(generate_scene(2, (48, 64)).image, cv2.COLOR_RGB2BGR)


@pytest.mark.parametrize("ext,keep,message", [
    (".jpg", 0.5, "is truncated: its data ends without the JPEG end-of-image marker"),
    (".jpg", 0.97, "is truncated: its data ends without the JPEG end-of-image marker"),
    (".png", 0.5, "is truncated: its data does not end with the PNG IEND chunk"),
    (".png", 0.99, "is truncated: its data does not end with the PNG IEND chunk"),
    (".jpg", 20 / 1e9, "has a corrupt JPEG header"),
    (".png", 20 / 1e9, "has a corrupt PNG header"),
])
def test_truncated_data(ext, keep, message):
    data = encoded(ext, _scene_bgr())
    cut = data[: max(20, int(len(data) * keep))]
    with pytest.raises(MessageError, match=message) as e:
        compressed_to_rgb(compressed(cut, ext[1:]))
    assert one_sentence(str(e.value))


def test_png_whose_header_lies_about_its_size():
    good = encoded(".png", _scene_bgr())  # 48x64
    ihdr = good.index(b"IHDR")
    payload = struct.pack(">II", 480, 640) + good[ihdr + 12: ihdr + 17]  # declare 640x480, keep depth/type
    lying = good[: ihdr - 4] + _png_chunk(b"IHDR", payload) + good[ihdr + 21:]
    with pytest.raises(MessageError, match=r"PNG of 640x480 HxW\) is corrupt: its \d+ bytes do not decode") as e:
        compressed_to_rgb(compressed(lying, "png"))
    assert one_sentence(str(e.value))


def test_opencv_pixel_limit_is_a_bad_frame():
    # Above OpenCV's own limit (2^30 pixels) with a budget that allows it: cv2.error becomes a MessageError.
    data = jpeg_bomb(65000, 65000)
    with pytest.raises(MessageError, match=r"JPEG of 65000x65000 HxW\) cannot be decoded \(.*\)\.$"):
        compressed_to_rgb(compressed(data), max_pixels=65000 * 65000)


# -- what the docs promise: any JPEG or PNG decodes to RGB --------------------------------------------


def test_grey_palette_alpha_and_16_bit_pngs_decode_to_rgb():
    grey = PILImage.new("L", (6, 4), 100)
    palette = PILImage.new("P", (6, 4), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    rgba = PILImage.new("RGBA", (6, 4), (10, 20, 30, 0))
    la = PILImage.new("LA", (6, 4), (77, 5))
    cases = [(pillow_encoded(grey, "PNG"), (100, 100, 100)), (pillow_encoded(palette, "PNG"), (10, 20, 30)),
             (pillow_encoded(rgba, "PNG"), (10, 20, 30)), (pillow_encoded(la, "PNG"), (77, 77, 77)),
             (encoded(".png", np.full((4, 6), 0x1234, np.uint16)), (0x12, 0x12, 0x12)),
             (encoded(".png", np.dstack([np.full((4, 6), v, np.uint16) for v in (0x3000, 0x2000, 0x1000)])),
              (0x10, 0x20, 0x30))]  # BGR order in OpenCV
    for data, colour in cases:
        out = compressed_to_rgb(compressed(data, "png"))
        assert out.shape == (4, 6, 3) and out.dtype == np.uint8
        assert (out == np.array(colour, np.uint8)).all(), (colour, out[0, 0])


def test_grey_and_cmyk_jpegs_decode_to_rgb():
    grey = compressed_to_rgb(compressed(pillow_encoded(PILImage.new("L", (16, 8), 100), "JPEG", quality=95)))
    assert grey.shape == (8, 16, 3) and np.abs(grey.astype(int) - 100).max() <= 1
    cmyk = PILImage.new("RGB", (16, 8), (200, 50, 20)).convert("CMYK")
    out = compressed_to_rgb(compressed(pillow_encoded(cmyk, "JPEG", quality=95)))
    assert out.shape == (8, 16, 3) and np.abs(out.astype(int) - (200, 50, 20)).max() <= 6


# -- the node's engine: bombs are bad frames, good frames keep flowing --------------------------------


def test_engine_counts_bombs_as_bad_frames_and_keeps_processing(random_model_file):
    published, logs = [], []
    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, Image,
                             lambda output, msg: published.append((output, msg)),
                             log=lambda level, text: logs.append((level, text)), throttle_s=0.0).start()
    try:
        rgb = generate_scene(4, (48, 64)).image
        good = encoded(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frames = [(compressed(jpeg_bomb(), sec=1), True), (compressed(png_bomb(), "png", sec=2), True),
                  (raw(30000, 30000, "rgb8", 90000, bytes(64), sec=3), False),
                  (compressed(encoded(".bmp", rgb), sec=4), True), (compressed(good, sec=5), True)]
        for msg, is_compressed in frames:
            eng.submit(msg, compressed=is_compressed)
            assert eng.worker.wait_idle(60)
        counts = eng.stats.counts()
        assert counts["bad_frames"] == 4 and counts.get("errors", 0) == 0
        assert [m.header.stamp.sec for o, m in published if o == "labels"] == [5]
        warnings = [t for level, t in logs if level == "warn"]
        assert len(warnings) == 4 and all("dropped a bad compressed image" in t or "dropped a bad image" in t
                                          for t in warnings)
        assert "JPEG) declares 30000x30000" in warnings[0] and "PNG) declares 8192x8192" in warnings[1]
        assert "image (rgb8) declares 30000x30000" in warnings[2] and "holds BMP data" in warnings[3]
        # The budget is a cheap parameter: raised, the 48x64 frame passes; lowered below it, it is refused.
        assert eng.apply({"max_pixels": 48 * 64 - 1}) == (True, "")
        eng.submit(compressed(good, sec=6), compressed=True)
        assert eng.worker.wait_idle(60)
        assert eng.stats.counts()["bad_frames"] == 5 and "more than the pixel budget of 3,071" in logs[-1][1]
        ok, reason = eng.apply({"max_pixels": 0})
        assert not ok and "max_pixels must lie in" in reason
        ok, reason = eng.apply({"resolution": "8192x8192"})  # in the old range, but no network runs at it
        assert not ok and "8192x8192 = 67,108,864 pixels, more than the 8,847,360 a network runs at" in reason
        assert eng.values["resolution"] == "" and eng.values["max_pixels"] == 48 * 64 - 1
    finally:
        eng.close()


# -- crafted model files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_meta() -> dict:
    return read_meta_dict(shipped_models()["liteseg_mobilenetv2_synthetic"])


def read_meta_dict(path) -> dict:
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    return json.loads(json.loads(path.read_bytes()[8:8 + header_len])["__metadata__"][METADATA_KEY])


def crafted(path, text: str) -> object:
    """A model file with metadata ``text`` and a valid checksum (so only the description is wrong)."""
    tensors = {"w": torch.zeros(3)}
    blob = save(tensors, metadata={METADATA_KEY: text})
    path.write_bytes(save(tensors, metadata={METADATA_KEY: text, CHECKSUM_KEY: documented_checksum(text, blob)}))
    return path


def documented_checksum(text: str, blob: bytes) -> str:
    """The model file checksum as docs/ARCHITECTURE.md defines it: SHA-256 of the metadata JSON text followed by the
    tensor bytes (the safetensors data section after the 8-byte length and the header)."""
    header_len = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(text.encode() + blob[8 + header_len:]).hexdigest()


def _with(meta: dict, **changes) -> str:
    d = json.loads(json.dumps(meta))
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            d[section][name] = value
        else:
            d[section] = value
    return json.dumps(d)


@pytest.mark.parametrize("changes,message", [
    (dict(arch_kwargs={"num_classes": 5}), "arch_kwargs must not set num_classes"),
    (dict(arch_kwargs={"x": {"y": 1}}), "arch_kwargs 'x' must be a number, boolean or string"),
    (dict(input_size=[8192, 8192]), "input_size is 8192x8192 = 67,108,864 pixels, more than the 8,847,360"),
    (dict(input_size=[0, 640]), "input_size is out of range; height and width must be 32..8192"),
    (dict(input_size=[360.5, 640]), "input_size must be \\[height, width\\] in pixels"),
    (dict(input_size=[360, 640, 3]), "input_size must be \\[height, width\\] in pixels"),
    (dict(normalization__std=[0, 0.224, 0.225]), "normalization std \\[0, 0.224, 0.225\\] must lie in"),
    (dict(normalization__std=[0.229, 0.224]), "normalization std must be 3 numbers"),
    (dict(normalization__mean=[0.4, 0.4, 0.4, 0.4]), "normalization mean must be 3 numbers"),
    (dict(normalization__mean=[float("nan"), 0.4, 0.4]), "normalization mean \\[nan, 0.4, 0.4\\] must lie in"),
    (dict(label_set__colors=[[999, 0, 0]] * 11), "colour \\(999, 0, 0\\) is not an RGB triple"),
    (dict(label_set__names=["a"] * 10), "has 10 names but 11 colours"),
    (dict(label_set__names=["a"] * 1000, label_set__colors=[[0, 0, 0]] * 1000), "at most 255 fit"),
    (dict(provenance=[1, 2]), "provenance must be a JSON object"),
    (dict(format=2), "seg_ros format 2"),
])
def test_crafted_model_metadata(tmp_path, shipped_meta, changes, message):
    path = crafted(tmp_path / "m.safetensors", _with(shipped_meta, **changes))
    for load in (read_meta, load_model):
        with pytest.raises(ModelFileError, match=message) as e:
            load(path)
        assert str(e.value).startswith(f"model file {path} has malformed seg_ros metadata")
        assert one_sentence(str(e.value))


def test_model_metadata_nested_100000_deep(tmp_path):
    path = crafted(tmp_path / "deep.safetensors", '{"format": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ModelFileError, match="nested too deeply to be a model description"):
        load_model(path)
    path = crafted(tmp_path / "d.safetensors", '{"format": 1, "x": ' + "[" * 100 + "]" * 100 + "}")
    with pytest.raises(ModelFileError, match="nested more than 16 levels deep"):
        read_meta(path)


def test_huge_model_metadata(tmp_path, shipped_meta):
    text = _with(shipped_meta, provenance={"x": "a" * MAX_METADATA_CHARS})
    with pytest.raises(ModelFileError, match=r"characters of seg_ros metadata, more than the 1,048,576"):
        read_meta(crafted(tmp_path / "m.safetensors", text))


def test_header_length_claiming_gigabytes(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 40 << 30) + b"{}" + bytes(100))
    with pytest.raises(ModelFileError, match=r"header length field says 42,949,672,960 bytes but the file holds 110"):
        load_model(path)
    with open(path, "wb") as f:  # a sparse file: as long as its header claims, larger than any model header
        f.write(struct.pack("<Q", MAX_HEADER_BYTES + 1))
        f.seek(MAX_HEADER_BYTES + 8)
        f.write(b"\0")
    with pytest.raises(ModelFileError, match=r"has a 16,777,217-byte header, more than the 16,777,216"):
        read_meta(path)


@pytest.mark.parametrize("target,kind", [("/dev/zero", "a character device"), ("dir", "a folder")])
def test_model_path_that_is_not_a_file(tmp_path, target, kind):
    path = tmp_path if target == "dir" else target
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value) == f"model file {path} is {kind}, not a regular file; give a file."



# -- megabyte strings: every message that echoes one stays one short line -----------------------------

MB = 1_000_000


def test_megabyte_strings_in_frames_are_clipped_in_the_engine_log(random_model_file):
    logs = []
    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, Image, lambda output, msg: None,
                             log=lambda level, text: logs.append(text), throttle_s=0.0).start()
    try:
        msg = raw(2, 2, "x" * MB, 6, bytes(12))
        msg.header.frame_id = "f" * MB
        eng.submit(msg, compressed=False)
        assert eng.worker.wait_idle(60)
        eng.submit(compressed(b"\x00\x01", fmt="y" * MB, sec=2), compressed=True)
        assert eng.worker.wait_idle(60)
        assert eng.stats.counts()["bad_frames"] == 2
        assert len(logs) == 2 and all(len(t) < 500 and "\n" not in t for t in logs), [len(t) for t in logs]
        assert "(1,000,002 characters) is not supported; use one of rgb8" in logs[0]
        assert "(frame_id 'ffff" in logs[0] and "holds unrecognised data" in logs[1]
    finally:
        eng.close()


@pytest.mark.parametrize("name,value,phrase", [
    ("resolution", "9" * MB, "is not of the form HxW"),
    ("model", "m" * MB, "not a file and not a shipped model"),
    ("model", "/m" * (MB // 2), "cannot be read (File name too long)"),  # a path the kernel refuses to look up
    ("confidence_encoding", "é" * MB, "must be one of mono8, 32FC1"),
    ("max_rate_hz", "z" * MB, "must be a float, not str"),
])
def test_megabyte_parameter_strings_are_refused_in_one_short_sentence(random_model_file, name, value, phrase):
    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, Image, lambda output, msg: None)
    try:
        ok, reason = eng.apply({name: value})
        assert not ok and phrase in reason and one_sentence(reason) and len(reason) < 400, reason[:400]
        assert eng.values[name] != value
    finally:
        eng.close()


# -- the running node: input QoS re-created while frames flood in ---------------------------------------


@pytest.mark.ros
@pytest.mark.slow
def test_qos_depth_changes_under_a_flood_keep_the_node_up(tmp_path_factory):
    """Each qos.depth change re-creates the input subscriptions while the executor waits on them; a frame
    flood makes the executor meet one being destroyed (rclpy raised InvalidHandle from spin and the node died)."""
    pytest.importorskip("rclpy")
    import threading

    from ros_harness import RELIABLE, NodeProcess, image_msg, ros_session, stamp_of
    from sensor_msgs.msg import Image as RosImage

    session = ros_session(tmp_path_factory)
    driver, env, log_dir = next(session)
    proc = NodeProcess("seg_qos_flood", env, log_dir, params={"device": "cpu", "resolution": "64x64"},
                       remaps={"image": "/qos_flood/image"})
    stop = threading.Event()
    try:
        proc.wait_ready()
        pub = driver.node.create_publisher(RosImage, "/qos_flood/image", RELIABLE)
        labels = driver.collect(RosImage, "/seg_qos_flood/labels", RELIABLE)[0]
        frame = image_msg(np.zeros((8, 8, 3), np.uint8), sec=1)
        flood = threading.Thread(target=lambda: [pub.publish(frame) for _ in iter(stop.is_set, True)])
        flood.start()
        for change in range(200):  # a count, not a time: each change re-creates the subscriptions once
            if proc.proc.poll() is not None:
                break
            assert driver.set_param("seg_qos_flood", "qos.depth", 1 + change % 3).successful
        stop.set()
        flood.join()
        assert proc.proc.poll() is None, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        good = image_msg(generate_scene(5, (48, 64)).image, sec=2)
        for _ in range(40):  # the node still answers
            pub.publish(good)
            try:
                labels.wait_for(lambda m: stamp_of(m) == (2, 0), timeout=1)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no labels after the QoS changes: {proc.stderr[-2000:]}")
    finally:
        stop.set()
        proc.kill()
        session.close()
