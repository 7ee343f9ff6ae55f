"""Newest-frame-only processing: one slot per camera and the worker thread that drains them.

The subscription callbacks only call :meth:`FrameWorker.submit`; one worker
thread runs the pipeline. A frame that arrives while the worker is busy
replaces the one stored for its camera, and the replaced frame is counted as
dropped, so no queue ever grows and the output is always about the newest
frames. Pure Python (no rclpy), so the node's threading is unit-tested and
soak-tested without ROS.

Scheduling across cameras: each round takes the newest frame of *every* camera
that has one and hands them to ``process_batch`` together (the engine runs them
through the network as one batch). A camera is served at most once per round
and every camera with a waiting frame is in the next round, so a fast camera
can only drop its own frames, never delay a slow one by more than one round.

Bookkeeping invariant, per camera and so in total, at any moment::

    submitted == processed + failed + dropped + pending + busy      (pending, busy: 0 or 1 per camera)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
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
    """Items waiting in the slot(s): 0 or 1 per camera."""
    busy: int
    """Items being processed: 0 or 1 per camera."""

    def __add__(self, other: WorkerCounts) -> WorkerCounts:
        return WorkerCounts(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[int, ...]:
        return (self.submitted, self.processed, self.failed, self.dropped, self.pending, self.busy)


class LatestSlot(Generic[T]):
    """A thread-safe slot holding at most one item, with the counters of the module invariant.

    ``put`` replaces the stored item (counting the old one as dropped); ``take`` waits for an item,
    empties the slot and marks the taker busy until ``done``. Slots built on one shared ``cond`` can be
    waited on together (:class:`FrameWorker`).
    """

    def __init__(self, cond: threading.Condition | None = None) -> None:
        self._cond = cond or threading.Condition()
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
            return self.take_now()

    def take_now(self) -> tuple[bool, T | None]:
        """(True, item) and the slot marked busy if an item is stored, else (False, None); never waits."""
        with self._cond:
            if not self._full or self._closed:
                return False, None
            item, self._item, self._full, self._busy = self._item, None, False, True
            return True, item

    @property
    def full(self) -> bool:
        """Whether an item waits (read under the condition's lock for a decision)."""
        return self._full

    @property
    def idle(self) -> bool:
        """Nothing stored and nothing being processed."""
        return not self._full and not self._busy

    def done(self, ok: bool) -> None:
        """The taken item was processed (``ok``) or failed."""
        with self._cond:
            self._busy = False
            if ok:
                self._processed += 1
            else:
                self._failed += 1
            self._cond.notify_all()

    def clear(self) -> bool:
        """Drop a stored item (counted as dropped); True if there was one. Later items are taken as usual."""
        with self._cond:
            if not self._full:
                return False
            self._item, self._full = None, False
            self._dropped += 1
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """Wake every waiter; a stored item is counted as dropped and later items are dropped on arrival."""
        with self._cond:
            self._closed = True
            self.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no item is stored or being processed; returns False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.idle, timeout)

    def counts(self) -> WorkerCounts:
        with self._cond:
            return WorkerCounts(self._submitted, self._processed, self._failed, self._dropped,
                                int(self._full), int(self._busy))


BatchProcess = Callable[[list[tuple[str, T]]], Sequence[BaseException | None]]
"""``process_batch(items)``: items are (camera, item) pairs, at most one per camera; returns, per item in order,
None when it was processed or the exception that failed it."""


