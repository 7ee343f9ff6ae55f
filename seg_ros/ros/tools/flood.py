"""Flood a subscriber with images whose size changes every frame, and watch its resident memory.

``python -m seg_ros.ros.tools.flood`` starts a subscriber process, either the real
``segmentation_node`` (``--target node``) or a plain rclpy subscriber with the
node's input QoS and nothing else (``--target plain``, the control), then
``--publishers`` publisher processes that send ``sensor_msgs/Image`` at a total
``--rate`` for ``--seconds``, every frame a different random height × width up
to ``--max-size``. It samples the subscriber's ``/proc/<pid>/status`` (VmRSS,
and RssAnon / RssShmem to tell heap from shared memory) before, during and
after the flood, and counts frames: sent by the publishers; for the node,
received = processed + dropped + bad + errors from its ``/diagnostics``; for the
plain subscriber, its callback count. Everything runs on loopback in a private
``ROS_DOMAIN_ID``; ``--env`` and ``--profile`` change the subscriber's
environment only (a Fast DDS XML profile, an allocator setting), so the effect
of a setting on the receiving side is measured against unconfigured publishers.
``--matrix`` runs node and plain subscriber with and without the profile;
``--json`` and ``--markdown`` record the results (docs/soak.md).

The same module holds the child processes' code (``--role publish`` and
``--role subscribe``); rclpy is imported only inside the functions that talk
to ROS, so the size schedule, the ``/proc`` parsing, the accounting and the
profile environment are usable and tested without it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from seg_ros.ros.dds import PROFILE, profile_env

TOPIC = "image"
STATUS_KEYS = ("VmRSS", "RssAnon", "RssShmem")


# -- pure parts ------------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → (H, W), both positive."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be HEIGHTxWIDTH, e.g. 480x640") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must have a positive height and width")
    return h, w


def size_schedule(n: int, max_hw: tuple[int, int], min_hw: tuple[int, int] = (8, 8),
                  seed: int = 0) -> list[tuple[int, int]]:
    """``n`` (height, width) pairs, uniform in [min_hw, max_hw], no two consecutive ones equal.

    With ``min_hw == max_hw`` there is only one size and consecutive frames are necessarily equal.
    """
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    for _ in range(n):
        while True:
            hw = (rng.randint(min_hw[0], max_hw[0]), rng.randint(min_hw[1], max_hw[1]))
            if not out or hw != out[-1] or min_hw == max_hw:
                break
        out.append(hw)
    return out


def parse_status_kb(text: str) -> dict[str, int]:
    """The ``kB`` fields of a ``/proc/<pid>/status`` text that :data:`STATUS_KEYS` names, in kB.

    Raises ValueError when VmRSS is missing (a kernel thread, or not a status text).
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in STATUS_KEYS:
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                out[key] = int(parts[0])
    if "VmRSS" not in out:
        raise ValueError("no 'VmRSS: <n> kB' line in the status text")
    return out


def read_status_kb(pid: int) -> dict[str, int] | None:
    """:func:`parse_status_kb` of a live process; None once it has exited."""
    try:
        return parse_status_kb(Path(f"/proc/{pid}/status").read_text())
    except (OSError, ValueError):
        return None


@dataclass
class RssTrace:
    """Memory samples of one process: (seconds since the first sample, {key: kB})."""

    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def add(self, t: float, kb: dict[str, int]) -> None:
        self.samples.append((t, kb))

    def _mb(self, key: str) -> list[float]:
        return [kb.get(key, 0) / 1024 for _, kb in self.samples]

    def start_mb(self, key: str = "VmRSS") -> float:
        return self._mb(key)[0]

    def peak_mb(self, key: str = "VmRSS") -> float:
        return max(self._mb(key))

    def end_mb(self, key: str = "VmRSS") -> float:
        return self._mb(key)[-1]


def accounting_problem(received: int, processed: int, dropped: int, bad: int, errors: int) -> str | None:
    """None when every received frame was processed, dropped (newest-frame slot) or counted bad / an error."""
    if min(received, processed, dropped, bad, errors) < 0:
        return "a frame counter is negative"
    if received != processed + dropped + bad + errors:
        return (f"frames lost: received {received} != processed {processed} + dropped {dropped} + bad {bad} "
                f"+ errors {errors}")
    return None


