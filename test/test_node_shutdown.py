"""Stopping the node as a real process: SIGINT / SIGTERM at awkward moments, readiness, exit with the parent.

Every stop must end with exit status 0, no error or traceback on stderr, no Fast DDS segment of the node left
in /dev/shm and no process left behind. Slow frames come from a real large inference resolution (the worker is
inside torch) or from the engine's test-only delay (``SEG_ROS_TEST_ONLY_DELAY_S``), which also holds up a model
rebuild so that a stop can land in the middle of one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Parameter  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from ros_harness import (  # noqa: E402
    RELIABLE,
    Driver,
    NodeProcess,
    _param_value,
    diag_values,
    image_msg,
    leftover_shm,
    ros_session,
    shm_files,
)
from sensor_msgs.msg import Image  # noqa: E402

from seg_ros.ros.engine import TEST_DELAY_ENV  # noqa: E402
from seg_ros.ros.launch_support import EXIT_WITH_PARENT_ENV, READY_MARKER  # noqa: E402

SIZE = (48, 64)
BAD_WORDS = ("Traceback", "error", "Error", "terminate called", "Aborted", "exception")


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    yield from ros_session(tmp_path_factory)


def _assert_clean_stop(proc: NodeProcess, rc: int, node_shm: set[str]) -> None:
    err = proc.stderr
    assert rc == 0, err
    assert not [w for w in BAD_WORDS if w in err], err
    assert len([ln for ln in err.splitlines() if READY_MARKER in ln]) == 1, err
    assert node_shm, "the node had no Fast DDS shared memory open (nothing to check)"
    deadline = time.monotonic() + 5  # the test's own participant may still be dropping its mapping of a port
    while leftover_shm(node_shm) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftover_shm(node_shm)


class _Stream:
    """Publishes a small frame at ~20 Hz on ``topic`` from a thread until stopped."""

    def __init__(self, driver: Driver, topic: str) -> None:
        self.pub = driver.node.create_publisher(Image, topic, RELIABLE)
        self._stop = threading.Event()
        self._rgb = np.random.default_rng(0).integers(0, 255, (*SIZE, 3), dtype=np.uint8)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sec = 1
        while not self._stop.wait(0.05):
            try:
                self.pub.publish(image_msg(self._rgb, "rgb8", sec=sec))
            except Exception:  # noqa: BLE001 - the test's context is going away
                return
            sec += 1

    def close(self, driver: Driver) -> None:
        self._stop.set()
        self._thread.join(5)
        driver.node.destroy_publisher(self.pub)


def _wait_received(diags, name: str, n: int = 1, timeout: float = 60.0) -> dict:
    return diags.wait_for(lambda m: (v := diag_values(m, name)) is not None and int(v["received"]) >= n, timeout)


def test_ready_line_sim_time_diagnostics_and_double_sigint_mid_frame_and_swap(ros, random_model_file):
    """One node under use_sim_time with no /clock: it announces itself once, publishes diagnostics anyway; then
    a frame and a model rebuild both held up for a minute are in progress when two SIGINTs arrive."""
    driver, env, log_dir = ros
    name = "seg_stop_a"  # max_rate_hz given as an integer: taken as the float it stands for
    diags = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)[0]
    proc = NodeProcess(name, {**env, TEST_DELAY_ENV: "60"}, log_dir,
                       params={"resolution": "48x64", "device": "cpu", "use_sim_time": True, "max_rate_hz": 5},
                       remaps={"image": f"/{name}/in"})
    stream = None
    try:
        line = proc.wait_ready()
        assert f"{READY_MARKER} segmenting /{name}/in (raw" in line and f"outputs under /{name}/" in line
        assert line.count("segmenting") == 1
        # Diagnostics run on the steady clock: two arrive although no /clock is ever published.
        t0 = time.monotonic()
        diags.wait_for(lambda m: diag_values(m, name) is not None, 30)
        n0 = len([m for m in diags.msgs if diag_values(m, name) is not None])
        diags.wait_for(lambda m: len([x for x in diags.msgs if diag_values(x, name) is not None]) > n0, 30)
        assert time.monotonic() - t0 < 30
        assert driver.get_params(name, "max_rate_hz") == [5.0]
        stream = _Stream(driver, f"/{name}/in")
        _wait_received(diags, name)  # the worker is now in its first (one-minute) frame
        client = driver.node.create_client(SetParameters, f"/{name}/set_parameters")
        assert client.wait_for_service(timeout_sec=30)
        req = SetParameters.Request()
        req.parameters = [Parameter(name="model", value=_param_value(str(random_model_file)))]
        swap = client.call_async(req)  # the rebuild is held up for a minute too
        time.sleep(1.0)
        assert not swap.done()
        node_shm = shm_files(proc.proc.pid)
        t_stop = time.monotonic()
        rc = proc.stop(signal.SIGINT, signal.SIGINT)
        assert time.monotonic() - t_stop < 15  # neither the frame nor the rebuild was waited for
        _assert_clean_stop(proc, rc, node_shm)
        driver.node.destroy_client(client)
    finally:
        if stream is not None:
            stream.close(driver)
        proc.kill()


def test_sigterm_while_inside_a_slow_inference(ros):
    """A 2048x2048 inference (seconds on a CPU thread) is in progress in torch when SIGTERM arrives."""
    driver, env, log_dir = ros
    name = "seg_stop_b"
    diags = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)[0]
    # torch fp32: a slow inference by design (precision auto would first time its candidates at this size)
    proc = NodeProcess(name, env, log_dir, params={"resolution": "2048x2048", "device": "cpu", "backend": "torch",
                                                   "precision": "fp32"},
                       remaps={"image": f"/{name}/in"})
    stream = None
    try:
        proc.wait_ready()
        stream = _Stream(driver, f"/{name}/in")
        _wait_received(diags, name)
        time.sleep(0.5)
        node_shm = shm_files(proc.proc.pid)
        rc = proc.stop(signal.SIGTERM)
        _assert_clean_stop(proc, rc, node_shm)
    finally:
        if stream is not None:
            stream.close(driver)
        proc.kill()


@pytest.mark.parametrize("sig,after_s", [(signal.SIGINT, 0.5), (signal.SIGTERM, 2.5)])
def test_stop_during_start_up(ros, sig, after_s):
    """A signal while torch is imported or the model loads: exit 0, nothing on stderr but at most the ready line."""
    driver, env, log_dir = ros
    proc = NodeProcess("seg_stop_early", env, log_dir, params={"resolution": "48x64", "device": "cpu"}, remaps={})
    try:
        time.sleep(after_s)
        rc = proc.stop(sig)
    finally:
        proc.kill()
    err = proc.stderr
    assert rc == 0, err
    assert [ln for ln in err.splitlines() if ln.strip() and READY_MARKER not in ln] == [], err


def test_executor_errors_once_stopping_are_not_failures():
    """rclpy's executors on Humble and Jazzy can raise in the spinning thread while shutdown() destroys their guard
    conditions (AttributeError on a None guard): after a stop request that is the teardown, not a failure."""
    from seg_ros.ros.node import spin_until_stopped
    from seg_ros.ros.stopping import StopSignals

    class Executor:  # raises what such an executor raises, with the stop already requested or not
        def __init__(self, stop: StopSignals, stopping: bool) -> None:
            self.stop, self.stopping = stop, stopping

        def spin(self) -> None:
            if self.stopping:
                self.stop.request()
            raise AttributeError("'NoneType' object has no attribute 'handle'")

    for stopping in (True, False):
        stop, failure = StopSignals(), []
        spin_until_stopped(Executor(stop, stopping), stop, failure)
        assert stop.requested.is_set()
        assert [str(e) for e in failure] == ([] if stopping else ["'NoneType' object has no attribute 'handle'"])


_PR_SET_CHILD_SUBREAPER = 36
_PARENT = "import subprocess, sys, time; p = subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True); time.sleep(600)"


def test_node_exits_with_its_parent(ros):
    """SEG_ROS_EXIT_WITH_PARENT=1: the parent is SIGKILLed while frames stream in; the node gets SIGTERM from
    Linux and exits 0 without a word (no failed frame from a publisher closing under it).

    This test process becomes a child subreaper for the duration, so the orphaned node is re-parented to it
    and its exit status can be read.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    driver, env, log_dir = ros
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    name = "seg_stop_c"
    diags = driver.collect(DiagnosticArray, "/diagnostics", RELIABLE)[0]
    proc = NodeProcess(name, {**env, EXIT_WITH_PARENT_ENV: "1"}, log_dir,
                       params={"resolution": "48x64", "device": "cpu", "precision": "fp32"},
                       remaps={"image": f"/{name}/in"},
                       wrapper=[sys.executable, "-c", _PARENT])
    node_pid = stream = None
    try:
        proc.wait_ready()
        node_pid = int(proc.stdout_path.read_text().split()[0])
        stream = _Stream(driver, f"/{name}/in")
        diags.wait_for(lambda m: (v := diag_values(m, name)) is not None and int(v["processed"]) >= 3, 60)
        node_shm = shm_files(node_pid)
        proc.proc.kill()  # the parent, without a chance to pass anything on
        proc.proc.wait()
        deadline = time.monotonic() + 20
        while True:
            pid, status = _waitpid_nohang(node_pid)
            if pid == node_pid:
                break
            assert time.monotonic() < deadline, "the node outlived its parent"
            time.sleep(0.1)
        node_pid = None
        assert status == 0, proc.stderr
        _assert_clean_stop(proc, 0, node_shm)
    finally:
        if stream is not None:
            stream.close(driver)
        if node_pid is not None:  # it did not stop: kill and reap it
            try:
                os.kill(node_pid, signal.SIGKILL)
                os.waitpid(node_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        proc.kill()


def _waitpid_nohang(pid: int) -> tuple[int, int]:
    """(pid, exit status) once ``pid`` has ended, else (0, 0)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0, 0
    return got, (os.waitstatus_to_exitcode(status) if got else 0)