class FrameWorker(Generic[T]):
    """Runs the pipeline on the newest submitted item of each camera in one background (daemon) thread.

    Args:
        process: called in the worker thread for each item taken (one camera); any exception it raises is caught.
        on_error: called in the worker thread with (exception, item) for each item that failed.
        min_interval_s: at least this many seconds between the starts of two rounds (1 / ``max_rate_hz``); items
            that arrive meanwhile replace each other and count as dropped.
        name: the thread's name.
        cameras: the camera names items are submitted for (``submit(item, camera)``); one unnamed camera by
            default.
        process_batch: instead of ``process``: called once per round with every camera's item (module docstring).
    """

    def __init__(
        self,
        process: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException, T], None] | None = None,
        *,
        min_interval_s: float = 0.0,
        name: str = "seg_ros-worker",
        cameras: Sequence[str] = ("",),
        process_batch: BatchProcess[T] | None = None,
    ) -> None:
        if (process is None) == (process_batch is None):
            raise ValueError("give exactly one of process and process_batch")
        if not cameras or len(set(cameras)) != len(cameras):
            raise ValueError(f"cameras must be distinct names, at least one, not {list(cameras)!r}")
        self._process_batch: BatchProcess[T] = process_batch or _one_by_one(process)  # type: ignore[arg-type]
        self._on_error = on_error
        self._wake = threading.Condition()
        self._min_interval = 0.0
        self.min_interval_s = min_interval_s
        self._cond = threading.Condition()
        self._slots: dict[str, LatestSlot[T]] = {c: LatestSlot(self._cond) for c in cameras}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def start(self) -> FrameWorker[T]:
        self._thread.start()
        return self

    def submit(self, item: T, camera: str = "") -> bool:
        """Store ``item`` as ``camera``'s newest frame; returns True when it replaced (dropped) an older one."""
        return self._slots[camera].put(item)

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

    def counts(self, camera: str | None = None) -> WorkerCounts:
        """One camera's counters, or (None) the sum over the cameras."""
        if camera is not None:
            return self._slots[camera].counts()
        with self._cond:
            total = WorkerCounts(0, 0, 0, 0, 0, 0)
            for slot in self._slots.values():
                total = total + slot.counts()
            return total

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted item is processed, failed or dropped; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: all(s.idle for s in self._slots.values()), timeout)

    def drop_pending(self) -> int:
        """Drop the frames waiting in the slots (counted as dropped); returns how many there were."""
        with self._cond:
            return sum(slot.clear() for slot in self._slots.values())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the thread after the round being processed; stored items are counted as dropped.

        Returns False when the thread was still busy after ``timeout`` seconds (0: do not wait; it is a
        daemon thread, so it does not keep the process alive).
        """
        self._stop.set()
        with self._cond:
            for slot in self._slots.values():
                slot.close()
        with self._wake:
            self._wake.notify_all()
        if self._thread.ident is not None and timeout != 0:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        last_start: float | None = None
        while self._wait_interval(last_start):
            taken = self._take_round()
            if not taken:
                continue
            last_start = time.monotonic()
            for (camera, _), ok in zip(taken, self._call(taken)):
                self._slots[camera].done(ok)

    def _take_round(self) -> list[tuple[str, T]]:
        """The newest item of every camera that has one (waiting up to MAX_WAIT_S for the first)."""
        with self._cond:
            if not any(s.full for s in self._slots.values()) and not self._stop.is_set():
                self._cond.wait(MAX_WAIT_S)
            taken = []
            for camera, slot in self._slots.items():
                ok, item = slot.take_now()
                if ok:
                    taken.append((camera, item))
            return taken  # type: ignore[return-value]

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

    def _call(self, taken: list[tuple[str, T]]) -> list[bool]:
        """``process_batch(taken)``; per item True on success. Nothing that it or ``on_error`` raises leaves this
        function: if ``process_batch`` itself raises, every item failed with that exception."""
        try:
            outcome = list(self._process_batch(taken))
            if len(outcome) != len(taken):
                raise RuntimeError(f"process_batch returned {len(outcome)} outcomes for {len(taken)} items")
        except BaseException as e:  # noqa: BLE001 - the worker must survive anything a frame does
            outcome = [e] * len(taken)
        for (_, item), error in zip(taken, outcome):
            if error is not None and self._on_error is not None:
                try:
                    self._on_error(error, item)
                except BaseException:  # noqa: BLE001 - nor may a failing error reporter stop it
                    pass
        return [error is None for error in outcome]


def _one_by_one(process: Callable[[T], None]) -> BatchProcess[T]:
    def process_batch(items: list[tuple[str, T]]) -> list[BaseException | None]:
        out: list[BaseException | None] = []
        for _, item in items:
            try:
                process(item)
                out.append(None)
            except BaseException as e:  # noqa: BLE001 - counted and reported per item
                out.append(e)
        return out

    return process_batch
