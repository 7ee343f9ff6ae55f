"""The node's ROS-free core, driven like the node drives it, with the real message definitions (rosbags)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from seg_ros.core.errors import SegRosError
from seg_ros.core.labels import CAMVID
from seg_ros.io.messages import SUPPORTED_ENCODINGS, encode_rgb, image_to_array, image_to_rgb
from seg_ros.pipeline import Segmenter
from seg_ros.ros.engine import SHUTTING_DOWN, TEST_DELAY_ENV, SegmentationEngine
from seg_ros.synthetic import generate_scene

TS = get_typestore(Stores.ROS2_KILTED)
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
CameraInfo = TS.types["sensor_msgs/msg/CameraInfo"]
Roi = TS.types["sensor_msgs/msg/RegionOfInterest"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
SIZE = (64, 96)


def _rt(msg):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def image(rgb, enc="rgb8", sec=1, frame_id="camera", **override):
    f = encode_rgb(rgb, enc)
    fields = dict(height=f.height, width=f.width, encoding=f.encoding, is_bigendian=0, step=f.step, data=f.data)
    fields.update(override)
    return _rt(Image(header=Header(stamp=Time(sec=sec, nanosec=sec * 10), frame_id=frame_id), **fields))


class Sink:
    """The publish callback: every message, CDR round-tripped as a subscriber would get it."""

    def __init__(self):
        self.msgs: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, output, msg):
        with self.lock:
            self.msgs.append((output, _rt(msg)))

    def of(self, output):
        with self.lock:
            return [m for o, m in self.msgs if o == output]


@pytest.fixture
def engine_factory(random_model_file):
    made = []

    def make(values=None, subscribers=None, **kw):
        sink, logs = Sink(), []
        vals = {"model": str(random_model_file), "device": "cpu", **(values or {})}
        eng = SegmentationEngine(vals, Image, sink, subscribers, lambda level, text: logs.append((level, text)), **kw)
        made.append(eng.start())
        return eng, sink, logs

    yield make
    for e in made:
        e.close()


@pytest.fixture(scope="module")
def offline(random_model_file):
    return Segmenter(random_model_file, device="cpu")


def test_outputs_carry_the_input_header_and_the_pipeline_values(engine_factory, offline):
    eng, sink, _ = engine_factory({"overlay_alpha": 0.3})
    rgb = generate_scene(1, SIZE).image
    eng.submit(image(rgb, "bgr8", sec=7, frame_id="front"))
    assert eng.worker.wait_idle(30)
    expected = offline.segment(rgb)
    got = {o: sink.of(o)[0] for o in ("labels", "color", "overlay", "confidence")}
    for m in got.values():
        assert m.header.stamp.sec == 7 and m.header.stamp.nanosec == 70 and m.header.frame_id == "front"
        assert (m.height, m.width) == SIZE
    lab = image_to_array(got["labels"])
    assert got["labels"].encoding == "mono8" and (lab == expected.labels).all()
    assert (image_to_array(got["color"]) == CAMVID.palette[lab]).all()
    blend = cv2.addWeighted(rgb, 0.7, CAMVID.palette[lab], 0.3, 0.0)
    assert np.abs(image_to_array(got["overlay"]).astype(int) - blend).max() <= 1
    conf = image_to_array(got["confidence"])
    assert conf.dtype == np.uint8 and np.abs(conf.astype(int) - np.rint(expected.confidence * 255)).max() <= 1
    assert not sink.of("camera_info")  # none came in


def test_every_encoding_is_decoded_and_segmented(engine_factory, offline):
    eng, sink, _ = engine_factory()
    rgb = generate_scene(2, SIZE).image
    for i, enc in enumerate(SUPPORTED_ENCODINGS):
        msg = image(rgb, enc, sec=100 + i)
        eng.submit(msg)
        assert eng.worker.wait_idle(30)
        labels = [m for m in sink.of("labels") if m.header.stamp.sec == 100 + i]
        assert labels, enc
        assert (image_to_array(labels[0]) == offline.segment(image_to_rgb(msg), ["labels"]).labels).all(), enc
    assert eng.stats.counts()["bad_frames"] == 0


def test_compressed_frames(engine_factory, offline):
    eng, sink, _ = engine_factory()
    rgb = generate_scene(3, SIZE).image
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    msg = _rt(CompressedImage(header=Header(stamp=Time(sec=5, nanosec=0), frame_id="c"), format="png",
                              data=buf.reshape(-1)))
    eng.submit(msg, compressed=True)
    assert eng.worker.wait_idle(30)
    (labels,) = sink.of("labels")
    assert labels.header.frame_id == "c" and (image_to_array(labels) == offline.segment(rgb, ["labels"]).labels).all()


def test_lazy_outputs_and_publish_toggles(engine_factory):
    subs = {"color": 0, "overlay": 1, "confidence": 0, "camera_info": 0}
    eng, sink, _ = engine_factory(subscribers=lambda o: subs[o])
    rgb = generate_scene(4, SIZE).image
    eng.submit(image(rgb, sec=1))
    assert eng.worker.wait_idle(30)
    assert [o for o, _ in sink.msgs] == ["labels", "overlay"]
    assert eng.summary().as_dict()["outputs"] == "labels,overlay"
    subs.update(color=1, confidence=1)
    assert eng.apply({"publish.overlay": False, "publish.labels": False, "confidence_encoding": "32FC1"}) == (True, "")
    eng.submit(image(rgb, sec=2))
    assert eng.worker.wait_idle(30)
    assert [o for o, m in sink.msgs if m.header.stamp.sec == 2] == ["color", "confidence"]
    conf = sink.of("confidence")[-1]
    assert conf.encoding == "32FC1" and image_to_array(conf).dtype == np.float32


def test_camera_info_follows_each_frame_scaled(engine_factory):
    eng, sink, _ = engine_factory()
    info = _rt(CameraInfo(header=Header(stamp=Time(sec=0, nanosec=0), frame_id="x"), height=128, width=192,
                          distortion_model="plumb_bob", d=np.zeros(5), k=np.array([100.0, 0, 96, 0, 100, 64, 0, 0, 1]),
                          r=np.eye(3).reshape(9), p=np.array([100.0, 0, 96, 0, 0, 100, 64, 0, 0, 0, 1, 0]),
                          binning_x=0, binning_y=0, roi=Roi(x_offset=0, y_offset=0, height=0, width=0,
                                                            do_rectify=False)))
    eng.set_camera_info(info)
    eng.submit(image(generate_scene(5, SIZE).image, sec=9, frame_id="cam"))
    assert eng.worker.wait_idle(30)
    (out,) = sink.of("camera_info")
    assert out.header.stamp.sec == 9 and out.header.frame_id == "cam" and (out.height, out.width) == SIZE
    assert np.allclose(out.k, [50, 0, 48, 0, 50, 32, 0, 0, 1])


@pytest.mark.parametrize("override,reason", [
    (dict(encoding="hsv8"), "image encoding 'hsv8' is not supported"),
    (dict(encoding="nonsense_unknown"), "image encoding 'nonsense_unknown' is not supported"),
    (dict(height=0, width=0, step=0, data=np.zeros(0, np.uint8)), "image is empty (0x0)"),
    (dict(step=10), "step 10 is smaller than width × bytes per pixel = 288"),
    (dict(data=np.zeros(100, np.uint8)), "100 bytes, fewer than step × height = 18432"),
])
def test_bad_frames_are_counted_logged_and_survived(engine_factory, override, reason):
    eng, sink, logs = engine_factory()
    rgb = generate_scene(6, SIZE).image
    eng.submit(image(rgb, sec=1, **override))
    assert eng.worker.wait_idle(30)
    s = eng.summary()
    assert s.as_dict()["bad frames"] == "1" and reason in s.as_dict()["last bad frame"] and s.level == 1
    assert logs and logs[0][0] == "warn" and reason in logs[0][1] and "dropped a bad image" in logs[0][1]
    eng.submit(image(rgb, sec=2))
    assert eng.worker.wait_idle(30)
    assert [m.header.stamp.sec for m in sink.of("labels")] == [2]


def test_corrupt_jpeg(engine_factory):
    eng, sink, _ = engine_factory()
    ok, buf = cv2.imencode(".jpg", generate_scene(7, SIZE).image)
    msg = _rt(CompressedImage(header=Header(stamp=Time(sec=1, nanosec=0), frame_id="c"), format="jpeg",
                              data=buf.reshape(-1)[:50].copy()))
    eng.submit(msg, compressed=True)
    assert eng.worker.wait_idle(30)
    assert "has a corrupt JPEG header" in eng.summary().as_dict()["last bad frame"]


def test_bad_frame_warnings_are_throttled(engine_factory):
    eng, _, logs = engine_factory(throttle_s=60.0)
    rgb = generate_scene(6, SIZE).image
    for i in range(5):
        eng.submit(image(rgb, sec=i, encoding="hsv8"))
        assert eng.worker.wait_idle(30)
    assert len(logs) == 1 and eng.stats.counts()["bad_frames"] == 5


@pytest.mark.parametrize("name,value,reason", [
    ("resolution", "abc", "not of the form HxW"),
    ("resolution", "0x0", "out of range"),
    ("resolution", "100000x100000", "out of range"),
    ("model", "/nonexistent/model.safetensors", "model file /nonexistent/model.safetensors does not exist"),
    ("backend", "caffe", "must be one of auto, torch"),
    ("device", "tpu", "not valid"),
    ("overlay_alpha", -0.1, "must lie in [0, 1]"),
    ("input_transport", "compressed", "read-only"),
    ("no_such_parameter", 1, "unknown parameter"),
])
def test_rejected_changes_keep_everything(engine_factory, name, value, reason):
    eng, sink, logs = engine_factory()
    before, seg = eng.values, eng.segmenter
    ok, why = eng.apply({"overlay_alpha": 0.9, name: value})  # atomically: the valid one is not applied either
    assert not ok and reason in why and why.endswith(".")
    assert eng.values == before and eng.segmenter is seg and seg.overlay_alpha == 0.5
    assert eng.stats.counts()["params_rejected"] == 1 and logs[-1][0] == "warn"
    eng.submit(image(generate_scene(8, SIZE).image, sec=3))
    assert eng.worker.wait_idle(30) and len(sink.of("labels")) == 1


def test_cheap_changes_keep_the_pipeline(engine_factory):
    eng, _, _ = engine_factory()
    seg = eng.segmenter
    assert eng.apply({"overlay_alpha": 0.8, "max_rate_hz": 4.0, "qos.reliability": "auto"}) == (True, "")
    assert eng.segmenter is seg and seg.overlay_alpha == 0.8 and eng.worker.min_interval_s == 0.25
    assert eng.values["qos.reliability"] == "auto" and eng.stats.counts()["reloads"] == 0


def test_reload_runs_in_the_background_while_frames_flow(engine_factory, random_model_file):
    """The new pipeline's construction is held until the old one has segmented frames meanwhile."""
    gate = threading.Event()
    building = threading.Event()

    def factory(**kw):
        if building.is_set():  # the first call is the initial pipeline
            assert gate.wait(60), "frames did not flow while the new pipeline was being built"
        building.set()
        return Segmenter(**kw)

    eng, sink, _ = engine_factory(segmenter_factory=factory)
    old = eng.segmenter
    rgb = generate_scene(9, SIZE).image
    swapped = []
    eng.pipeline_listeners.append(swapped.append)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=eng.apply({"resolution": "32x48"})))
    t.start()
    for i in range(3):  # old pipeline keeps serving while apply() waits
        eng.submit(image(rgb, sec=10 + i))
        assert eng.worker.wait_idle(30)
    assert eng.segmenter is old and len(sink.of("labels")) == 3
    gate.set()
    t.join(60)
    assert result["r"] == (True, "")
    assert eng.segmenter is not old and eng.segmenter.resolution == (32, 48) and swapped == [eng.segmenter]
    assert eng.values["resolution"] == "32x48" and eng.stats.counts()["reloads"] == 1
    assert eng.summary().as_dict()["resolution"] == "32x48"


