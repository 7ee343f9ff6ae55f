"""The node's executor: frames and timers keep running in the spinning thread while a service callback waits."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = [pytest.mark.ros]
rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import SetParametersResult  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_harness import RELIABLE, image_msg, ros_session, stamp_of  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from seg_ros.ros.executor import FramesFirstExecutor  # noqa: E402
from seg_ros.synthetic import generate_scene  # noqa: E402


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    yield from ros_session(tmp_path_factory)


def test_frames_and_timers_run_in_the_spinning_thread_while_a_service_waits(ros):
    driver = ros[0]
    node = rclpy.create_node("executor_under_test", context=driver.context)
    node.declare_parameter("model", "a")
    release = threading.Event()
    threads: dict[str, set[str]] = {"image": set(), "timer": set(), "service": set()}
    stamps: list[int] = []
    ticks: list[float] = []

    def on_set(params):
        threads["service"].add(threading.current_thread().name)
        release.wait(20)  # a model that takes seconds to load
        return SetParametersResult(successful=True)

    def on_image(msg):
        threads["image"].add(threading.current_thread().name)
        stamps.append(stamp_of(msg)[0])

    def on_tick():
        threads["timer"].add(threading.current_thread().name)
        ticks.append(time.monotonic())

    node.add_on_set_parameters_callback(on_set)
    # as in the node: inputs and timers in groups of their own, the parameter service in the default group
    node.create_subscription(Image, "/executor_test/image", on_image, RELIABLE,
                             callback_group=MutuallyExclusiveCallbackGroup())
    node.create_timer(0.02, on_tick, callback_group=MutuallyExclusiveCallbackGroup())
    executor = FramesFirstExecutor(context=driver.context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="spinner", daemon=True)
    spinner.start()
    pub = driver.node.create_publisher(Image, "/executor_test/image", RELIABLE)
    rgb = generate_scene(1, (48, 64)).image
    try:
        driver.wait_until(lambda: pub.get_subscription_count() > 0, 30, "the subscription")
        client = driver.node.create_client(SetParameters, "/executor_under_test/set_parameters")
        assert client.wait_for_service(timeout_sec=30)
        answer = client.call_async(SetParameters.Request(parameters=[Parameter("model", value="b").to_parameter_msg()]))
        driver.wait_until(lambda: threads["service"], 30, "the service callback to start")
        before_ticks = len(ticks)
        for sec in range(100, 110):  # sent while the service callback waits
            pub.publish(image_msg(rgb, "rgb8", sec=sec))
            time.sleep(0.05)
        driver.wait_until(lambda: 109 in stamps, 10, "the frames sent during the service call")
        assert len(ticks) > before_ticks + 5 and not answer.done()
        release.set()
        driver.wait_until(answer.done, 20, "the service answer")
        assert answer.result().results[0].successful
    finally:
        release.set()
        executor.shutdown(timeout_sec=2)
        spinner.join(5)
        node.destroy_node()
    assert threads["image"] == threads["timer"] == {"spinner"}
    assert len(threads["service"]) == 1 and next(iter(threads["service"])).startswith("seg_ros-services")
