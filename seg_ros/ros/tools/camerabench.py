"""``seg-ros bench cameras``: several cameras in one node against one node per camera, memory and throughput.

For each camera count N, two layouts run the same pipeline settings in real ``segmentation_node`` processes on a
private ``ROS_DOMAIN_ID`` (loopback discovery only):

- ``one node``: one process with ``cameras: [cam0, ..., camN-1]``, reading ``/camK/image`` and publishing
  ``/seg_cameras/camK/labels``; each worker round segments the newest frame of every camera as one batch;
- ``node per camera``: N processes ``seg_camK``, each reading ``image`` remapped to ``/camK/image`` and publishing
  ``/seg_camK/labels``; they are started one after the other (the earlier ones wait without frames), so that
  each picks its backend and precision (``auto``) without the others' start-up competing for the CPU.

This process publishes synthetic scenes (:func:`seg_ros.synthetic.generate_scene`, rgb8, reliable, depth 1: see
:data:`INPUT_QOS`) on every camera topic at a fixed rate, each header stamped with the wall time of its publish,
and subscribes ``labels`` of every camera (reliable) and nothing else, so the nodes publish no colour, overlay or
confidence image. After a warm-up (until every camera has had a result, at least ``warmup_s``), it counts for
``seconds``: the results received (aggregate and per camera fps), their latency (receive wall time − stamp, p50
and p99 in ms), and the resident memory of the node processes (the sum of their ``VmRSS``: peak during the
window, and at its end). The processes are stopped with SIGINT and killed if they do not exit in time; none
outlives the run, also on errors.

rclpy is imported only inside the functions that talk to ROS; the report and its tables are in
:mod:`seg_ros.ros.tools.camerabench_report`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from seg_ros.core.errors import SegRosError
from seg_ros.core.machine import describe_machine
from seg_ros.ros.launch_support import READY_MARKER
from seg_ros.ros.tools.camerabench_report import (
    LAYOUTS,
    NODE_PER_CAMERA,
    ONE_NODE,
    CameraBenchReport,
    CameraComparison,
    CameraStats,
    LayoutRun,
)
from seg_ros.ros.tools.flood import claim_domain_id, read_status_kb
from seg_ros.synthetic import generate_scene

CAMERA_COUNTS = (1, 2, 4)
MULTI_NODE_NAME = "seg_cameras"
OUTPUT = "labels"
"""The only output subscribed."""
INPUT_QOS = {"qos.reliability": "reliable", "qos.depth": 1}
"""The nodes' input QoS, which the frames are published with too. Reliable: best effort loses most 0.7 MB frames
(360×640 rgb8) in Fast DDS's fragments on a loaded two-core machine, which would measure the transport's losses,
not the node."""
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
RSS_PERIOD_S = 0.25


def camera_name(index: int) -> str:
    return f"cam{index}"


def input_topic(camera: str) -> str:
    return f"/{camera}/image"


# -- measuring ------------------------------------------------------------------------------------------------


def latency_percentiles(latencies_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p99) of ``latencies_ms``; (None, None) for none."""
    if not latencies_ms:
        return None, None
    p50, p99 = np.percentile(np.asarray(latencies_ms, dtype=np.float64), [50, 99])
    return float(p50), float(p99)


def process_rss_mb(pids: Sequence[int]) -> float | None:
    """Sum of the VmRSS of ``pids`` in MB (MiB); None once any of them has exited."""
    total = 0
    for pid in pids:
        kb = read_status_kb(pid)
        if kb is None:
            return None
        total += kb["VmRSS"]
    return total / 1024


