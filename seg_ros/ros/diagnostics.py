"""The node's health in numbers: fps, latency percentiles, drops and errors, as diagnostic key/values.

Pure Python: :class:`NodeStats` aggregates per-frame timings and counters from
any thread; :meth:`NodeStats.summary` turns them into a level, a one-line
message and ordered key/value pairs, and :func:`diagnostic_array` builds a
diagnostic_msgs/DiagnosticArray from them for any message implementation
(rclpy classes on the robot, ``rosbags`` classes in tests). :class:`Throttle`
keeps repeated warnings (a camera sending a bad encoding at 30 Hz) to one line
per period with a count of what it held back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}
STAGES = ("decode", "preprocess", "infer", "crf", "postprocess", "render", "publish")
"""Per-frame stages reported, in pipeline order (milliseconds)."""


@dataclass(frozen=True)
class Summary:
    """One diagnostic status: ``level`` is OK/WARN/ERROR, ``values`` ordered (key, text) pairs."""

    level: int
    message: str
    values: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)


class Throttle:
    """At most one message per ``period_s`` per key; counts the ones held back.

    ``check(key)`` returns None while throttled, else the number of messages suppressed since the
    last one that passed (0 for the first).
    """

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> int | None:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)


class NodeStats:
    """Thread-safe counters and a sliding window of per-frame timings.

    Args:
        window_s: frames older than this (seconds) leave the fps and latency window.
        max_frames: at most this many frames are kept in the window (memory stays bounded).
        clock: monotonic seconds.
    """

    COUNTERS = ("received", "processed", "dropped", "bad_frames", "errors", "params_rejected", "reloads",
                "qos_incompatible")

    def __init__(self, window_s: float = 10.0, max_frames: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._frames: deque[tuple[float, float, dict[str, float]]] = deque(maxlen=max_frames)
        self._counts = dict.fromkeys(self.COUNTERS, 0)
        self._reported = dict(self._counts)
        self._last_error = ""
        self._last_bad = ""
        self._first_frame: float | None = None
        self.info: dict[str, str] = {}
        """Static facts shown with every summary (model, backend, device, ...)."""

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def set_count(self, name: str, value: int) -> None:
        with self._lock:
            self._counts[name] = value

    def bad_frame(self, reason: str) -> None:
        with self._lock:
            self._counts["bad_frames"] += 1
            self._last_bad = reason

    def error(self, reason: str) -> None:
        with self._lock:
            self._counts["errors"] += 1
            self._last_error = reason

    def frame(self, latency_ms: float, stages_ms: dict[str, float]) -> None:
        """One frame published: ``latency_ms`` from its arrival to the last publish; stage times in ms."""
        now = self._clock()
        with self._lock:
            if self._first_frame is None:
                self._first_frame = now
            self._frames.append((now, latency_ms, dict(stages_ms)))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def summary(self, *, extra: Mapping[str, str] | None = None, mark_reported: bool = True) -> Summary:
        """The current status. WARN for bad input frames or no frames in the window, ERROR for
        pipeline errors, both counted since the previous summary that had ``mark_reported``.
        """
        now = self._clock()
        with self._lock:
            while self._frames and now - self._frames[0][0] > self.window_s:
                self._frames.popleft()
            frames = list(self._frames)
            counts = dict(self._counts)
            new = {k: counts[k] - self._reported[k] for k in counts}
            if mark_reported:
                self._reported = dict(counts)
            last_error, last_bad = self._last_error, self._last_bad
        values: list[tuple[str, str]] = []
        span = min(self.window_s, now - self._first_frame) if self._first_frame is not None else self.window_s
        fps = len(frames) / max(span, 1e-3)
        values.append(("fps", f"{fps:.2f}"))
        lat = np.array([f[1] for f in frames]) if frames else np.zeros(0)
        for q in (50, 95, 99):
            values.append((f"latency p{q} ms", f"{np.percentile(lat, q):.1f}" if lat.size else "n/a"))
        for stage in STAGES:
            v = [f[2][stage] for f in frames if stage in f[2]]
            values.append((f"{stage} p50 ms", f"{np.percentile(v, 50):.2f}" if v else "n/a"))
        for k in self.COUNTERS:
            values.append((k.replace("_", " "), str(counts[k])))
        values.append(("drop ratio", f"{counts['dropped'] / counts['received']:.3f}" if counts["received"] else "0"))
        values += list(self.info.items()) + list((extra or {}).items())
        values.append(("last bad frame", last_bad or "none"))
        values.append(("last error", last_error or "none"))
        if new["errors"]:
            level, msg = ERROR, f"{new['errors']} frame(s) failed in the pipeline: {last_error}"
        elif new["bad_frames"]:
            level, msg = WARN, f"{new['bad_frames']} bad input frame(s) dropped: {last_bad}"
        elif not frames:
            level = WARN
            msg = (f"no frames segmented in the last {self.window_s:g} s"
                   + ("" if counts["received"] else " (no input received yet)"))
        else:
            level = OK
            msg = f"{fps:.1f} fps, latency p50 {np.percentile(lat, 50):.0f} ms, {counts['dropped']} dropped"
        return Summary(level, msg, values)


def diagnostic_array(types: Any, header: Any, statuses: Iterable[tuple[str, str, Summary]]) -> Any:
    """Build a diagnostic_msgs/DiagnosticArray from (name, hardware_id, summary) triples.

    ``types`` has ``DiagnosticArray``, ``DiagnosticStatus`` and ``KeyValue`` message classes (rclpy or
    rosbags); the level is taken from the class's own constants, which are ``bytes`` in rclpy and
    ``int`` in rosbags.
    """
    status_cls = types.DiagnosticStatus
    level_const = {OK: status_cls.OK, WARN: status_cls.WARN, ERROR: status_cls.ERROR, STALE: status_cls.STALE}
    statuses_out = [
        status_cls(level=level_const[s.level], name=name, message=s.message, hardware_id=hw,
                   values=[types.KeyValue(key=k, value=v) for k, v in s.values])
        for name, hw, s in statuses
    ]
    return types.DiagnosticArray(header=header, status=statuses_out)