def test_failed_reload_keeps_the_running_pipeline(engine_factory, tmp_path):
    eng, sink, logs = engine_factory()
    seg = eng.segmenter
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00" * 64)
    ok, why = eng.apply({"model": str(bad)})
    assert not ok and "model change rejected, the running pipeline is kept" in why and str(bad) in why
    assert eng.segmenter is seg and eng.values["model"] != str(bad)
    eng.submit(image(generate_scene(10, SIZE).image, sec=1))
    assert eng.worker.wait_idle(30) and len(sink.of("labels")) == 1


def test_unexpected_errors_are_counted_as_errors(random_model_file):
    """A failure that is not bad input (here the middleware refusing a message) is an ERROR, not a bad frame."""
    calls = []

    def publish(output, msg):
        calls.append(output)
        if len(calls) == 1:
            raise RuntimeError("publisher's context is invalid")

    logs = []
    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, Image, publish,
                             log=lambda level, text: logs.append((level, text))).start()
    try:
        rgb = generate_scene(11, SIZE).image
        eng.submit(image(rgb, sec=1))
        assert eng.worker.wait_idle(30)
        s = eng.summary()
        assert s.level == 2 and s.as_dict()["errors"] == "1" and s.as_dict()["bad frames"] == "0"
        assert s.as_dict()["last error"] == "RuntimeError: publisher's context is invalid"
        assert logs[-1][0] == "warn" and "failed: RuntimeError" in logs[-1][1]
        eng.submit(image(rgb, sec=2))
        assert eng.worker.wait_idle(30)
        assert eng.worker.counts().processed == 1
    finally:
        eng.close()