@dataclass
class FloodResult:
    """One flood run: the subscriber, its environment, the traffic and its memory (MB = MiB)."""

    target: str
    profile: str
    env: dict[str, str]
    publishers: int
    seconds: float
    rate_hz_target: float
    max_size: tuple[int, int]
    sent: int
    rate_hz_achieved: float
    received: int
    processed: int | None
    dropped: int | None
    bad: int | None
    errors: int | None
    rss_mb_start: float
    rss_mb_peak: float
    rss_mb_end: float
    anon_mb_end: float
    shmem_mb_end: float
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def markdown_table(results: Sequence[FloodResult]) -> str:
    """A markdown table, one row per run (frames and memory)."""
    head = ("| subscriber | setting | sent (Hz) | received | processed | dropped | bad | "
            "RSS start / peak / end MB | anon / shm end MB |")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        def n(v: int | None) -> str:
            return "-" if v is None else f"{v:,}"

        setting = " + ".join([r.profile] + [f"{k}={v}" for k, v in r.env.items()])
        rows.append(
            f"| {r.target} | {setting} | {r.sent:,} ({r.rate_hz_achieved:,.0f}) | {r.received:,} | "
            f"{n(r.processed)} | {n(r.dropped)} | {n(r.bad)} | "
            f"{r.rss_mb_start:,.0f} / {r.rss_mb_peak:,.0f} / {r.rss_mb_end:,.0f} | "
            f"{r.anon_mb_end:,.0f} / {r.shmem_mb_end:,.0f} |")
    return "\n".join(rows)


# -- processes -------------------------------------------------------------------------------------------------


def claim_domain_id() -> tuple[int, IO[str]]:
    """A ROS_DOMAIN_ID that no other seg_ros test or flood on this machine holds (a lock file per id).

    The lock is held while the returned file stays open.
    """
    start = os.getpid() % 90
    for i in range(90):
        d = 10 + (start + i) % 90
        f = open(f"/tmp/seg_ros-test-ros-domain-{d}.lock", "w")  # noqa: SIM115 - held by the caller
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return d, f
    raise RuntimeError("no free ROS domain id in 10..99")


