"""Soak test of the node's ROS-free core: many frames, faster than the pipeline, parameters changing all along.

:func:`run_soak` drives a :class:`~seg_ros.ros.engine.SegmentationEngine` the
way the node does, with the real ROS 2 message definitions from ``rosbags``:
frames in several encodings (and now and then a bad one) are submitted at a
fixed pace faster than the pipeline runs, while every ``change_every`` frames a
parameter changes (cheap ones, a pipeline rebuild, a rejected value) and
subscribers to the lazy outputs come and go. It checks that every frame was
processed, dropped or counted as bad, that no exception escaped, that each
output carries the header of the frame it came from, and samples the resident
memory. With ``max_size`` every frame has a different random size, which
measures the pipeline's own memory under changing sizes with no middleware in
the way (``seg_ros.ros.tools.flood`` floods the real node through DDS). ``seg-ros
soak`` runs it from the command line.
"""

from __future__ import annotations

import itertools
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

from seg_ros.io.messages import encode_rgb
from seg_ros.models.modelfile import DEFAULT_MODEL
from seg_ros.ros.engine import SegmentationEngine
from seg_ros.ros.tools.flood import size_schedule
from seg_ros.synthetic import generate_scene

ENCODINGS = ("rgb8", "bgr8", "bgra8", "mono8", "yuv422", "yuv422_yuy2", "bayer_rggb8", "mono16")


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class SoakReport:
    """What a soak run saw; ``ok`` when every check passed (``problems`` lists the failed ones)."""

    frames: int
    seconds: float
    submitted: int
    processed: int
    dropped: int
    bad_frames: int
    errors: int
    published: dict[str, int]
    param_changes: int
    params_rejected: int
    reloads: int
    rss_mb_at_1000: float | None
    rss_mb_end: float
    rss_growth_pct: float | None
    rss_samples_mb: list[tuple[int, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_mb_start: float | None = None
    rss_mb_peak: float | None = None
    kind: str = "soak"
    """The report's ``kind`` key (:mod:`seg_ros.tools.reports`); a field, so that the JSON reads back."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Every field (``rss_samples_mb`` as [frame, MB] pairs once in JSON) and ``ok``, in field order."""
        d = asdict(self)
        d["ok"] = self.ok
        return d


@dataclass
class _Observed:
    """What a soak run has seen so far: filled in by the submitting loop and by the engine's publish callback."""

    frames: int
    """Frames the run submits in all."""
    t_start: float = 0.0
    """time.monotonic() when the first frame was submitted (s)."""
    published: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    param_changes: int = 0
    rss_samples: list[tuple[int, float]] = field(default_factory=list)
    """(frame index, resident MB) pairs, in order."""

    def report(self, engine: SegmentationEngine) -> SoakReport:
        """A snapshot of the run so far, with the engine's counters."""
        c = engine.worker.counts()
        counts = engine.stats.counts()
        samples = self.rss_samples
        at_1000 = next((mb for i, mb in samples if i >= 1000), None)
        end = samples[-1][1] if samples else rss_bytes() / 2**20
        growth = 100.0 * (end - at_1000) / at_1000 if at_1000 else None
        return SoakReport(
            frames=self.frames, seconds=time.monotonic() - self.t_start, submitted=c.submitted,
            processed=c.processed, dropped=c.dropped, bad_frames=counts["bad_frames"], errors=counts["errors"],
            published=dict(self.published), param_changes=self.param_changes,
            params_rejected=counts["params_rejected"], reloads=counts["reloads"], rss_mb_at_1000=at_1000,
            rss_mb_end=end, rss_growth_pct=growth, rss_samples_mb=list(samples), problems=list(self.problems),
            rss_mb_start=samples[0][1] if samples else None,
            rss_mb_peak=max(mb for _, mb in samples) if samples else None)


def run_soak(
    frames: int = 3000,
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    size: tuple[int, int] = (96, 128),
    resolutions: tuple[str, str] = ("96x128", "64x96"),
    interval_s: float = 0.004,
    change_every: int = 40,
    bad_every: int = 97,
    device: str = "cpu",
    seed: int = 0,
    max_size: tuple[int, int] | None = None,
    progress: Callable[[int, SoakReport], None] | None = None,
) -> SoakReport:
    """Push ``frames`` frames of ``size`` through an engine every ``interval_s`` seconds; see the module docstring.

    Every ``change_every`` frames one parameter change is applied (cycling through overlay_alpha,
    confidence_encoding, publish.color, max_rate_hz, a rejected resolution and a pipeline rebuild
    alternating between ``resolutions``); every ``bad_every``-th frame has an unknown encoding.
    With ``max_size`` (H, W), frames cycle through 64 random even sizes from 32x32 up to it, no two
    consecutive ones equal, instead of all being ``size``.
    """
    ts = get_typestore(Stores.ROS2_KILTED)
    image_cls = ts.types["sensor_msgs/msg/Image"]
    header_cls = ts.types["std_msgs/msg/Header"]
    time_cls = ts.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(seed)

    # A pool of real frames in several encodings, each CDR round-tripped once like a received message.
    pool = []
    sizes = [size] * len(ENCODINGS)
    if max_size is not None:  # even sizes: YUV 4:2:2 and Bayer need them
        sizes = [(h & ~1, w & ~1) for h, w in size_schedule(64, max_size, (32, 32), seed=seed)]
    for i, hw in enumerate(sizes):
        f = encode_rgb(generate_scene(seed + i, hw).image, ENCODINGS[i % len(ENCODINGS)])
        msg = image_cls(header=header_cls(stamp=time_cls(sec=0, nanosec=0), frame_id=""), height=f.height,
                        width=f.width, encoding=f.encoding, is_bigendian=0, step=f.step, data=f.data.copy())
        pool.append(ts.deserialize_cdr(ts.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__))

    lock = threading.Lock()
    seen = _Observed(frames)
    published, problems = seen.published, seen.problems
    subscribed = {"color": 1, "overlay": 1, "confidence": 1, "camera_info": 0}

    def publish(output: str, msg: Any) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        index = (key[0] - 1_000) * 1000 + key[1] // 1000  # the frame's number, from its stamp (see below)
        with lock:
            published[output] = published.get(output, 0) + 1
            if (not 0 <= index < frames or msg.header.frame_id != f"camera_{index % 3}") and len(problems) < 20:
                problems.append(f"{output} message has a header that no submitted frame had: {key}")
            if 0 <= index < frames and (msg.height, msg.width) != sizes[index % len(pool)] and len(problems) < 20:
                problems.append(f"{output} message is {msg.width}x{msg.height}, not the input's size")

    engine = SegmentationEngine(
        {"model": str(model), "device": device, "resolution": resolutions[0]}, image_cls, publish,
        subscribers=lambda output: subscribed[output], throttle_s=3600.0)
    engine.start()
    changes = itertools.cycle([
        lambda: {"overlay_alpha": float(rng.uniform(0, 1))},
        lambda: {"confidence_encoding": "32FC1" if engine.values["confidence_encoding"] == "mono8" else "mono8"},
        lambda: {"publish.color": not engine.values["publish.color"]},
        lambda: {"max_rate_hz": 0.0 if engine.values["max_rate_hz"] else 200.0},
        lambda: {"resolution": "abc"},  # rejected: the running pipeline must be kept
        lambda: {"resolution": resolutions[1] if engine.values["resolution"] == resolutions[0] else resolutions[0]},
    ])
    n_bad = 0
    seen.t_start = next_t = time.monotonic()  # timed from the first frame, not from the model's loading
    try:
        for i in range(frames):
            base = pool[i % len(pool)]
            frame_id = f"camera_{i % 3}"
            stamp = time_cls(sec=1_000 + i // 1000, nanosec=(i % 1000) * 1000)
            encoding = base.encoding
            if bad_every and i % bad_every == bad_every - 1:
                encoding, n_bad = "hsv8", n_bad + 1
            msg = image_cls(header=header_cls(stamp=stamp, frame_id=frame_id), height=base.height,
                            width=base.width, encoding=encoding, is_bigendian=0, step=base.step, data=base.data)
            engine.submit(msg)
            if change_every and i % change_every == change_every - 1:
                engine.apply(next(changes)())
                seen.param_changes += 1
                for k in subscribed:
                    subscribed[k] = int(rng.integers(0, 2))
            if i % 100 == 0 or i == 1000:
                seen.rss_samples.append((i, rss_bytes() / 2**20))
                if progress is not None and i % 1000 == 0:
                    progress(i, seen.report(engine))
            next_t += interval_s
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()
        if not engine.worker.wait_idle(120):
            problems.append("the worker did not finish its last frame within 120 s")
    finally:
        engine.close()
        seen.rss_samples.append((frames, rss_bytes() / 2**20))
        report = seen.report(engine)
    c = engine.worker.counts()
    if c.submitted != frames:
        problems.append(f"{c.submitted} frames submitted, expected {frames}")
    if c.submitted != c.processed + c.failed + c.dropped:
        problems.append(f"frames lost: submitted {c.submitted} != processed {c.processed} + failed {c.failed} "
                        f"+ dropped {c.dropped}")
    counts = engine.stats.counts()
    if counts["errors"]:
        problems.append(f"{counts['errors']} frames failed in the pipeline: {engine.summary().as_dict()['last error']}")
    if counts["bad_frames"] != c.failed - counts["errors"] or counts["bad_frames"] > n_bad:
        problems.append(f"{counts['bad_frames']} bad frames counted; {n_bad} were sent, {c.failed} failed")
    if published.get("labels", 0) != c.processed:
        problems.append(f"{published.get('labels', 0)} labels published for {c.processed} processed frames")
    report.problems = problems
    return report


def format_report(r: SoakReport) -> str:
    """A few lines for the terminal: frame accounting, parameter changes, outputs, memory, the verdict."""
    growth = (f"{r.rss_growth_pct:+.2f}% since frame 1,000 ({r.rss_mb_at_1000:.1f} MB)"
              if r.rss_growth_pct is not None else "growth n/a (fewer than 1,000 frames)")
    lines = [
        f"{r.frames} frames in {r.seconds:.1f} s: {r.processed} processed, {r.dropped} dropped (newest-frame only), "
        f"{r.bad_frames} bad, {r.errors} errors",
        f"{r.param_changes} parameter changes: {r.reloads} pipeline rebuilds, {r.params_rejected} rejected as expected",
        "published: " + ", ".join(f"{k} {v}" for k, v in sorted(r.published.items())),
        f"resident memory: start {r.rss_mb_start or 0:.1f} MB, peak {r.rss_mb_peak or 0:.1f} MB, "
        f"end {r.rss_mb_end:.1f} MB; {growth}",
        "OK: every frame processed or counted, headers preserved, no exception" if r.ok
        else "PROBLEMS:\n  " + "\n  ".join(r.problems),
    ]
    return "\n".join(lines)