def test_invalid_start_up_values_raise():
    with pytest.raises(SegRosError, match="not of the form HxW"):
        SegmentationEngine({"resolution": "abc"}, Image, lambda o, m: None)
    with pytest.raises(SegRosError, match="does not exist"):
        SegmentationEngine({"model": "/nonexistent/m.safetensors", "device": "cpu"}, Image, lambda o, m: None)


def test_max_rate_drops_frames_between_slots(engine_factory):
    eng, sink, _ = engine_factory({"max_rate_hz": 2.0})
    rgb = generate_scene(12, SIZE).image
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.2:
        eng.submit(image(rgb, sec=n))
        n += 1
        time.sleep(0.01)
    assert eng.worker.wait_idle(30)
    c = eng.worker.counts()
    assert c.processed <= 4 < n and c.submitted == n == c.processed + c.dropped


def test_a_failing_publish_or_log_callback_does_not_stop_the_worker(random_model_file):
    """publish raising (the middleware went away) fails that frame; log raising too; the next frame goes."""
    broken = {"publish": True, "log": True}
    published = []

    def publish(output, msg):
        if broken["publish"]:
            raise RuntimeError("publisher's context is invalid")
        published.append(output)

    def log(level, text):
        if broken["log"]:
            raise OSError("stderr closed")

    eng = SegmentationEngine({"model": str(random_model_file), "device": "cpu"}, Image, publish, None, log,
                             throttle_s=0.0).start()
    try:
        rgb = generate_scene(13, SIZE).image
        eng.submit(image(rgb, sec=1))
        assert eng.worker.wait_idle(30)
        assert eng.worker.alive and eng.stats.counts()["errors"] == 1
        assert "publisher's context is invalid" in eng.summary().as_dict()["last error"]
        broken["publish"] = broken["log"] = False
        eng.submit(image(rgb, sec=2))
        assert eng.worker.wait_idle(30)
        assert eng.worker.counts().processed == 1 and "labels" in published
    finally:
        eng.close()