def node_env(domain_id: int, log_dir: Path) -> dict[str, str]:
    """The node processes' environment: this one's, on a private domain with discovery on this host only."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOG_DIR=str(log_dir),
               RCUTILS_COLORIZED_OUTPUT="0", PYTHONUNBUFFERED="1")
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


def _yaml(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


class NodeRun:
    """One ``segmentation_node`` process; its stderr goes to ``log_dir/<name>.stderr``."""

    def __init__(self, name: str, params: dict[str, Any], remaps: dict[str, str], env: dict[str, str],
                 log_dir: Path) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        cmd = [sys.executable, "-m", "seg_ros.ros.node", "--ros-args", "-r", f"__node:={name}"]
        for k, v in remaps.items():
            cmd += ["-r", f"{k}:={v}"]
        for k, v in params.items():
            cmd += ["-p", f"{k}:={_yaml(v)}"]
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(ln.strip() for ln in text.splitlines()[-lines:] if ln.strip())

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> str:
        """The pipeline the node announced in its ready line; SegRosError if it exits or times out first."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_path.read_text(errors="replace")
            line = next((ln for ln in text.splitlines() if READY_MARKER in ln), None)
            if line is not None:
                m = re.search(r" with (.*); outputs under ", line)
                return m[1] if m else line.partition(READY_MARKER)[2].strip()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                state = ("timed out" if self.proc.poll() is None else f"exited with status {self.proc.returncode}")
                raise SegRosError(f"node {self.name} did not become ready ({state}); its last lines: "
                                  f"{self.stderr_tail() or 'none'}")
            time.sleep(0.1)

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = STOP_TIMEOUT_S) -> str | None:
        """Wait for the exit after :meth:`interrupt` (kill after ``timeout`` s); a problem line, or None if clean."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return f"{self.name} did not exit within {timeout:g} s of SIGINT and was killed"
        return None if status == 0 else f"{self.name} exited with status {status} at SIGINT"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _RssSampler(threading.Thread):
    """The peak of :func:`process_rss_mb` over the processes, sampled every :data:`RSS_PERIOD_S`."""

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak_mb = list(pids), 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            mb = process_rss_mb(self.pids)
            if mb is not None:
                self.peak_mb = max(self.peak_mb, mb)
            self._done.wait(RSS_PERIOD_S)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb


class CameraDriver:
    """This process's side: a publisher per camera topic at a fixed rate, a ``labels`` subscription per camera.

    Args:
        domain_id: the nodes' ROS domain.
        frames: camera → (H, W, 3) uint8 RGB frame it sends (every time, with a new stamp).
        label_topics: camera → the node's ``labels`` topic for it.
        rate_hz: frames per second per camera.
    """

    def __init__(self, domain_id: int, frames: dict[str, np.ndarray], label_topics: dict[str, str],
                 rate_hz: float) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from seg_ros.io.messages import image_message

        self.rate_hz = rate_hz
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(f"seg_ros_camerabench_{os.getpid()}", context=self.context)
        inputs = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        outputs = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._messages = {c: image_message(Image, Header(frame_id=c), rgb) for c, rgb in frames.items()}
        self._publishers = {c: self.node.create_publisher(Image, input_topic(c), inputs) for c in frames}
        self._lock = threading.Lock()
        self.sent: dict[str, list[int]] = {c: [] for c in frames}
        """Camera → publish wall times, ns."""
        self.received: dict[str, list[tuple[int, int]]] = {c: [] for c in frames}
        """Camera → (receive wall time, header stamp) of each ``labels`` message, ns."""
        self._subscriptions = {c: self.node.create_subscription(Image, topic, self._on_labels(c), outputs)
                               for c, topic in label_topics.items()}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()
        self._stop_publishing = threading.Event()
        self._publisher_thread: threading.Thread | None = None

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutting the context down ends the spin
            pass

    def _on_labels(self, camera: str) -> Callable[[Any], None]:
        def on_labels(msg: Any) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with self._lock:
                self.received[camera].append((now, stamp))

        return on_labels

    def connected(self) -> bool:
        """Every input topic has its node's subscription and every ``labels`` topic its node's publisher."""
        return (all(p.get_subscription_count() > 0 for p in self._publishers.values())
                and all(s.get_publisher_count() > 0 for s in self._subscriptions.values()))

    def start_publishing(self) -> None:
        self._publisher_thread = threading.Thread(target=self._publish_loop, daemon=True)
        self._publisher_thread.start()

    def _publish_loop(self) -> None:
        period_ns = round(1e9 / self.rate_hz)
        next_ns = time.time_ns()
        while not self._stop_publishing.is_set():
            for camera, msg in self._messages.items():
                now = time.time_ns()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
                self._publishers[camera].publish(msg)
                with self._lock:
                    self.sent[camera].append(now)
            next_ns += period_ns
            delay = next_ns - time.time_ns()
            if delay > 0:
                self._stop_publishing.wait(delay / 1e9)
            else:  # behind: do not send a burst to catch up
                next_ns = time.time_ns()

    def stop_publishing(self) -> None:
        self._stop_publishing.set()
        if self._publisher_thread is not None:
            self._publisher_thread.join()

    def results_since(self, start_ns: int) -> dict[str, int]:
        """Camera → ``labels`` messages received of frames stamped at or after ``start_ns``."""
        with self._lock:
            return {c: sum(1 for _, stamp in got if stamp >= start_ns) for c, got in self.received.items()}

    def window(self, start_ns: int, end_ns: int) -> list[CameraStats]:
        """Per camera: frames sent in [start, end), results received in it of frames stamped in it, latencies."""
        seconds = (end_ns - start_ns) / 1e9
        out = []
        with self._lock:
            for camera, got in self.received.items():
                lat = [(rx - stamp) / 1e6 for rx, stamp in got if stamp >= start_ns and rx < end_ns]
                p50, p99 = latency_percentiles(lat)
                sent = sum(1 for t in self.sent[camera] if start_ns <= t < end_ns)
                out.append(CameraStats(camera, sent, len(lat), len(lat) / seconds, p50, p99))
        return out

    def close(self) -> None:
        import rclpy

        self.stop_publishing()
        # The context first: its shutdown ends the spin loop (an executor shut down while its thread spins can
        # keep that thread looping with the GIL held); then the thread is joined and the rest torn down.
        rclpy.try_shutdown(context=self.context)
        self._spinner.join(5.0)
        self.executor.shutdown(timeout_sec=2)
        try:
            self.node.destroy_node()
        except Exception:  # noqa: BLE001 - the context is already gone: nothing left to free
            pass


def _layout_nodes(layout: str, cameras: list[str], params: dict[str, Any]) -> list[tuple[str, dict, dict]]:
    """(node name, parameters, remaps) of each process of ``layout``."""
    if layout == ONE_NODE:
        return [(MULTI_NODE_NAME, {**params, "cameras": cameras}, {})]
    return [(f"seg_{c}", params, {"image": input_topic(c)}) for c in cameras]


def label_topic(layout: str, camera: str) -> str:
    """The ``labels`` topic of ``camera`` in ``layout``."""
    return f"/{MULTI_NODE_NAME}/{camera}/{OUTPUT}" if layout == ONE_NODE else f"/seg_{camera}/{OUTPUT}"


def run_layout(layout: str, n_cameras: int, params: dict[str, Any], *, domain_id: int, log_dir: Path,
               resolution: tuple[int, int], rate_hz: float, seconds: float, warmup_s: float,
               problems: list[str], progress: Callable[[str], None] | None = None) -> LayoutRun:
    """Start ``layout``'s node processes for ``n_cameras`` cameras, drive and measure them, stop them.

    Problems at stopping (a process that was killed, or exited non-zero) are appended to ``problems``.

    Raises:
        SegRosError: a node did not become ready, died, or no camera got a result during the warm-up.
    """
    say = progress or (lambda s: None)
    cameras = [camera_name(i) for i in range(n_cameras)]
    env = node_env(domain_id, log_dir)
    nodes: list[NodeRun] = []
    driver: CameraDriver | None = None
    try:
        pipelines = []
        for name, node_params, remaps in _layout_nodes(layout, cameras, params):
            say(f"{n_cameras} camera(s), {layout}: starting {name}")
            nodes.append(NodeRun(name, node_params, remaps, env, log_dir))
            pipelines.append(nodes[-1].wait_ready())
        frames = {c: generate_scene(i, resolution).image for i, c in enumerate(cameras)}
        driver = CameraDriver(domain_id, frames, {c: label_topic(layout, c) for c in cameras}, rate_hz)
        _wait(driver.connected, 60.0, nodes, "the nodes' topics to connect")
        say(f"{n_cameras} camera(s), {layout}: warming up")
        warm_start = time.time_ns()
        driver.start_publishing()
        _wait(lambda: min(driver.results_since(warm_start).values()) > 0, READY_TIMEOUT_S, nodes,
              "a result on every camera")
        time.sleep(max(0.0, warmup_s - (time.time_ns() - warm_start) / 1e9))
        say(f"{n_cameras} camera(s), {layout}: measuring for {seconds:g} s")
        sampler = _RssSampler([n.pid for n in nodes])
        sampler.start()
        start = time.time_ns()
        time.sleep(seconds)
        end = time.time_ns()
        rss_end = process_rss_mb([n.pid for n in nodes])
        peak = sampler.stop()
        _check_alive(nodes)
        if rss_end is None:
            raise SegRosError("a node exited during the measurement")
        driver.stop_publishing()
        per_camera = driver.window(start, end)
        window_s = (end - start) / 1e9
        return LayoutRun(layout=layout, cameras=n_cameras, processes=len(nodes), pipelines=sorted(set(pipelines)),
                         seconds=window_s, fps=sum(c.frames for c in per_camera) / window_s,
                         rss_mb_end=rss_end, rss_mb_peak=max(peak, rss_end), per_camera=per_camera)
    finally:
        if driver is not None:
            driver.close()
        for n in nodes:
            n.interrupt()
        for n in nodes:
            problem = n.finish()
            if problem is not None:
                problems.append(problem)
        for n in nodes:
            n.kill()


def _check_alive(nodes: Sequence[NodeRun]) -> None:
    for n in nodes:
        if n.proc.poll() is not None:
            raise SegRosError(f"node {n.name} exited with status {n.proc.returncode} during the benchmark; its last "
                              f"lines: {n.stderr_tail() or 'none'}")


def _wait(pred: Callable[[], bool], timeout: float, nodes: Sequence[NodeRun], what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        _check_alive(nodes)
        if time.monotonic() > deadline:
            raise SegRosError(f"timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.1)


def require_rclpy() -> None:
    """SegRosError (one sentence) where rclpy is not importable."""
    try:
        import rclpy  # noqa: F401
    except ImportError:
        raise SegRosError("seg-ros bench cameras needs ROS 2 (rclpy could not be imported); source a ROS 2 "
                          "install first.") from None


def library_versions() -> dict[str, str]:
    """Versions of torch, the inference runtimes that are installed here, and rclpy."""
    from importlib import metadata

    out = {}
    for name in ("torch", "openvino", "onnxruntime", "tensorrt", "rclpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_camera_bench(camera_counts: Sequence[int] = CAMERA_COUNTS, *, model: str, resolution: tuple[int, int],
                     rate_hz: float = 30.0, seconds: float = 20.0, warmup_s: float = 5.0, device: str = "cpu",
                     backend: str = "auto", precision: str = "auto", log_dir: str | os.PathLike | None = None,
                     progress: Callable[[str], None] | None = None) -> CameraBenchReport:
    """Both layouts for each of ``camera_counts``; see the module docstring.

    Args:
        resolution: (H, W) of the published frames, also the nodes' inference size (``resolution`` parameter).
        rate_hz: frames per second published on each camera topic.
        seconds: length of each measured window; ``warmup_s``: least time driven before it.
        log_dir: keep the nodes' stderr and ROS logs here (a temporary folder, removed after, when None).

    Raises:
        SegRosError: rclpy is missing, or a node did not start, died or produced nothing.
    """
    require_rclpy()
    h, w = resolution
    params = {"model": model, "device": device, "backend": backend, "precision": precision,
              "resolution": f"{h}x{w}", **INPUT_QOS}
    domain_id, lock = _claim_domain()
    tmp = tempfile.TemporaryDirectory(prefix="seg_ros-camerabench-") if log_dir is None else None
    logs = Path(log_dir if log_dir is not None else tmp.name)  # type: ignore[union-attr]
    logs.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    comparisons = []
    try:
        for n in camera_counts:
            runs = {layout: run_layout(layout, n, params, domain_id=domain_id, log_dir=logs, resolution=resolution,
                                       rate_hz=rate_hz, seconds=seconds, warmup_s=warmup_s, problems=problems,
                                       progress=progress) for layout in LAYOUTS}
            comparisons.append(CameraComparison(n, runs[ONE_NODE], runs[NODE_PER_CAMERA]))
    finally:
        lock.close()
        if tmp is not None:
            tmp.cleanup()
    return CameraBenchReport(machine=describe_machine(), date=time.strftime("%Y-%m-%d"), versions=library_versions(),
                             model=model, device=device, backend=backend, precision=precision, resolution=f"{h}x{w}",
                             rate_hz=rate_hz, seconds=seconds, warmup_s=warmup_s, outputs=[OUTPUT],
                             input_qos=f"{INPUT_QOS['qos.reliability']} depth {INPUT_QOS['qos.depth']}",
                             comparisons=comparisons, problems=problems)


def _claim_domain() -> tuple[int, IO[str]]:
    try:
        return claim_domain_id()
    except RuntimeError as e:
        raise SegRosError(f"{e}; another benchmark or test holds every id.") from None


__all__ = ["CAMERA_COUNTS", "INPUT_QOS", "CameraDriver", "NodeRun", "label_topic", "latency_percentiles",
           "library_versions", "process_rss_mb", "require_rclpy", "run_camera_bench", "run_layout"]
