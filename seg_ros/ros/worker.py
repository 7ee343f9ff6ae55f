"""Newest-frame-only processing: a one-item slot and the worker thread that drains it.

The subscription callback only calls :meth:`FrameWorker.submit`; one worker
thread runs the pipeline. A frame that arrives while the worker is busy
replaces the stored one, and the replaced frame is counted as dropped, so no
queue ever grows and the output is always about the newest frame. Pure Python
(no rclpy), so the node's threading is unit-tested and soak-tested without ROS.

Bookkeeping invariant, at any moment::

    submitted == processed + failed + dropped + pending + busy      (pending, busy: 0 or 1)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_WAIT_S = 0.5
"""The worker never sleeps longer than this in one go, so a stop or a rate change is seen promptly even if
a notification were missed."""


@dataclass(frozen=True)
class WorkerCounts:
    """Frame counters (see the module invariant)."""

    submitted: int
    processed: int
    failed: int
    dropped: int
    pending: int
    """1 while a submitted item waits in the slot."""
    busy: int
    """1 while an item is being processed."""


class LatestSlot(Generic[T]):
    """A thread-safe slot holding at most one item, with the counters of the module invariant.

    ``put`` replaces the stored item (counting the old one as dropped); ``take`` waits for an item,
    empties the slot and marks the taker busy until ``done``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._busy = False
        self._closed = False
        self._submitted = self._processed = self._failed = self._dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; returns True when it replaced an item nobody had taken (that one is dropped).

        After :meth:`close` the item is counted as dropped straight away.
        """
        with self._cond:
            self._submitted += 1
            if self._closed:
                self._dropped += 1
                return True
            replaced = self._full
            if replaced:
                self._dropped += 1
            self._item, self._full = item, True
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> tuple[bool, T | None]:
        """Wait up to ``timeout`` s for an item; returns (True, item), or (False, None) on timeout or close."""
        with self._cond:
            if not self._full and not self._closed:
                self._cond.wait(timeout)
            if not self._full or self._closed:
                return False, None
            item, self._item, self._full, self._busy = self._item, None, False, True
            return True, item

    def done(self, ok: bool) -> None:
        """The taken item was processed (``ok``) or failed."""
        with self._cond:
            self._busy = False
            if ok:
                self._processed += 1
            else:
                self._failed += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter; a stored item is counted as dropped and later items are dropped on arrival."""
        with self._cond:
            self._closed = True
            if self._full:
                self._item, self._full = None, False
                self._dropped += 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no item is stored or being processed; returns False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._full and not self._busy, timeout)

    def counts(self) -> WorkerCounts:
        with self._cond:
            return WorkerCounts(self._submitted, self._processed, self._failed, self._dropped,
                                int(self._full), int(self._busy))


class FrameWorker(Generic[T]):
    """Runs ``process(item)`` on the newest submitted item in one background (daemon) thread.

    Args:
        process: called in the worker thread for each item taken; any exception it raises is caught.
        on_error: called in the worker thread with (exception, item) when ``process`` raised.
        min_interval_s: at least this many seconds between the starts of two ``process`` calls
            (1 / ``max_rate_hz``); items that arrive meanwhile replace each other and count as dropped.
        name: the thread's name.
    """

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[BaseException, T], None] | None = None,
        *,
        min_interval_s: float = 0.0,
        name: str = "seg_ros-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._wake = threading.Condition()
        self._min_interval = 0.0
        self.min_interval_s = min_interval_s
        self._slot: LatestSlot[T] = LatestSlot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> FrameWorker[T]:
        self._thread.start()
        return self

    def submit(self, item: T) -> bool:
        """Store ``item`` as the newest frame; returns True when it replaced (dropped) an older one."""
        return self._slot.put(item)

    @property
    def min_interval_s(self) -> float:
        return self._min_interval

    @min_interval_s.setter
    def min_interval_s(self, value: float) -> None:
        """Applies at once: a worker waiting out the old interval re-reads it."""
        if not 0.0 <= value < math.inf:
            raise ValueError(f"min_interval_s must be finite and >= 0, not {value!r}.")
        with self._wake:
            self._min_interval = float(value)
            self._wake.notify_all()

    def counts(self) -> WorkerCounts:
        return self._slot.counts()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted item is processed, failed or dropped; False on timeout."""
        return self._slot.wait_idle(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the thread after the item being processed; a stored item is counted as dropped.

        Returns False when the thread was still busy after ``timeout`` seconds (0: do not wait; it is a
        daemon thread, so it does not keep the process alive).
        """
        self._stop.set()
        self._slot.close()
        with self._wake:
            self._wake.notify_all()
        if self._thread.ident is not None and timeout != 0:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        last_start: float | None = None
        while self._wait_interval(last_start):
            ok, item = self._slot.take(timeout=MAX_WAIT_S)
            if not ok:
                continue
            last_start = time.monotonic()
            self._slot.done(self._call(item))  # type: ignore[arg-type]

    def _wait_interval(self, last_start: float | None) -> bool:
        """Wait until ``min_interval_s`` after ``last_start`` (monotonic s), re-reading the interval whenever it
        changes; False once stopped."""
        with self._wake:
            while not self._stop.is_set():
                left = -1.0 if last_start is None else last_start + self._min_interval - time.monotonic()
                if left <= 0:
                    return True
                self._wake.wait(min(left, MAX_WAIT_S))
        return False

    def _call(self, item: T) -> bool:
        """``process(item)``; True on success. Nothing that it or ``on_error`` raises leaves this function."""
        try:
            self._process(item)
            return True
        except BaseException as e:  # noqa: BLE001 - the worker must survive anything a frame does
            if self._on_error is not None:
                try:
                    self._on_error(e, item)
                except BaseException:  # noqa: BLE001 - nor may a failing error reporter stop it
                    pass
            return False