def test_max_rate_change_applies_to_a_waiting_frame(engine_factory):
    eng, sink, _ = engine_factory({"max_rate_hz": 0.01})  # one frame per 100 s
    rgb = generate_scene(14, SIZE).image
    eng.submit(image(rgb, sec=1))
    assert eng.worker.wait_idle(30)
    eng.submit(image(rgb, sec=2))
    time.sleep(0.2)
    assert eng.worker.counts().pending == 1
    assert eng.apply({"max_rate_hz": 0.0}) == (True, "")
    assert eng.worker.wait_idle(10) and len(sink.of("labels")) == 2


@pytest.mark.parametrize("rate", [1e-300, 0.001, 0.0099])
def test_max_rate_below_one_frame_per_100_s_is_refused(engine_factory, rate):
    eng, _, _ = engine_factory()
    ok, why = eng.apply({"max_rate_hz": rate})
    assert not ok and "at least 0.01" in why and eng.values["max_rate_hz"] == 0.0


def test_close_answers_a_change_waiting_for_a_rebuild(engine_factory, monkeypatch):
    """A rebuild in progress (held up by the test-only delay) does not hold up close, nor the caller of apply."""
    monkeypatch.setenv(TEST_DELAY_ENV, "10")
    eng, _, logs = engine_factory()
    answer = []
    t = threading.Thread(target=lambda: answer.append(eng.apply({"resolution": "32x48"})))
    t.start()
    time.sleep(0.3)
    assert not answer  # still building
    t0 = time.monotonic()
    assert eng.close(timeout=5)  # the worker is idle: it stops at once
    t.join(5)
    assert time.monotonic() - t0 < 5  # far less than the 10 s the rebuild is held up
    assert answer == [(False, SHUTTING_DOWN)]
    assert eng.apply({"overlay_alpha": 0.2}) == (False, SHUTTING_DOWN)
    assert eng.stats.counts()["params_rejected"] == 0 and not [t for lv, t in logs if lv == "warn"]
