"""The node as a real ROS 2 process (rclpy from the PyPI ros-* wheels, Fast DDS on this host only).

A test process publishes camera frames and camera_info and reads every output;
the node, started as its own process with the shipped model, segments them.
Skipped only where rclpy cannot be imported (``make test`` installs it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import (  # noqa: E402
    BEST_EFFORT,
    LATCHED,
    RELIABLE,
    REPO,
    NodeProcess,
    diag_values,
    image_msg,
    ros_session,
    stamp_of,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from seg_ros.core.labels import CAMVID  # noqa: E402
from seg_ros.io.messages import SUPPORTED_ENCODINGS, encode_rgb, image_to_array, image_to_rgb  # noqa: E402
from seg_ros.pipeline import Segmenter  # noqa: E402
from seg_ros.ros.launch_support import READY_MARKER  # noqa: E402
from seg_ros.ros.node import LABEL_INFO_TOPIC, LabelInfo  # noqa: E402
from seg_ros.runtime import choose_backend  # noqa: E402
from seg_ros.synthetic import generate_scene  # noqa: E402

SIZE = (96, 128)
RES = "96x128"
NODE = "seg_main"
TOPIC = f"/{NODE}_in/image"


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    yield from ros_session(tmp_path_factory)


@pytest.fixture(scope="module")
def node(ros):
    driver, env, log_dir = ros
    proc = NodeProcess(NODE, env, log_dir, params={"resolution": RES, "device": "cpu"},
                       remaps={"image": TOPIC, "camera_info": f"/{NODE}_in/camera_info"})
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def outputs(ros, node):
    """Subscriptions to every output of the main node, created once; waits until the node is up."""
    driver = ros[0]
    subs = {}
    for name in ("labels", "color", "overlay", "confidence"):
        subs[name] = driver.collect(Image, f"/{NODE}/{name}", RELIABLE)[0]
    subs["camera_info"] = driver.collect(CameraInfo, f"/{NODE}/camera_info", RELIABLE)[0]
    subs["diagnostics"] = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)[0]
    driver.wait_until(lambda: driver.node.count_publishers(f"/{NODE}/labels") > 0 or node.proc.poll() is not None,
                      90, "the node to start")
    assert node.proc.poll() is None, node.stderr
    return subs


@pytest.fixture(scope="module")
def pub(ros, outputs):
    driver = ros[0]
    p = driver.node.create_publisher(Image, TOPIC, RELIABLE)
    driver.wait_until(lambda: p.get_subscription_count() > 0, 30, "the node to subscribe")
    return p


@pytest.fixture(scope="module")
def offline():
    return Segmenter(resolution=RES, device="cpu")


_stamp = [1000]


def next_stamp() -> int:
    _stamp[0] += 1
    return _stamp[0]


def send_and_wait(pub, coll, msg, timeout=30.0):
    """Publish ``msg`` until an output with its stamp arrives (best-effort links may lose one)."""
    deadline = time.monotonic() + timeout
    while True:
        pub.publish(msg)
        try:
            return coll.wait_for(lambda m: stamp_of(m) == stamp_of(msg), timeout=3.0)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def latest_diag(outputs, after: float, node_name: str = NODE, timeout=20.0):
    coll = outputs["diagnostics"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t, m in reversed(coll.items):
            if t > after:
                v = diag_values(m, node_name)
                if v is not None:
                    return v
        time.sleep(0.1)
    raise AssertionError("no diagnostics from the node")


def wait_diag(outputs, pred, node_name: str = NODE, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        v = latest_diag(outputs, 0, node_name, timeout)
        if pred(v):
            return v
        if time.monotonic() > deadline:
            items = outputs["diagnostics"].items
            raise AssertionError(f"diagnostics never satisfied the condition; last: {v} "
                                 f"({len(items)} received, last {time.monotonic() - items[-1][0]:.1f} s ago)")
        time.sleep(0.3)


# -- outputs ------------------------------------------------------------------------------------------------


def test_outputs_headers_sizes_and_values(pub, outputs, offline):
    rgb = generate_scene(11, SIZE).image
    msg = image_msg(rgb, "bgr8", sec=next_stamp(), nanosec=123456789, frame_id="front_camera")
    labels = send_and_wait(pub, outputs["labels"], msg)
    got = {name: outputs[name].wait_for(lambda m: stamp_of(m) == stamp_of(msg)) for name in
           ("color", "overlay", "confidence")}
    got["labels"] = labels
    for m in got.values():
        assert m.header.frame_id == "front_camera" and stamp_of(m) == stamp_of(msg)
        assert (m.height, m.width) == SIZE
    assert labels.encoding == "mono8" and got["color"].encoding == "rgb8" and got["overlay"].encoding == "rgb8"
    assert got["confidence"].encoding == "mono8"
    lab = image_to_array(labels)
    expected = offline.segment(rgb)
    assert (lab == expected.labels).mean() > 0.99
    assert lab.max() < CAMVID.num_classes and len(np.unique(lab)) >= 3  # a real scene, not one class
    color = image_to_array(got["color"])
    assert (color == CAMVID.palette[lab]).all()
    overlay = image_to_array(got["overlay"])
    blend = cv2.addWeighted(rgb, 0.5, CAMVID.palette[lab], 0.5, 0.0)
    assert np.abs(overlay.astype(int) - blend.astype(int)).max() <= 1
    conf = image_to_array(got["confidence"]).astype(int)
    want = np.rint(expected.confidence * 255).astype(int)
    assert np.mean(np.abs(conf - want) <= 2) > 0.99
    assert conf.min() >= int(255 / CAMVID.num_classes) - 1


def test_every_encoding_is_segmented(pub, outputs, offline):
    rgb = generate_scene(12, SIZE).image
    for enc in SUPPORTED_ENCODINGS:
        msg = image_msg(rgb, enc, sec=next_stamp())
        labels = send_and_wait(pub, outputs["labels"], msg)
        decoded = image_to_rgb(msg)
        agree = (image_to_array(labels) == offline.segment(decoded, ["labels"]).labels).mean()
        assert agree > 0.99, enc


def test_row_padding_and_big_endian(pub, outputs, offline):
    rgb = generate_scene(13, SIZE).image
    f = encode_rgb(rgb, "bgr8")
    padded = np.zeros((SIZE[0], f.step + 16), np.uint8)
    padded[:, : f.step] = f.data.reshape(SIZE[0], f.step)
    msg = image_msg(rgb, "bgr8", sec=next_stamp())
    msg.step, msg.data = f.step + 16, padded.tobytes()
    labels = send_and_wait(pub, outputs["labels"], msg)
    assert (image_to_array(labels) == offline.segment(rgb, ["labels"]).labels).mean() > 0.99
    gray16 = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(">u2") * 257)
    msg = image_msg(rgb, "mono16", sec=next_stamp())
    msg.is_bigendian, msg.data = 1, gray16.tobytes()
    labels = send_and_wait(pub, outputs["labels"], msg)
    assert (image_to_array(labels) == offline.segment(image_to_rgb(msg), ["labels"]).labels).mean() > 0.99


def test_camera_info_is_scaled_to_the_output(ros, pub, outputs):
    driver = ros[0]
    info_pub = driver.node.create_publisher(CameraInfo, f"/{NODE}_in/camera_info", RELIABLE)
    driver.wait_until(lambda: info_pub.get_subscription_count() > 0, 20, "camera_info subscription")
    info = CameraInfo()
    info.header.frame_id = "front_camera"
    info.height, info.width = SIZE[0] * 2, SIZE[1] * 2
    info.distortion_model = "plumb_bob"
    info.d = [0.1, -0.2, 0.0, 0.0, 0.01]
    info.k = [200.0, 0.0, 128.0, 0.0, 210.0, 96.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    info.p = [200.0, 0.0, 128.0, 5.0, 0.0, 210.0, 96.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    deadline = time.monotonic() + 30
    rgb = generate_scene(14, SIZE).image
    while True:  # camera_info and image travel separately; resend both until the scaled one comes back
        info_pub.publish(info)
        time.sleep(0.2)
        msg = image_msg(rgb, "rgb8", sec=next_stamp(), frame_id="front_camera")
        pub.publish(msg)
        try:
            want = stamp_of(msg)
            out = outputs["camera_info"].wait_for(lambda m, want=want: stamp_of(m) == want, timeout=3)
            break
        except AssertionError:
            assert time.monotonic() < deadline
    assert (out.height, out.width) == SIZE and out.header.frame_id == "front_camera"
    assert np.allclose(out.k, [100.0, 0, 64.0, 0, 105.0, 48.0, 0, 0, 1.0])
    assert np.allclose(out.p, [100.0, 0, 64.0, 2.5, 0, 105.0, 48.0, 0, 0, 0, 1.0, 0])
    assert list(out.d) == pytest.approx([0.1, -0.2, 0.0, 0.0, 0.01]) and out.distortion_model == "plumb_bob"
    driver.node.destroy_publisher(info_pub)


def test_label_info_reaches_late_subscribers(ros, outputs):
    """The label set is latched on whichever topic the node uses here (LabelInfo with vision_msgs, else JSON)."""
    driver = ros[0]
    topic = f"/{NODE}/{LABEL_INFO_TOPIC.removeprefix('~/')}"
    if LabelInfo is not None:
        coll, sub = driver.collect(LabelInfo, topic, LATCHED)
        msg = coll.wait_for(lambda m: True)
        assert [c.class_name for c in msg.class_map] == list(CAMVID.names)
        assert [c.class_id for c in msg.class_map] == list(range(CAMVID.num_classes))
    else:
        coll, sub = driver.collect(String, topic, LATCHED)
        info = json.loads(coll.wait_for(lambda m: True).data)
        assert [c["name"] for c in info["classes"]] == list(CAMVID.names)
        assert [c["id"] for c in info["classes"]] == list(range(CAMVID.num_classes))
        assert info["classes"][0]["color"] == list(CAMVID.colors[0]) and info["ignore_id"] == CAMVID.ignore_id
    driver.node.destroy_subscription(sub)


def test_lazy_outputs_follow_subscriptions(ros, pub, outputs):
    driver = ros[0]
    v = wait_diag(outputs, lambda v: v["outputs"] == "labels,color,overlay,confidence")
    assert v["outputs"] == "labels,color,overlay,confidence"
    # A second node-side reader of ~/color only: drop ours for overlay and confidence.
    for name in ("overlay", "confidence"):
        for sub in list(driver.node.subscriptions):
            if sub.topic_name == f"/{NODE}/{name}":
                driver.node.destroy_subscription(sub)
    driver.wait_until(lambda: driver.node.count_subscribers(f"/{NODE}/overlay") == 0, 10, "unsubscribe")
    rgb = generate_scene(15, SIZE).image
    t0 = time.monotonic()
    send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
    v = wait_diag(outputs, lambda v: v["outputs"] == "labels,color")
    assert v["outputs"] == "labels,color"
    assert not [m for t, m in outputs["overlay"].items if t > t0]
    for name in ("overlay", "confidence"):  # resubscribe for the tests that follow
        outputs[name] = driver.collect(Image, f"/{NODE}/{name}", RELIABLE)[0]


def test_diagnostics_content(pub, outputs):
    rgb = generate_scene(16, SIZE).image
    for _ in range(3):
        send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
    v = latest_diag(outputs, time.monotonic())
    assert float(v["fps"]) > 0 and float(v["latency p50 ms"]) > 0 and float(v["infer p50 ms"]) > 0
    assert float(v["latency p50 ms"]) <= float(v["latency p99 ms"])
    running = choose_backend(torch.device("cpu"), "fp32", False)[0]  # the node's default is backend=auto
    assert v["model"] == "liteseg_mobilenetv2_synthetic.safetensors" and v["backend"] == running
    assert v["device"] == "cpu" and v["resolution"] == RES and v["precision"] == "fp32"
    assert int(v["processed"]) >= 3 and int(v["received"]) >= int(v["processed"])
    assert v["input topic"] == TOPIC and "best_effort" in v["input QoS"]


# -- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case,reason", [
    ("unknown_encoding", "encoding 'hsv8' is not supported"),
    ("empty", "image is empty (0x0)"),
    ("short_step", "step 100 is smaller than width × bytes per pixel = 384"),
    ("short_data", "fewer than step × height"),
    ("odd_yuv", "needs an even width"),
])
def test_bad_frames_are_counted_and_the_node_survives(pub, outputs, node, case, reason):
    rgb = generate_scene(17, SIZE).image
    msg = image_msg(rgb, "rgb8", sec=next_stamp())
    if case == "unknown_encoding":
        msg.encoding = "hsv8"
    elif case == "empty":
        msg.height = msg.width = msg.step = 0
        msg.data = b""
    elif case == "short_step":
        msg.step = 100
    elif case == "short_data":
        msg.data = bytes(msg.step * msg.height - 10)
    elif case == "odd_yuv":
        msg.encoding, msg.width, msg.step = "yuv422", 127, 254
    before = int(latest_diag(outputs, 0)["bad frames"])
    pub.publish(msg)
    v = wait_diag(outputs, lambda v: int(v["bad frames"]) > before)
    assert reason in v["last bad frame"]
    assert v["_level"] == b"\x01"  # WARN
    assert "dropped a bad image" in node.stderr
    good = image_msg(rgb, "rgb8", sec=next_stamp())
    send_and_wait(pub, outputs["labels"], good)  # still segmenting
    assert node.proc.poll() is None


# -- parameters -----------------------------------------------------------------------------------------------


def test_cheap_parameter_changes_apply_on_the_next_frame(ros, pub, outputs):
    driver = ros[0]
    rgb = generate_scene(18, SIZE).image
    r = driver.set_params(NODE, overlay_alpha=0.25, confidence_encoding="32FC1")
    assert all(x.successful for x in r), [x.reason for x in r]
    assert driver.get_params(NODE, "overlay_alpha", "confidence_encoding") == [0.25, "32FC1"]
    msg = image_msg(rgb, "rgb8", sec=next_stamp())
    labels = send_and_wait(pub, outputs["labels"], msg)
    lab = image_to_array(labels)
    overlay = image_to_array(outputs["overlay"].wait_for(lambda m: stamp_of(m) == stamp_of(msg)))
    blend = cv2.addWeighted(rgb, 0.75, CAMVID.palette[lab], 0.25, 0.0)
    assert np.abs(overlay.astype(int) - blend.astype(int)).max() <= 1
    conf = outputs["confidence"].wait_for(lambda m: stamp_of(m) == stamp_of(msg))
    assert conf.encoding == "32FC1"
    c = image_to_array(conf)
    assert c.dtype == np.float32 and 1 / CAMVID.num_classes - 1e-4 <= c.min() and c.max() <= 1 + 1e-6
    r = driver.set_params(NODE, publish__color=False)
    assert r[0].successful
    t0 = time.monotonic()
    send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
    assert not [m for t, m in outputs["color"].items if t > t0]
    r = driver.set_params(NODE, overlay_alpha=0.5, confidence_encoding="mono8", publish__color=True)
    assert all(x.successful for x in r)


@pytest.mark.parametrize("name,value,reason", [
    ("resolution", "abc", "not of the form HxW"),
    ("resolution", "0x0", "out of range"),
    ("resolution", "100000x100000", "out of range"),
    ("model", "/nonexistent/model.safetensors", "does not exist"),
    ("backend", "caffe", "must be one of auto, torch"),
    ("device", "tpu", "not valid; use auto, cpu or cuda:N"),
    ("precision", "fp16", "no backend can run this model at fp16 on cpu"),
    ("overlay_alpha", 1.5, "out of range"),
    ("qos.depth", 0, "out of range"),
    ("input_transport", "compressed", "read-only"),
    ("keep_aspect", "yes", "type"),
])
def test_rejected_parameters_keep_the_old_value(ros, pub, outputs, node, name, value, reason):
    driver = ros[0]
    old = driver.get_params(NODE, name)[0]
    r = driver.set_param(NODE, name, value)
    assert not r.successful
    assert reason in r.reason
    assert driver.get_params(NODE, name) == [old]
    send_and_wait(pub, outputs["labels"], image_msg(generate_scene(19, SIZE).image, "rgb8", sec=next_stamp()))
    assert node.proc.poll() is None


def test_every_rejection_is_counted_in_diagnostics(ros, outputs):
    """Rejections by rclpy's own checks (range, type, read-only, unknown name) count as well as the node's."""
    driver = ros[0]
    before = int(latest_diag(outputs, time.monotonic())["params rejected"])
    cases = [("overlay_alpha", 1.5), ("keep_aspect", "yes"), ("input_transport", "compressed"),
             ("no_such_parameter", 1), ("resolution", "abc")]
    for name, value in cases:
        assert not driver.set_param(NODE, name, value).successful, name
    v = wait_diag(outputs, lambda v: int(v["params rejected"]) >= before + len(cases))
    assert int(v["params rejected"]) == before + len(cases)


def test_model_swap_while_frames_keep_flowing(ros, pub, outputs, random_model_file):
    driver = ros[0]
    rgb = generate_scene(20, SIZE).image
    stop = threading.Event()
    sent: list[tuple[float, int]] = []

    def stream():
        while not stop.is_set():
            s = next_stamp()
            sent.append((time.monotonic(), s))
            pub.publish(image_msg(rgb, "rgb8", sec=s))
            time.sleep(0.03)

    th = threading.Thread(target=stream)
    th.start()
    try:
        outputs["labels"].wait_for(lambda m: stamp_of(m)[0] >= sent[0][1], 30)
        t0 = time.monotonic()
        r = driver.set_param(NODE, "model", str(random_model_file))
        t1 = time.monotonic()
        assert r.successful, r.reason
        time.sleep(0.5)
        # A frame sent after the swap comes back from the new model (waiting as long as a loaded CPU needs).
        first_after = next(s for t, s in list(sent) if t > t1)
        after = outputs["labels"].wait_for(lambda m: stamp_of(m)[0] >= first_after, 60)
    finally:
        stop.set()
        th.join()
    during = [m for t, m in outputs["labels"].items if t0 < t < t1]
    assert during, "no frame was segmented while the new model loaded"
    random_result = Segmenter(random_model_file, resolution=RES, device="cpu").segment(rgb, ["labels"]).labels
    assert (image_to_array(after) == random_result).mean() > 0.99
    v = wait_diag(outputs, lambda v: v["model"] == random_model_file.name)
    assert int(v["reloads"]) >= 1
    r = driver.set_param(NODE, "model", "liteseg_mobilenetv2_synthetic")
    assert r.successful, r.reason
    assert driver.get_params(NODE, "model") == ["liteseg_mobilenetv2_synthetic"]


# -- QoS and load ---------------------------------------------------------------------------------------------


def _sub_reliability(driver):
    infos = [i for i in driver.node.get_subscriptions_info_by_topic(TOPIC) if i.node_name == NODE]
    return [i.qos_profile.reliability for i in infos]


def test_best_effort_and_reliable_inputs(ros, pub, outputs, node):
    driver = ros[0]
    rgb = generate_scene(21, SIZE).image
    be_pub = driver.node.create_publisher(Image, TOPIC, BEST_EFFORT)
    try:
        assert _sub_reliability(driver) == [ReliabilityPolicy.BEST_EFFORT]
        driver.wait_until(lambda: be_pub.get_subscription_count() > 0, 20, "match")
        send_and_wait(be_pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
        send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))

        assert driver.set_param(NODE, "qos.reliability", "reliable").successful
        driver.wait_until(lambda: _sub_reliability(driver) == [ReliabilityPolicy.RELIABLE], 20, "resubscribe")
        send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
        driver.wait_until(lambda: "qos.reliability to best_effort" in node.stderr, 20, "incompatible-QoS warning")
        lost = image_msg(rgb, "rgb8", sec=next_stamp())
        for _ in range(5):
            be_pub.publish(lost)
            time.sleep(0.1)
        send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))
        assert not [m for m in outputs["labels"].msgs if stamp_of(m) == stamp_of(lost)]
        v = wait_diag(outputs, lambda v: int(v["qos incompatible"]) >= 1)
        assert "reliable" in v["input QoS"]

        assert driver.set_param(NODE, "qos.reliability", "auto").successful  # a best-effort publisher is there
        driver.wait_until(lambda: _sub_reliability(driver) == [ReliabilityPolicy.BEST_EFFORT], 20, "auto → BE")
    finally:
        driver.node.destroy_publisher(be_pub)
    driver.wait_until(lambda: _sub_reliability(driver) == [ReliabilityPolicy.RELIABLE], 20,
                      "auto → reliable once only reliable publishers remain")
    send_and_wait(pub, outputs["labels"], image_msg(rgb, "rgb8", sec=next_stamp()))


def test_newest_frame_only_under_a_fast_publisher(ros, outputs):
    """60 frames in a burst, all delivered (reliable, depth 100): the node segments the newest and drops the rest."""
    driver = ros[0]
    r = driver.set_params(NODE, qos__reliability="reliable", qos__depth=100)
    assert all(x.successful for x in r), [x.reason for x in r]
    burst_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
    fast = driver.node.create_publisher(Image, TOPIC, burst_qos)
    driver.wait_until(lambda: _sub_reliability(driver) == [ReliabilityPolicy.RELIABLE]
                      and fast.get_subscription_count() > 0, 20, "reliable depth-100 subscription")
    rgb = generate_scene(22, SIZE).image
    before = latest_diag(outputs, time.monotonic())
    first = next_stamp()
    msgs = [image_msg(rgb, "rgb8", sec=first + i) for i in range(60)]
    _stamp[0] = first + 60
    for m in msgs:
        fast.publish(m)
    outputs["labels"].wait_for(lambda m: stamp_of(m) == stamp_of(msgs[-1]), 60)  # the newest is always kept
    got = {stamp_of(m)[0] for m in outputs["labels"].msgs if first <= stamp_of(m)[0] < first + 60}
    assert len(got) < 60
    v = wait_diag(outputs, lambda v: int(v["received"]) - int(before["received"]) >= 60
                  and int(v["processed"]) - int(before["processed"]) >= len(got))
    d = {k: int(v[k]) - int(before[k]) for k in ("received", "processed", "dropped", "bad frames", "errors")}
    assert d["received"] == 60 and d["dropped"] > 0 and d["processed"] == len(got)
    assert d["received"] == d["processed"] + d["dropped"] + d["bad frames"] + d["errors"]
    driver.node.destroy_publisher(fast)
    r = driver.set_params(NODE, qos__reliability="best_effort", qos__depth=1)
    assert all(x.successful for x in r)


def test_max_rate_hz_limits_processing(ros, pub, outputs):
    driver = ros[0]
    assert driver.set_param(NODE, "max_rate_hz", 2.0).successful
    rgb = generate_scene(23, SIZE).image
    t0 = time.monotonic()
    first = next_stamp()
    n = 0
    while time.monotonic() - t0 < 3.0:
        pub.publish(image_msg(rgb, "rgb8", sec=first + n))
        n += 1
        time.sleep(0.02)
    _stamp[0] = first + n
    time.sleep(1.0)
    got = [m for m in outputs["labels"].msgs if first <= stamp_of(m)[0] < first + n]
    # 2 Hz over ~3 s: a few frames, never one per published frame.
    assert 1 <= len(got) <= 8 < n
    assert driver.set_param(NODE, "max_rate_hz", 0.0).successful


def test_sigint_exits_cleanly(node, outputs):
    rc = node.interrupt()
    err = node.stderr
    assert rc == 0, err
    assert "Traceback" not in err and "RCLError" not in err and "terminate called" not in err
    assert len([ln for ln in err.splitlines() if READY_MARKER in ln]) == 1


# -- compressed input and start-up errors ---------------------------------------------------------------------


def test_compressed_input_and_corrupt_jpeg(ros, offline):
    driver, env, log_dir = ros
    name = "seg_compressed"
    proc = NodeProcess(name, env, log_dir, params={"resolution": RES, "device": "cpu", "input_transport": "compressed"},
                       remaps={"image": "/cam2/image_raw"}, console_script=True)
    try:
        labels, _ = driver.collect(Image, f"/{name}/labels", RELIABLE)
        diags, _ = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)
        cpub = driver.node.create_publisher(CompressedImage, "/cam2/image_raw/compressed", RELIABLE)
        driver.wait_until(lambda: cpub.get_subscription_count() > 0 or proc.proc.poll() is not None, 90, "start")
        assert proc.proc.poll() is None, proc.stderr
        rgb = generate_scene(24, SIZE).image
        for ext in (".jpg", ".png"):
            ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            msg = CompressedImage(format=ext[1:])
            msg.header.stamp.sec, msg.header.frame_id = next_stamp(), "cam2"
            msg.data = buf.tobytes()
            out = send_and_wait(cpub, labels, msg)
            assert out.header.frame_id == "cam2" and (out.height, out.width) == SIZE
            decoded = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert (image_to_array(out) == offline.segment(decoded, ["labels"]).labels).mean() > 0.99
        bad = CompressedImage(format="jpeg")
        bad.header.stamp.sec = next_stamp()
        bad.data = buf.tobytes()[:40]
        cpub.publish(bad)
        d = {"diagnostics": diags}
        v = wait_diag(d, lambda v: int(v["bad frames"]) >= 1, node_name=name)
        assert "has a corrupt PNG header" in v["last bad frame"]  # the .png of the loop, cut
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        msg = CompressedImage(format="jpeg")
        msg.header.stamp.sec = next_stamp()
        msg.data = buf.tobytes()
        send_and_wait(cpub, labels, msg)
        assert proc.interrupt() == 0
        assert "Traceback" not in proc.stderr
    finally:
        proc.kill()


@pytest.mark.parametrize("params,message", [
    ({"model": "/nonexistent/model.safetensors"}, "model file /nonexistent/model.safetensors does not exist."),
    ({"resolution": "abc"}, "resolution 'abc' is not of the form HxW"),
    ({"max_rate_hz": "fast"}, "parameter max_rate_hz must be a float, not str 'fast'."),
    ({"qos.depth": 0}, "parameter qos.depth must lie in [1, 100], not 0."),
])
def test_start_up_errors_exit_2_with_one_sentence(ros, params, message):
    driver, env, log_dir = ros
    proc = NodeProcess("seg_bad_start", env, log_dir, params={"device": "cpu", **params}, remaps={})
    try:
        rc = proc.proc.wait(90)
    finally:
        proc.kill()
    err = proc.stderr
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_unknown_ros_arguments_exit_2_with_one_sentence(ros):
    driver, env, log_dir = ros
    done = subprocess.run([sys.executable, "-m", "seg_ros.ros.node", "--ros-args", "--bogus-flag"], env=env,
                          cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "segmentation_node: error: unknown ROS arguments ['--bogus-flag']; remove them or fix their spelling "
        "(ros2 run seg_ros segmentation_node --ros-args -p name:=value ...)."]
