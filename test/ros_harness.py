"""Helpers for the ROS 2 tests: an isolated domain, the node as a subprocess, and an in-process test driver.

Imported only by test modules that have checked that rclpy is importable.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_ros.ros.messages import ImageFields, encode_rgb

REPO = Path(__file__).resolve().parents[1]
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def claim_domain_id() -> tuple[int, Any]:
    """A ROS_DOMAIN_ID no other seg_ros test session on this machine holds (a lock file per id)."""
    start = os.getpid() % 90
    for i in range(90):
        d = 10 + (start + i) % 90
        f = open(f"/tmp/seg_ros-test-ros-domain-{d}.lock", "w")  # noqa: SIM115 - held for the session
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return d, f
    raise RuntimeError("no free ROS domain id in 10..99")


def ros_env(domain_id: int, log_dir: Path) -> dict[str, str]:
    """Environment of the node processes: own domain, discovery on this host only, logs in log_dir."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOG_DIR=str(log_dir),
               RCUTILS_COLORIZED_OUTPUT="0", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


class NodeProcess:
    """``segmentation_node`` in its own process; stderr goes to a file the test can read."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, params: dict[str, Any],
                 remaps: dict[str, str], console_script: bool = False) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        self.stdout_path = log_dir / f"{name}.stdout"
        args = ["--ros-args", "-r", f"__node:={name}"]
        for k, v in remaps.items():
            args += ["-r", f"{k}:={v}"]
        for k, v in params.items():
            args += ["-p", f"{k}:={_yaml_value(v)}"]
        if console_script:
            cmd = [str(Path(sys.executable).parent / "segmentation_node"), *args]
        else:
            cmd = [sys.executable, "-m", "seg_ros.ros.node", *args]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=open(self.stdout_path, "w"), stderr=open(self.stderr_path, "w"))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT (Ctrl-C) and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v == "":
        return "''"
    return str(v)


class Collector:
    """Messages received on one topic, with their arrival times (monotonic s)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.items.append((time.monotonic(), msg))
            self._cond.notify_all()

    @property
    def msgs(self) -> list[Any]:
        with self._cond:
            return [m for _, m in self.items]

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        """The first message (old or new) for which ``pred`` holds; AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = 0
            while True:
                for _, m in self.items[checked:]:
                    if pred(m):
                        return m
                checked = len(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message within {timeout} s ({len(self.items)} received)")
                self._cond.wait(left)


class Driver:
    """A test node in this process: publishers, collecting subscriptions, parameter service calls."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("seg_ros_test_driver", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._clients: dict[tuple[str, str], Any] = {}

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown of the context ends the spin
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def collect(self, msg_type: type, topic: str, qos: QoSProfile = RELIABLE) -> tuple[Collector, Any]:
        c = Collector()
        sub = self.node.create_subscription(msg_type, topic, c, qos)
        return c, sub

    def wait_until(self, pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def _client(self, srv_type: type, name: str) -> Any:
        key = (srv_type.__name__, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        cli = self._clients[key]
        if not cli.wait_for_service(timeout_sec=30):
            raise AssertionError(f"service {name} did not appear")
        return cli

    def _call(self, srv_type: type, name: str, request: Any, timeout: float = 60.0) -> Any:
        fut = self._client(srv_type, name).call_async(request)
        deadline = time.monotonic() + timeout
        while not fut.done():
            if time.monotonic() > deadline:
                raise AssertionError(f"service {name} did not answer within {timeout} s")
            time.sleep(0.01)
        return fut.result()

    def set_params(self, node: str, **values: Any) -> list[Any]:
        """Set parameters (one request); returns the SetParametersResult list."""
        req = SetParameters.Request()
        req.parameters = [Parameter(name=k.replace("__", "."), value=_param_value(v)) for k, v in values.items()]
        return list(self._call(SetParameters, f"/{node}/set_parameters", req).results)

    def set_param(self, node: str, name: str, value: Any) -> Any:
        req = SetParameters.Request()
        req.parameters = [Parameter(name=name, value=_param_value(value))]
        return self._call(SetParameters, f"/{node}/set_parameters", req).results[0]

    def get_params(self, node: str, *names: str) -> list[Any]:
        req = GetParameters.Request()
        req.names = list(names)
        res = self._call(GetParameters, f"/{node}/get_parameters", req)
        return [_from_param_value(v) for v in res.values]


def _param_value(v: Any) -> ParameterValue:
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(v))


def _from_param_value(v: ParameterValue) -> Any:
    return {ParameterType.PARAMETER_BOOL: v.bool_value, ParameterType.PARAMETER_INTEGER: v.integer_value,
            ParameterType.PARAMETER_DOUBLE: v.double_value, ParameterType.PARAMETER_STRING: v.string_value}.get(
        v.type)


def image_msg(rgb_or_fields: np.ndarray | ImageFields, encoding: str = "rgb8", *, sec: int, nanosec: int = 0,
              frame_id: str = "camera") -> Image:
    """An rclpy sensor_msgs/Image of an RGB frame in ``encoding`` (or of ready fields), with a given stamp."""
    f = rgb_or_fields if isinstance(rgb_or_fields, ImageFields) else encode_rgb(rgb_or_fields, encoding)
    msg = Image()
    msg.header = Header(frame_id=frame_id)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = f.height, f.width, f.encoding, \
        f.is_bigendian, f.step
    msg.data = f.data.tobytes()
    return msg


def stamp_of(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def diag_values(array_msg: Any, node_name: str) -> dict[str, str] | None:
    """Key/values of the node's status in a DiagnosticArray, or None if it has none."""
    for st in array_msg.status:
        if st.name.startswith(f"{node_name}:"):
            vals = {kv.key: kv.value for kv in st.values}
            vals["_level"] = st.level
            vals["_message"] = st.message
            return vals
    return None