def _qos() -> Any:
    """The node's input QoS (qos.reliability best_effort, qos.depth 1): what sensor drivers publish with."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def _role_publish(args: argparse.Namespace) -> int:
    """Publish frames of changing size at ``args.rate`` Hz for ``args.seconds``; print {"sent", "seconds"}."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node(f"seg_ros_flood_publisher_{os.getpid()}")
    pub = node.create_publisher(Image, TOPIC, _qos())
    pool = []  # distinct sizes, built once: the publisher's own cost per frame stays a stamp and a publish
    for h, w in size_schedule(args.pool, args.max_size, args.min_size, seed=args.seed):
        m = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w)
        m.header.frame_id = "flood"
        m.data = bytes(h * w * 3)
        pool.append(m)
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = 0
    period = 1.0 / args.rate
    t0 = next_t = time.monotonic()
    end = t0 + args.seconds
    try:
        while time.monotonic() < end:
            m = pool[sent % len(pool)]
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(sent, 1_000_000_000)
            pub.publish(m)
            sent += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except KeyboardInterrupt:
        pass
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - t0}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _role_subscribe(args: argparse.Namespace) -> int:
    """A plain rclpy subscriber with the node's input QoS; prints "ready", then {"received"} at SIGINT."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("seg_ros_flood_plain_subscriber")
    received = 0

    def on_image(msg: Image) -> None:
        nonlocal received
        received += 1

    node.create_subscription(Image, TOPIC, on_image, _qos())
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps({"received": received}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


class _Sampler(threading.Thread):
    """Reads a process's memory every ``period_s`` into an :class:`RssTrace` until stopped."""

    def __init__(self, pid: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s, self.trace = pid, period_s, RssTrace()
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            kb = read_status_kb(self.pid)
            if kb is not None:
                self.trace.add(time.monotonic() - self._t0, kb)
            self._stop_event.wait(self.period_s)

    def stop(self) -> RssTrace:
        self._stop_event.set()
        self.join()
        kb = read_status_kb(self.pid)
        if kb is not None:
            self.trace.add(time.monotonic() - self._t0, kb)
        return self.trace


class _Diagnostics:
    """The latest counters the node reported on /diagnostics, read by an rclpy node in this process."""

    KEYS = {"received": "received", "processed": "processed", "dropped": "dropped", "bad": "bad frames",
            "errors": "errors"}

    def __init__(self, domain_id: int, node_name: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        self._prefix = f"{node_name}:"
        self._cond = threading.Condition()
        self.latest: list[dict[str, int]] = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("seg_ros_flood_monitor", context=self.context)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutting the context down ends the spin
            pass

    def _on_diag(self, msg: Any) -> None:
        for st in msg.status:
            if st.name.startswith(self._prefix):
                values = {kv.key: kv.value for kv in st.values}
                counts = {k: int(values[v]) for k, v in self.KEYS.items() if v in values}
                if len(counts) == len(self.KEYS):
                    with self._cond:
                        self.latest.append(counts)
                        self._cond.notify_all()

    def wait(self, n_new: int, timeout: float) -> dict[str, int] | None:
        """The latest counters after ``n_new`` more reports arrive (None if they do not within ``timeout`` s)."""
        with self._cond:
            goal = len(self.latest) + n_new
            self._cond.wait_for(lambda: len(self.latest) >= goal, timeout)
            return self.latest[-1] if len(self.latest) >= goal else None

    def settled(self, timeout: float) -> dict[str, int] | None:
        """Counters once two reports in a row agree and the accounting holds (the last frame is done)."""
        deadline = time.monotonic() + timeout
        prev = None
        while time.monotonic() < deadline:
            cur = self.wait(1, deadline - time.monotonic())
            if cur is None:
                break
            if cur == prev and accounting_problem(**cur) is None:
                return cur
            prev = cur
        return prev

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _ros_env(domain_id: int, log_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOG_DIR=str(log_dir),
               RCUTILS_COLORIZED_OUTPUT="0", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("ROS_LOCALHOST_ONLY", None)
    for k in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML"):
        env.pop(k, None)  # the subscriber's profile is chosen per run, the publishers stay on the defaults
    return env


def _stop(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """SIGINT, wait, kill if needed; returns what is left on its stdout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def run_flood(target: str = "plain", *, publishers: int = 2, rate_hz: float = 2000.0, seconds: float = 15.0,
              max_size: tuple[int, int] = (480, 640), min_size: tuple[int, int] = (8, 8),
              profile: str | os.PathLike | None = None, env: dict[str, str] | None = None,
              node_params: dict[str, str] | None = None, settle_s: float = 5.0,
              log_dir: str | os.PathLike | None = None, seed: int = 0) -> FloodResult:
    """Flood ``target`` ("node" or "plain") and measure it; see the module docstring.

    Args:
        rate_hz: total target rate, shared equally by ``publishers`` processes.
        seconds: how long the publishers send.
        max_size, min_size: bounds of the random (H, W) of each rgb8 frame.
        profile: a Fast DDS XML profile for the subscriber (None: the defaults); ``env``: more variables for it.
        node_params: ``-p name:=value`` for the node (device defaults to cpu).
        settle_s: memory is sampled this long after the publishers end (the "end" figure).
        log_dir: ROS logs and the processes' stderr (a temporary folder when None).

    Raises:
        RuntimeError: the subscriber did not start or died before its memory could be read.
    """
    import tempfile

    if target not in ("node", "plain"):
        raise ValueError(f"target must be 'node' or 'plain', not {target!r}")
    domain_id, lock = claim_domain_id()
    tmp = tempfile.TemporaryDirectory(prefix="seg_ros-flood-") if log_dir is None else None
    logs = Path(log_dir if log_dir is not None else tmp.name)
    logs.mkdir(parents=True, exist_ok=True)
    setting = Path(profile).name if profile is not None else "defaults"
    if profile is None:
        # The node loads the shipped profile unless one is set: an empty one measures Fast DDS's defaults.
        profile = logs / "fastdds_defaults.xml"
        profile.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<dds xmlns="http://www.eprosima.com"/>\n')
    extra = {**profile_env(profile), **(env or {})}
    base_env = _ros_env(domain_id, logs)
    problems: list[str] = []
    diag = None
    procs: list[subprocess.Popen] = []
    try:
        node_name = "seg_ros_flood_node"
        if target == "node":
            cmd = [sys.executable, "-m", "seg_ros.ros.node", "--ros-args", "-r", f"__node:={node_name}",
                   "-r", f"image:={TOPIC}"]
            for k, v in {"device": "cpu", **(node_params or {})}.items():
                cmd += ["-p", f"{k}:={v}"]
            diag = _Diagnostics(domain_id, node_name)
        else:
            cmd = [sys.executable, "-m", "seg_ros.ros.tools.flood", "--role", "subscribe"]
        sub = subprocess.Popen(cmd, env={**base_env, **extra}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=open(logs / f"{target}.stderr", "w"), text=True)
        procs.append(sub)
        if diag is not None:
            deadline = time.monotonic() + 120
            while diag.wait(1, 1.0) is None:
                if sub.poll() is not None or time.monotonic() > deadline:
                    state = "no diagnostics in 120 s" if sub.returncode is None else f"exit status {sub.returncode}"
                    raise RuntimeError(f"the node did not start ({state}); see {logs / 'node.stderr'}")
        elif not select.select([sub.stdout], [], [], 60)[0] or sub.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the plain subscriber did not start within 60 s; see {logs / 'plain.stderr'}")
        time.sleep(1.0)
        sampler = _Sampler(sub.pid)
        sampler.start()
        time.sleep(0.5)
        pubs = [subprocess.Popen(
            [sys.executable, "-m", "seg_ros.ros.tools.flood", "--role", "publish", "--rate", str(rate_hz / publishers),
             "--seconds", str(seconds), "--max-size", f"{max_size[0]}x{max_size[1]}",
             "--min-size", f"{min_size[0]}x{min_size[1]}", "--seed", str(seed + i)],
            env=base_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(logs / f"publisher{i}.stderr", "w"), text=True) for i in range(publishers)]
        procs += pubs
        sent, sent_s = 0, 0.0
        for i, p in enumerate(pubs):
            out, _ = p.communicate(timeout=seconds + 120)
            try:
                rep = json.loads(out.strip().splitlines()[-1])
                sent, sent_s = sent + rep["sent"], max(sent_s, rep["seconds"])
            except (IndexError, ValueError, KeyError):
                problems.append(f"publisher {i} exited {p.returncode} without a report; see publisher{i}.stderr")
        time.sleep(settle_s)
        trace = sampler.stop()
        if not trace.samples:
            raise RuntimeError(f"the {target} subscriber exited before its memory could be read; "
                               f"see {logs / (target + '.stderr')}")
        counts: dict[str, int | None] = dict.fromkeys(("processed", "dropped", "bad", "errors"))
        if diag is not None:
            got = diag.settled(30)
            if got is None:
                problems.append("the node reported no diagnostics after the flood")
                counts["received"] = 0
            else:
                counts.update(got)
                if (p := accounting_problem(**got)) is not None:
                    problems.append(p)
            _stop(sub)
        else:
            out = _stop(sub)
            try:
                counts["received"] = json.loads(out.strip().splitlines()[-1])["received"]
            except (IndexError, ValueError, KeyError):
                problems.append(f"the plain subscriber exited {sub.returncode} without a count")
                counts["received"] = 0
        if sub.returncode not in (0, None):
            problems.append(f"the {target} subscriber exited {sub.returncode}; see {target}.stderr")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if diag is not None:
            diag.close()
        lock.close()
        if tmp is not None:
            tmp.cleanup()
    return FloodResult(
        target=target, profile=setting, env=dict(env or {}),
        publishers=publishers, seconds=round(sent_s, 2), rate_hz_target=rate_hz, max_size=max_size, sent=sent,
        rate_hz_achieved=sent / sent_s if sent_s else 0.0, received=int(counts["received"] or 0),
        processed=counts["processed"], dropped=counts["dropped"], bad=counts["bad"], errors=counts["errors"],
        rss_mb_start=trace.start_mb(), rss_mb_peak=trace.peak_mb(), rss_mb_end=trace.end_mb(),
        anon_mb_end=trace.end_mb("RssAnon"), shmem_mb_end=trace.end_mb("RssShmem"),
        rss_samples=[(round(t, 2), round(kb["VmRSS"] / 1024, 1)) for t, kb in trace.samples[::5]],
        problems=problems)


def format_result(r: FloodResult) -> str:
    """Two lines for the terminal."""
    counts = (f"received {r.received:,}" if r.processed is None else
              f"received {r.received:,} = processed {r.processed:,} + dropped {r.dropped:,} + bad {r.bad:,} "
              f"+ errors {r.errors:,}")
    lines = [f"{r.target} subscriber, {r.profile}{' ' + str(r.env) if r.env else ''}: sent {r.sent:,} in "
             f"{r.seconds:.1f} s ({r.rate_hz_achieved:,.0f} Hz of {r.rate_hz_target:,.0f}); {counts}",
             f"  RSS start {r.rss_mb_start:,.0f} MB, peak {r.rss_mb_peak:,.0f} MB, end {r.rss_mb_end:,.0f} MB "
             f"(anon {r.anon_mb_end:,.0f}, shared memory {r.shmem_mb_end:,.0f})"]
    lines += [f"  PROBLEM: {p}" for p in r.problems]
    return "\n".join(lines)


def machine() -> str:
    """The CPU model and core count, for benchmark records."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _key_value(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"{text!r} must be NAME=VALUE")
    return k, v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m seg_ros.ros.tools.flood",
        description="Flood a subscriber (the segmentation node, or a plain rclpy subscriber as the control) with "
                    "images of changing size and report frames and resident memory.")
    p.add_argument("--role", choices=("run", "publish", "subscribe"), default="run", help=argparse.SUPPRESS)
    p.add_argument("--target", choices=("node", "plain"), default="plain",
                   help="the subscriber: segmentation_node or a plain rclpy subscriber with the same QoS")
    p.add_argument("--matrix", action="store_true",
                   help="run node and plain subscriber, each with the defaults and with --profile")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    p.add_argument("--rate", type=float, default=2000.0, help="total frames per second (default 2000)")
    p.add_argument("--seconds", type=float, default=15.0, help="how long the publishers send (default 15)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds of sampling after the flood (default 5)")
    p.add_argument("--max-size", type=parse_size, default=(480, 640), help="largest HxW frame (default 480x640)")
    p.add_argument("--min-size", type=parse_size, default=(8, 8), help="smallest HxW frame (default 8x8)")
    p.add_argument("--pool", type=int, default=97, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--profile", default=None,
                   help=f"Fast DDS XML profile for the subscriber ('package': the shipped {PROFILE.name}; "
                        "default: none)")
    p.add_argument("--env", type=_key_value, action="append", default=[],
                   help="NAME=VALUE for the subscriber's environment (repeatable)")
    p.add_argument("--param", type=_key_value, action="append", default=[],
                   help="node parameter NAME=VALUE (repeatable; device defaults to cpu)")
    p.add_argument("--log-dir", default=None, help="keep the ROS logs and each process's stderr here")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--markdown", default=None, help="write a markdown table of the results here")
    return p


def _run_one(args: argparse.Namespace, target: str, profile: str | os.PathLike | None) -> FloodResult:
    log_dir = None
    if args.log_dir:
        log_dir = Path(args.log_dir) / f"{target}-{Path(profile).stem if profile else 'defaults'}"
    return run_flood(target, publishers=args.publishers, rate_hz=args.rate, seconds=args.seconds,
                     max_size=args.max_size, min_size=args.min_size, profile=profile, env=dict(args.env),
                     node_params=dict(args.param), settle_s=args.settle, seed=args.seed, log_dir=log_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a flood (or, with --role, one of its child processes); 0 when every run's accounting holds."""
    args = build_parser().parse_args(argv)
    if args.role == "publish":
        return _role_publish(args)
    if args.role == "subscribe":
        return _role_subscribe(args)
    if args.publishers < 1 or args.rate <= 0 or args.seconds <= 0 or args.settle < 0:
        print("flood: error: --publishers, --rate and --seconds must be positive and --settle not negative.",
              file=sys.stderr)
        return 2
    if args.min_size[0] > args.max_size[0] or args.min_size[1] > args.max_size[1]:
        print("flood: error: --min-size must not be larger than --max-size in either dimension.", file=sys.stderr)
        return 2
    profile = PROFILE if args.profile == "package" else args.profile
    if profile is not None and not Path(profile).is_file():
        print(f"flood: error: Fast DDS profile {profile} does not exist; give an XML file or 'package'.",
              file=sys.stderr)
        return 2
    if args.matrix and profile is None:
        print("flood: error: --matrix compares with and without a profile; give --profile (e.g. package).",
              file=sys.stderr)
        return 2
    runs = ([(t, pr) for t in ("node", "plain") for pr in (None, profile)] if args.matrix
            else [(args.target, profile)])
    results = []
    for target, pr in runs:
        try:
            r = _run_one(args, target, pr)
        except RuntimeError as e:
            print(f"flood: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("flood: interrupted; no results written.", file=sys.stderr)
            return 130
        print(format_result(r), flush=True)
        results.append(r)
    record = {"command": "python -m seg_ros.ros.tools.flood " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "results": [r.as_dict() for r in results]}
    if args.json:
        _write_atomic(Path(args.json), json.dumps(record, indent=2) + "\n")
    if args.markdown:
        _write_atomic(Path(args.markdown), markdown_table(results) + "\n")
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
