"""One node process serving two cameras (raw and compressed) with one model: topics, headers, diagnostics."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from ros_harness import RELIABLE, NodeProcess, image_msg, ros_session, stamp_of  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from seg_ros.io.messages import image_to_array  # noqa: E402
from seg_ros.pipeline import Segmenter  # noqa: E402
from seg_ros.synthetic import generate_scene  # noqa: E402

NODE = "seg_multi"
RES = "64x96"


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    yield from ros_session(tmp_path_factory)


@pytest.fixture(scope="module")
def node(ros):
    driver, env, log_dir = ros
    proc = NodeProcess(NODE, env, log_dir, params={
        "resolution": RES, "device": "cpu", "backend": "torch", "precision": "fp32", "cameras": ["front", "rear"],
        "rear.input_transport": "compressed", "rear.qos.reliability": "reliable", "rear.publish.overlay": False},
        remaps={})
    yield proc
    proc.kill()


def test_two_cameras_one_node(ros, node):
    driver = ros[0]
    ready = node.wait_ready()
    # inputs are relative to the node's namespace (here the root), outputs private to the node
    assert "segmenting /front/image (raw, QoS best_effort depth 1); /rear/image/compressed (compressed, QoS " \
           "reliable depth 1)" in ready
    outs = {(cam, o): driver.collect(Image, f"/{NODE}/{cam}/{o}", RELIABLE)[0]
            for cam in ("front", "rear") for o in ("labels", "overlay")}
    infos = driver.collect(CameraInfo, f"/{NODE}/rear/camera_info", RELIABLE)[0]
    diags = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)[0]
    front_pub = driver.node.create_publisher(Image, "/front/image", RELIABLE)
    rear_pub = driver.node.create_publisher(CompressedImage, "/rear/image/compressed", RELIABLE)
    info_pub = driver.node.create_publisher(CameraInfo, "/rear/camera_info", RELIABLE)
    driver.wait_until(lambda: front_pub.get_subscription_count() > 0 and rear_pub.get_subscription_count() > 0,
                      60, "the node to subscribe")
    front_rgb, rear_rgb = generate_scene(21, (64, 96)).image, generate_scene(22, (120, 160)).image
    front = image_msg(front_rgb, "rgb8", sec=41, frame_id="front_optical")
    ok, png = cv2.imencode(".png", cv2.cvtColor(rear_rgb, cv2.COLOR_RGB2BGR))
    rear = CompressedImage(format="png", data=png.tobytes())
    rear.header.stamp.sec, rear.header.frame_id = 42, "rear_optical"
    info = CameraInfo(width=160, height=120, k=[100.0, 0, 80, 0, 100.0, 60, 0, 0, 1])
    info.header.frame_id = "rear_optical"
    deadline = time.monotonic() + 60
    got = {}
    while len(got) < 2 and time.monotonic() < deadline:
        info_pub.publish(info)
        front_pub.publish(front)
        rear_pub.publish(rear)
        for cam, sec in (("front", 41), ("rear", 42)):
            for _, m in outs[(cam, "labels")].items:
                if m.header.stamp.sec == sec:
                    got[cam] = m
        time.sleep(0.3)
    assert set(got) == {"front", "rear"}, node.stderr
    offline = Segmenter(resolution=RES, device="cpu", backend="torch", precision="fp32")
    for cam, rgb, frame_id in (("front", front_rgb, "front_optical"), ("rear", rear_rgb, "rear_optical")):
        m = got[cam]
        assert m.header.frame_id == frame_id and (m.height, m.width) == rgb.shape[:2]
        assert (image_to_array(m) == offline.segment(rgb, ("labels",)).labels).mean() > 0.99
    overlay = outs[("front", "overlay")].wait_for(lambda m: stamp_of(m) == stamp_of(front))
    assert (overlay.height, overlay.width) == (64, 96)
    assert outs[("rear", "overlay")].items == []  # rear.publish.overlay: false
    scaled = infos.wait_for(lambda m: m.header.stamp.sec == 42)
    assert (scaled.height, scaled.width) == (120, 160) and scaled.header.frame_id == "rear_optical"

    def statuses():
        for _, arr in reversed(diags.items):
            names = {s.name: {kv.key: kv.value for kv in s.values} for s in arr.status
                     if s.name.startswith(f"{NODE}:")}
            if len(names) == 3:
                return names
        return None

    driver.wait_until(lambda: statuses() is not None, 30, "the node's three diagnostic statuses")
    names = statuses()
    assert set(names) == {f"{NODE}: segmentation", f"{NODE}: camera front", f"{NODE}: camera rear"}
    assert names[f"{NODE}: segmentation"]["cameras"] == "front, rear"
    assert names[f"{NODE}: camera rear"]["input topic"] == "/rear/image/compressed"
    assert int(names[f"{NODE}: camera rear"]["processed"]) >= 1
    assert np.isfinite(float(names[f"{NODE}: camera front"]["latency p50 ms"]))
    r = driver.set_param(NODE, "front.qos.depth", 4)
    assert r.successful, r.reason
    r = driver.set_param(NODE, "rear.input_transport", "raw")
    assert not r.successful
    assert node.proc.poll() is None


@pytest.mark.parametrize(("params", "message"), [
    ({"cameras": ["front"], "rear.qos.depth": 2}, "parameter rear.qos.depth names camera rear, which is not in "
                                                  "cameras (front)."),
    ({"cameras": ["front", "front"]}, "cameras lists a name twice: front, front."),
    ({"cameras": ["front"], "front.qos.depth": 0}, "front.qos.depth must lie in [1, 100], not 0."),
])
def test_bad_camera_parameters_stop_the_node_with_one_sentence(ros, params, message):
    _, env, log_dir = ros
    proc = NodeProcess("seg_bad_cams", env, log_dir, params={"device": "cpu", **params}, remaps={})
    try:
        assert proc.proc.wait(60) == 2
        err = proc.stderr
        assert message in err and "Traceback" not in err
    finally:
        proc.kill()
