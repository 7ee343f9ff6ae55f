"""The lifecycle node as a real process: transition by transition, memory at each step, failures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy")
pytest.importorskip("lifecycle_msgs")

from ros_harness import RELIABLE, NodeProcess, image_msg, ros_session, stamp_of  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from seg_ros.synthetic import generate_scene  # noqa: E402

NODE = "seg_life"
TOPIC = f"/{NODE}_in/image"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def topic_count(driver, topic: str) -> int:
    return driver.node.count_publishers(topic)


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    yield from ros_session(tmp_path_factory)


def test_transitions_memory_and_frames(ros):
    driver, env, log_dir = ros
    proc = NodeProcess(NODE, env, log_dir, module="seg_ros.ros.lifecycle_node", remaps={"image": TOPIC},
                       params={"resolution": "64x96", "device": "cpu"})
    try:
        driver.wait_until(lambda: "waiting for the configure transition" in proc.stderr or proc.proc.poll() is not None,
                          90, "the node to start")
        assert driver.lifecycle_state(NODE) == "unconfigured"
        assert topic_count(driver, f"/{NODE}/labels") == 0
        before = rss_mb(proc.proc.pid)

        assert driver.change_state(NODE, "configure")
        assert driver.lifecycle_state(NODE) == "inactive"
        configured = rss_mb(proc.proc.pid)
        assert topic_count(driver, f"/{NODE}/labels") == 0  # nothing flows while inactive
        assert "configured: liteseg_mobilenetv2" in proc.stderr

        labels = driver.collect(Image, f"/{NODE}/labels", RELIABLE)[0]
        pub = driver.node.create_publisher(Image, TOPIC, RELIABLE)
        assert driver.change_state(NODE, "activate")
        assert driver.lifecycle_state(NODE) == "active"
        driver.wait_until(lambda: pub.get_subscription_count() > 0, 30, "the node to subscribe")
        msg = image_msg(generate_scene(3, (64, 96)).image, "rgb8", sec=77)
        deadline = time.monotonic() + 30
        while not any(stamp_of(m) == (77, 0) for m in labels.msgs) and time.monotonic() < deadline:
            pub.publish(msg)
            time.sleep(0.2)
        assert any(stamp_of(m) == (77, 0) for m in labels.msgs)

        assert driver.change_state(NODE, "deactivate")
        driver.wait_until(lambda: pub.get_subscription_count() == 0, 30, "the subscription to go")
        count = len(labels.msgs)
        pub.publish(image_msg(generate_scene(4, (64, 96)).image, "rgb8", sec=78))
        time.sleep(1.0)
        assert len(labels.msgs) == count  # inactive: no frame is taken
        assert driver.change_state(NODE, "activate")  # and back
        driver.wait_until(lambda: pub.get_subscription_count() > 0, 30, "the node to subscribe again")
        assert driver.change_state(NODE, "deactivate")

        assert driver.change_state(NODE, "cleanup")
        assert driver.lifecycle_state(NODE) == "unconfigured"
        cleaned = rss_mb(proc.proc.pid)
        # more cycles: configure/cleanup does not leak a model each time
        cycles = []
        for _ in range(4):
            assert driver.change_state(NODE, "configure") and driver.change_state(NODE, "cleanup")
            cycles.append(rss_mb(proc.proc.pid))
        print(f"RSS MB: before configure {before:.0f}, configured {configured:.0f}, after cleanup {cleaned:.0f}, "
              f"after further cycles {', '.join(f'{c:.0f}' for c in cycles)}")
        assert configured > before + 20  # the model and the backend came in
        assert cleaned < configured
        # the allocator keeps some freed memory, so a cleanup does not always come back to the same RSS; a leaked
        # model and backend would add about 35 MB a cycle, 140 MB over four
        assert max(cycles) < configured + 25

        assert driver.change_state(NODE, "unconfigured_shutdown")
        assert driver.lifecycle_state(NODE) == "finalized"
        assert proc.proc.poll() is None  # finalized, still answering until stopped
        assert proc.interrupt() == 0
    finally:
        proc.kill()


def test_a_failed_configure_leaves_the_node_unconfigured_and_recoverable(ros, tmp_path):
    driver, env, log_dir = ros
    name = f"{NODE}_bad"
    proc = NodeProcess(name, env, log_dir, module="seg_ros.ros.lifecycle_node", remaps={},
                       params={"model": str(tmp_path / "missing.safetensors"), "device": "cpu"})
    try:
        driver.wait_until(lambda: "waiting for the configure transition" in proc.stderr or proc.proc.poll() is not None,
                          90, "the node to start")
        assert driver.change_state(name, "configure") is False
        assert driver.lifecycle_state(name) == "unconfigured"
        assert "configure failed, the node stays unconfigured: model file" in proc.stderr
        assert "missing.safetensors" in proc.stderr
        r = driver.set_param(name, "resolution", "abc")
        assert not r.successful and "resolution" in r.reason
        assert driver.set_param(name, "model", "liteseg_mobilenetv2_synthetic").successful
        assert driver.set_param(name, "resolution", "64x96").successful
        assert driver.change_state(name, "configure")
        assert driver.lifecycle_state(name) == "inactive"
        assert driver.change_state(name, "inactive_shutdown")
        assert proc.interrupt() == 0
    finally:
        proc.kill()


def test_ctrl_c_while_active_exits_cleanly(ros):
    driver, env, log_dir = ros
    name = f"{NODE}_int"
    proc = NodeProcess(name, env, log_dir, module="seg_ros.ros.lifecycle_node", remaps={},
                       params={"resolution": "64x96", "device": "cpu", "cameras": ["a", "b"]})
    try:
        driver.wait_until(lambda: "waiting for the configure transition" in proc.stderr or proc.proc.poll() is not None,
                          90, "the node to start")
        assert driver.change_state(name, "configure") and driver.change_state(name, "activate")
        driver.wait_until(lambda: driver.node.count_subscribers("/b/image") > 0, 30, "camera b's subscription")
        assert "segmentation_node ready: segmenting /a/image (raw" in proc.stderr
        assert proc.interrupt() == 0
        assert "Traceback" not in proc.stderr and "terminate called" not in proc.stderr
    finally:
        proc.kill()
