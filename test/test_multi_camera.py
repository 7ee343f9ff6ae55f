"""One engine for several cameras: topic keys, batching across sizes, fairness, isolation, per-camera settings."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from test_engine import CompressedImage, Header, Image, Sink, Time, image

from seg_ros.config import camera_values, load_params_file, validate_all
from seg_ros.core.errors import ConfigError
from seg_ros.io.messages import image_to_array
from seg_ros.pipeline import Segmenter
from seg_ros.ros.engine import SegmentationEngine, output_key
from seg_ros.ros.worker import FrameWorker
from seg_ros.synthetic import generate_scene


class CountingSegmenter(Segmenter):
    """A real Segmenter that records how many frames each ``segment_batch`` call held, and can be slowed down."""

    def __init__(self, *args, delay_s: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.delay_s = delay_s

    def segment_batch(self, frames, outputs=("labels",)):
        self.batches.append(len(frames))
        if self.delay_s:
            time.sleep(self.delay_s)
        return super().segment_batch(frames, outputs)


@pytest.fixture
def make_engine(random_model_file):
    made = []

    def make(values, delay_s: float = 0.0):
        sink, logs, segs = Sink(), [], []

        def factory(**kw):
            segs.append(CountingSegmenter(delay_s=delay_s, **kw))
            return segs[-1]

        vals = {"model": str(random_model_file), "device": "cpu", "backend": "torch", "precision": "fp32",
                "resolution": "64x96", **values}
        eng = SegmentationEngine(vals, Image, sink, None, lambda level, text: logs.append((level, text)),
                                 segmenter_factory=factory)
        made.append(eng.start())
        return eng, sink, logs, segs

    yield make
    for e in made:
        e.close()


def test_output_keys_keep_the_single_camera_names():
    assert output_key("", "labels") == "labels" and output_key("front", "labels") == "front/labels"


def test_each_camera_gets_its_outputs_at_its_own_size_from_one_batch(make_engine, random_model_file):
    eng, sink, _, segs = make_engine({"cameras": ["front", "rear"]})
    assert list(eng.cameras) == ["front", "rear"]
    front, rear = generate_scene(1, (64, 96)).image, generate_scene(2, (90, 120)).image
    eng.worker.min_interval_s = 0.5  # hold the next round so that both frames wait in their slots
    time.sleep(0.05)
    eng.submit(image(front, sec=5, frame_id="front_cam"), camera="front")
    eng.submit(image(rear, sec=6, frame_id="rear_cam"), camera="rear")
    assert eng.worker.wait_idle(30)
    assert segs[0].batches[-1] == 2  # both cameras in one network batch, frames of different sizes
    ref = Segmenter(random_model_file, resolution="64x96", device="cpu", backend="torch", precision="fp32")
    for cam, rgb, sec in (("front", front, 5), ("rear", rear, 6)):
        (labels,) = sink.of(f"{cam}/labels")
        assert labels.header.frame_id == f"{cam}_cam" and labels.header.stamp.sec == sec
        got = image_to_array(labels)
        assert got.shape == rgb.shape[:2]
        assert (got == ref.segment(rgb, ("labels",)).labels).mean() > 0.999
        assert len(sink.of(f"{cam}/overlay")) == 1
    assert sink.of("labels") == []  # no unnamed camera


def test_a_slow_camera_is_never_starved_by_a_fast_one(make_engine):
    """60 Hz and 5 Hz against a pipeline that takes about 40 ms a round: the fast camera drops frames, the slow
    one loses none, and every round serves both when both have a frame."""
    eng, sink, _, segs = make_engine({"cameras": ["fast", "slow"]}, delay_s=0.04)
    fast, slow = image(generate_scene(3, (64, 96)).image), image(generate_scene(4, (64, 96)).image)
    stop = threading.Event()

    def feed(camera, msg, hz):
        while not stop.is_set():
            eng.submit(msg, camera=camera)
            time.sleep(1.0 / hz)

    threads = [threading.Thread(target=feed, args=("fast", fast, 60)), threading.Thread(target=feed,
                                                                                      args=("slow", slow, 5))]
    for t in threads:
        t.start()
    time.sleep(2.5)
    stop.set()
    for t in threads:
        t.join()
    assert eng.worker.wait_idle(30)
    f, s = eng.worker.counts("fast"), eng.worker.counts("slow")
    assert s.submitted >= 10 and s.dropped == 0 and s.processed == s.submitted
    assert f.submitted > 3 * s.submitted and f.dropped > 0 and f.processed + f.dropped == f.submitted
    assert len(sink.of("slow/labels")) == s.processed
    assert max(segs[0].batches) == 2


def test_a_camera_sending_bad_frames_does_not_disturb_the_other(make_engine):
    eng, sink, logs, _ = make_engine({"cameras": ["good", "bad"]})
    good = image(generate_scene(5, (64, 96)).image)
    broken = image(generate_scene(6, (64, 96)).image, enc="bgr8", encoding="yuv9000")
    for _ in range(6):
        eng.submit(broken, camera="bad")
        eng.submit(good, camera="good")
        assert eng.worker.wait_idle(30)
    g, b = eng.worker.counts("good"), eng.worker.counts("bad")
    assert g.processed == 6 and g.failed == 0 and b.processed == 0 and b.failed == 6
    assert len(sink.of("good/labels")) == 6 and sink.of("bad/labels") == []
    bad = eng.camera_summary("bad")
    assert eng.camera_summary("good").level == 0 and bad.level == 1 and "yuv9000" in bad.message
    assert eng.summary().as_dict()["cameras"] == "good, bad"
    assert any("camera bad" in text for level, text in logs if level == "warn")


def test_a_frame_that_fails_in_the_pipeline_fails_alone(make_engine):
    """A frame the CRF refuses (too large) in the same round as a good one: only its camera counts the error."""
    eng, sink, _, _ = make_engine({"cameras": ["small", "huge"], "crf.enabled": True, "crf.method": "exact",
                                   "crf.exact_fallback": True, "max_pixels": 40_000_000})
    small = image(generate_scene(7, (64, 96)).image)
    huge = image(np.zeros((4000, 9000, 3), np.uint8))
    eng.worker.min_interval_s = 0.5
    time.sleep(0.05)
    eng.submit(small, camera="small")
    eng.submit(huge, camera="huge")
    assert eng.worker.wait_idle(60)
    assert eng.worker.counts("small").processed == 1 and eng.worker.counts("huge").failed == 1
    assert len(sink.of("small/labels")) == 1


def test_per_camera_parameters_and_a_hot_swap_for_all_cameras(make_engine):
    eng, sink, _, segs = make_engine({"cameras": ["front", "rear"], "rear.publish.labels": False,
                                      "rear.qos.depth": 5})
    assert camera_values(eng.values, "rear")["qos.depth"] == 5 and camera_values(eng.values, "front")["qos.depth"] == 1
    msg = image(generate_scene(8, (64, 96)).image)
    eng.submit(msg, camera="front")
    eng.submit(msg, camera="rear")
    assert eng.worker.wait_idle(30)
    assert len(sink.of("front/labels")) == 1 and sink.of("rear/labels") == [] and len(sink.of("rear/color")) == 1
    assert eng.apply({"resolution": "32x48", "front.qos.depth": 3}) == (True, "")
    assert len(segs) == 2 and segs[1].resolution == (32, 48)
    assert camera_values(eng.values, "front")["qos.depth"] == 3
    ok, reason = eng.apply({"side.qos.depth": 2})
    assert not ok and "camera side, which is not in cameras" in reason
    for cam in ("front", "rear"):
        eng.submit(msg, camera=cam)
    assert eng.worker.wait_idle(30)
    assert len(sink.of("front/labels")) == 2 and len(sink.of("rear/color")) == 2


def test_compressed_frames_per_camera(make_engine):
    import cv2

    eng, sink, _, _ = make_engine({"cameras": ["a", "b"]})
    rgb = generate_scene(9, (64, 96)).image
    ok, jpeg = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    msg = CompressedImage(header=Header(stamp=Time(sec=3, nanosec=0), frame_id="b"), format="png",
                          data=np.frombuffer(jpeg.tobytes(), np.uint8))
    eng.submit(msg, compressed=True, camera="b")
    eng.submit(image(rgb), camera="a")
    assert eng.worker.wait_idle(30)
    assert (image_to_array(sink.of("b/labels")[0]) == image_to_array(sink.of("a/labels")[0])).all()


@pytest.mark.parametrize(("values", "message"), [
    ({"cameras": ["front", "front"]}, "cameras lists a name twice"),
    ({"cameras": ["9front"]}, "camera name '9front' is not valid"),
    ({"cameras": ["qos"]}, "camera name 'qos' is not valid"),
    ({"cameras": ["model"]}, "camera name 'model' is not valid"),
    ({"cameras": ["front", 3]}, "must be a list of strings"),
    ({"cameras": ["front"], "rear.qos.depth": 2}, "names camera rear, which is not in cameras (front)"),
    ({"cameras": ["front"], "front.qos.depth": 0}, "front.qos.depth must lie in [1, 100]"),
    ({"cameras": ["front"], "front.model": "x"}, "unknown parameter 'front.model'"),
])
def test_bad_camera_settings_are_one_sentence(values, message):
    with pytest.raises(ConfigError) as e:
        validate_all(values)
    assert message in str(e.value) and str(e.value).endswith(".")


def test_a_parameter_file_sets_cameras_and_their_own_values(tmp_path):
    p = tmp_path / "cams.yaml"
    p.write_text("/**:\n  ros__parameters:\n    cameras: [front, rear]\n    qos: {depth: 2}\n"
                 "    rear:\n      input_transport: compressed\n      qos: {reliability: reliable}\n")
    values = load_params_file(p)
    assert values["cameras"] == ("front", "rear")
    assert camera_values(values, "rear") == {**camera_values(values, "front"), "input_transport": "compressed",
                                             "qos.reliability": "reliable"}
    assert camera_values(values, "front")["qos.depth"] == 2


def test_the_worker_serves_every_waiting_camera_each_round():
    rounds = []
    gate = threading.Event()

    def process_batch(items):
        rounds.append(sorted(c for c, _ in items))
        gate.wait(10)
        return [None] * len(items)

    w = FrameWorker(process_batch=process_batch, cameras=("a", "b", "c")).start()
    w.submit(0, "a")
    deadline = time.monotonic() + 10
    while w.counts().busy == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for i in range(5):
        w.submit(i, "a")
    w.submit(1, "c")
    gate.set()
    assert w.wait_idle(10)
    assert rounds == [["a"], ["a", "c"]]
    assert w.counts("a").dropped == 4 and w.counts("c").dropped == 0 and w.counts().processed == 3
    assert w.stop()


def test_process_batch_failures_count_per_item():
    errors = []
    w = FrameWorker(on_error=lambda e, item: errors.append((str(e), item)),
                    process_batch=lambda items: [None if c == "ok" else ValueError("bad") for c, _ in items],
                    cameras=("ok", "no")).start()
    w.submit(1, "ok")
    w.submit(2, "no")
    assert w.wait_idle(10)
    assert w.counts("ok").processed == 1 and w.counts("no").failed == 1 and errors == [("bad", 2)]
    assert w.stop()
