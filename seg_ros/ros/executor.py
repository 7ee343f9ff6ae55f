"""The node's executor: frames in the spinning thread, services beside it.

rclpy's MultiThreadedExecutor hands every callback to a pool of threads. Beside a network running on every
core (OpenVINO, ONNX Runtime and torch all use them), each frame then needs several thread wake-ups on a
machine with no idle core, and the node received a 30 Hz camera at 4 to 12 Hz on a 2-core CPU while a
SingleThreadedExecutor in the same process received all 30 (docs/benchmarks.md). A SingleThreadedExecutor alone
would stall the frames behind a parameter change that waits seconds for a new model, or a lifecycle
``configure``.

:class:`FramesFirstExecutor` therefore runs subscriptions, timers and events where it spins, and hands only
service callbacks (parameters, lifecycle transitions, whose work can take seconds) to a small pool of their own.
It is a custom executor as rclpy's Executor documents them (``spin_once`` over ``wait_for_ready_callbacks``), so
it runs on Humble, Jazzy and later alike.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rclpy.executors import ConditionReachedException, Executor, ShutdownException, TimeoutException
from rclpy.service import Service

SERVICE_THREADS = 2
"""Threads that run service callbacks: one may wait for a model while another answers (e.g. get_parameters
in a callback group of its own)."""


class FramesFirstExecutor(Executor):
    """Runs every callback in the thread that spins, except service callbacks, which run in
    :data:`SERVICE_THREADS` threads of their own (callback groups still decide what may run at once)."""

    def __init__(self, *, context: Any = None) -> None:
        super().__init__(context=context)
        self._services = ThreadPoolExecutor(SERVICE_THREADS, thread_name_prefix="seg_ros-services")
        self._running: list[Any] = []
        """Service callbacks handed to the pool (rclpy Tasks), until they are done."""

    def spin_once(self, timeout_sec: float | None = None) -> None:
        try:
            handler, entity, _ = self.wait_for_ready_callbacks(timeout_sec=timeout_sec)
        except (ShutdownException, TimeoutException, ConditionReachedException):
            return
        if isinstance(entity, Service):
            self._services.submit(handler)
            self._running.append(handler)
        else:
            handler()
            error = handler.exception()
            if error is not None:
                raise error
        for done in [f for f in self._running if f.done()]:
            self._running.remove(done)
            done.result()  # a service callback's exception surfaces here, as in rclpy's MultiThreadedExecutor

    def shutdown(self, timeout_sec: float | None = None, *args: Any, **kwargs: Any) -> bool:
        ok = super().shutdown(timeout_sec, *args, **kwargs)
        self._services.shutdown(wait=False)
        return ok


__all__ = ["SERVICE_THREADS", "FramesFirstExecutor"]
