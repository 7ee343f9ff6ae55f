"""Helpers for the ROS 2 tests: an isolated domain, the node as a subprocess, and an in-process test driver.

Imported only by test modules that have checked that rclpy is importable.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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

from seg_ros.io.messages import ImageFields, encode_rgb
from seg_ros.ros.launch_support import READY_MARKER
from seg_ros.ros.tools.flood import claim_domain_id  # the tests' domain ids, shared with the flood

REPO = Path(__file__).resolve().parents[1]
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def ros_session(tmp_path_factory: Any) -> Iterator[tuple[Driver, dict[str, str], Path]]:
    """A module's ROS session: its own domain id, the node processes' environment and log folder, a Driver."""
    domain, lock = claim_domain_id()
    log_dir = tmp_path_factory.mktemp("ros_logs")
    env = ros_env(domain, log_dir)
    driver = Driver(domain)
    try:
        yield driver, env, log_dir
    finally:
        driver.close()
        lock.close()


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
                 remaps: dict[str, str], console_script: bool = False, wrapper: list[str] | None = None,
                 module: str = "seg_ros.ros.node") -> None:
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
            cmd = [sys.executable, "-m", module, *args]
        self.cmd = cmd = [*(wrapper or []), *cmd]
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=open(self.stdout_path, "w"), stderr=open(self.stderr_path, "w"))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> str:
        """The node's one ``READY_MARKER`` line, once it is logged; AssertionError if the node exits first."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [ln for ln in self.stderr.splitlines() if READY_MARKER in ln]
            if lines:
                return lines[0]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready (exit status {self.proc.poll()}): {self.stderr}")
            time.sleep(0.1)

    def stop(self, *signals: int, gap_s: float = 0.3, timeout: float = 30.0) -> int:
        """Send ``signals`` ``gap_s`` apart and wait; returns the exit status."""
        for i, sig in enumerate(signals):
            if i:
                time.sleep(gap_s)
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT (Ctrl-C) and wait; returns the exit status."""
        return self.stop(signal.SIGINT, timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def shm_files(pid: int) -> set[str]:
    """The /dev/shm files (Fast DDS segments, their locks and semaphores) process ``pid`` has open or mapped."""
    out = set()
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
            if path.startswith("/dev/shm/"):
                out.add(path.replace(" (deleted)", ""))
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                out.add(target.replace(" (deleted)", ""))
    except OSError:  # gone, or not ours to read
        pass
    return out


def leftover_shm(node_files: set[str]) -> set[str]:
    """Those of ``node_files`` that a cleanly closed participant must not leave behind: its own segments, every
    lock file (``*_el``, which Fast DDS reads as "owner crashed" when it outlives the owner) and semaphore.

    Port segments (``fastdds_portN``) are not counted: every participant that sent into one maps it too, and
    the last of them removes it, possibly after the node has gone. Their lock files are counted.
    """
    left = {f for f in node_files if os.path.exists(f)}
    if left:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                left -= shm_files(int(proc.name))
    return {f for f in left if not re.fullmatch(r"/dev/shm/fastdds_port\d+", f)}


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
        # The context first: its shutdown ends the spin loop, which an executor shut down under a spinning
        # thread may not (the thread would keep looping with the GIL held for the rest of the session).
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)
        self.executor.shutdown(timeout_sec=2)
        try:
            self.node.destroy_node()
        except Exception:  # noqa: BLE001 - the context is already gone: nothing left to free
            pass

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

    def change_state(self, node: str, transition: str, timeout: float = 120.0) -> bool:
        """Trigger a lifecycle transition (``configure``, ``activate``, ..., ``inactive_shutdown``: the suffix of its
        ``lifecycle_msgs/Transition`` constant, any case); True if it succeeded."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request()
        req.transition = Transition(id=getattr(Transition, f"TRANSITION_{transition.upper()}"))
        return bool(self._call(ChangeState, f"/{node}/change_state", req, timeout).success)

    def lifecycle_state(self, node: str) -> str:
        """The node's lifecycle state label (``unconfigured``, ``inactive``, ``active``, ``finalized``)."""
        from lifecycle_msgs.srv import GetState

        return str(self._call(GetState, f"/{node}/get_state", GetState.Request()).current_state.label)

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
