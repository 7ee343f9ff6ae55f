"""Everything the node does between a received message and the published ones, without rclpy.

:class:`SegmentationEngine` owns the parameter values, the current
:class:`~seg_ros.pipeline.Segmenter`, the newest-frame worker and the
statistics. The node (``seg_ros/ros/node.py``) only wires it to ROS: its
subscription callbacks call :meth:`~SegmentationEngine.submit`, its
set-parameters callback calls :meth:`~SegmentationEngine.apply`, and the engine
calls back ``publish(topic, message)`` from its worker thread.

Being ROS-free, the same code is unit-tested and soak-tested with the
``rosbags`` message classes (the real ROS 2 definitions) and runs in the node
with rclpy's.

Parameter changes (:meth:`~SegmentationEngine.apply`):

* cheap ones (``overlay_alpha``, ``confidence_encoding``, ``publish.*``,
  ``max_rate_hz``, ``qos.*``, ``crf.*``) take effect on the next frame;
* a change of ``model``, ``backend``, ``device``, ``precision``, ``resolution`` or
  ``keep_aspect`` builds a new Segmenter in a loader thread while the worker
  keeps serving frames with the old one, then swaps it in with one reference
  assignment; if building fails, the old one stays and the change is rejected
  with the reason.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from seg_ros.config import SPECS, crf_config, reload_params, segmenter_kwargs, validate, validate_all
from seg_ros.core.errors import ConfigError, InputError, SegRosError, clip
from seg_ros.io.messages import compressed_to_rgb, confidence_image, image_message, image_to_rgb
from seg_ros.pipeline import Segmenter, format_resolution
from seg_ros.ros.camera_info import scale_camera_info
from seg_ros.ros.diagnostics import NodeStats, Summary, Throttle
from seg_ros.ros.worker import FrameWorker

LAZY_TOPICS = ("color", "overlay", "confidence", "camera_info")
"""Output topics built only while someone subscribes to them (and their ``publish.*`` toggle is on)."""
OUTPUT_TOPICS = ("labels", *LAZY_TOPICS)
"""The node's output topics (``~/<name>``); the pipeline's :data:`seg_ros.pipeline.OUTPUTS` are the arrays it makes."""
SHUTTING_DOWN = "the node is shutting down."
TEST_DELAY_ENV = "SEG_ROS_TEST_ONLY_DELAY_S"
"""Test-only: seconds each frame and each pipeline rebuild are held up, so that tests can stop the node in the
middle of one. Never set it on a robot."""


@dataclass(frozen=True)
class InputFrame:
    """What a subscription callback stores: the message as received and when (monotonic seconds)."""

    msg: Any
    compressed: bool
    arrived: float


class SegmentationEngine:
    """Frames in, published messages out, parameters changed at runtime; see the module docstring.

    Args:
        values: parameter values (names of :data:`seg_ros.config.PARAMS`); missing ones take defaults.
        image_cls: the sensor_msgs/Image class to publish (rclpy's or a ``rosbags`` one).
        publish: called from the worker thread as ``publish(output, message)``, output in :data:`OUTPUT_TOPICS`.
        subscribers: ``subscribers(output)`` → number of subscribers; lazy outputs are built only when > 0.
        log: ``log(level, text)`` with level ``info``, ``warn`` or ``error``; warnings about frames are
            throttled to one per ``throttle_s`` per kind, with the count of those held back.
        segmenter_factory: builds the pipeline from :func:`seg_ros.config.segmenter_kwargs`.

    Raises:
        SegRosError: the initial values are invalid or the initial pipeline cannot be built.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        image_cls: type,
        publish: Callable[[str, Any], None],
        subscribers: Callable[[str], int] | None = None,
        log: Callable[[str, str], None] | None = None,
        *,
        segmenter_factory: Callable[..., Segmenter] = Segmenter,
        throttle_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        vals = validate_all(dict(values))
        self._factory = segmenter_factory
        seg = segmenter_factory(**segmenter_kwargs(vals))
        self._state: tuple[dict[str, Any], Segmenter] = (vals, seg)
        self._image_cls = image_cls
        self._publish = publish
        self._subscribers = subscribers or (lambda output: 1)
        self._log = log or (lambda level, text: None)
        self._clock = clock
        self._throttle = Throttle(throttle_s)
        self._camera_info: Any = None
        self._computed = ""
        self._apply_lock = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg_ros-loader")
        self._closed = False
        self._test_delay_s = float(os.environ.get(TEST_DELAY_ENV, "0") or 0)
        self.stats = NodeStats()
        self.pipeline_listeners: list[Callable[[Segmenter], None]] = []
        """Called (from the thread that applied the change) after a new pipeline was swapped in."""
        self._worker: FrameWorker[InputFrame] = FrameWorker(
            self._process, self._on_error, min_interval_s=_interval(vals["max_rate_hz"]), name="seg_ros-worker")
        self._update_info()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SegmentationEngine:
        self._worker.start()
        return self

    def close(self, timeout: float | None = 5.0) -> bool:
        """Stop taking frames and parameter changes, stop the worker and the loader; idempotent.

        The frame in progress finishes in the background; returns False if the worker was still busy after
        ``timeout`` seconds (0: do not wait).
        """
        self._closed = True
        self._loader.shutdown(wait=False, cancel_futures=True)
        return self._worker.stop(timeout)

    # -- state ---------------------------------------------------------------------------------------

    @property
    def values(self) -> dict[str, Any]:
        """A copy of the current (validated) parameter values."""
        return dict(self._state[0])

    @property
    def segmenter(self) -> Segmenter:
        return self._state[1]

    @property
    def worker(self) -> FrameWorker[InputFrame]:
        return self._worker

    # -- input ---------------------------------------------------------------------------------------

    def submit(self, msg: Any, compressed: bool = False) -> bool:
        """Store a received Image (or CompressedImage) as the newest frame; True if an older one was dropped."""
        return self._worker.submit(InputFrame(msg, compressed, self._clock()))

    def set_camera_info(self, msg: Any) -> None:
        """The latest camera_info; republished (scaled to the output size) with each frame's header."""
        self._camera_info = msg

    # -- parameters ----------------------------------------------------------------------------------

    def apply(self, changes: Mapping[str, Any]) -> tuple[bool, str]:
        """Validate and apply parameter changes atomically: all of them, or none (with the reason).

        Blocks while a new pipeline is being built (in the loader thread); frames keep being processed
        with the old one meanwhile.
        """
        if self._closed:
            return False, SHUTTING_DOWN
        with self._apply_lock:
            cur, seg = self._state
            new = dict(cur)
            try:
                for name, value in changes.items():
                    spec = SPECS.get(name)
                    if spec is not None and spec.read_only and value != cur[name]:
                        raise ConfigError(f"parameter {name} is read-only at runtime; set it when the node starts "
                                          "(launch argument or parameter file).")
                    new[name] = validate(name, value)
            except ConfigError as e:
                self.stats.count("params_rejected")
                self._log("warn", f"parameter change rejected: {e}")
                return False, str(e)
            reload = [n for n in sorted(reload_params()) if new[n] != cur[n]]
            if reload:
                try:
                    future = self._loader.submit(self._build, new)
                except RuntimeError:  # the loader refuses work once the engine is closed
                    return False, SHUTTING_DOWN
                try:
                    seg = self._wait_built(future)
                except CancelledError:
                    return False, SHUTTING_DOWN
                except SegRosError as e:
                    return self._rejected(reload, str(e))
                except Exception as e:  # noqa: BLE001 - e.g. CUDA out of memory: reject, keep serving
                    return self._rejected(reload, f"{type(e).__name__}: {e}")
            else:
                crf = crf_config(new)
                if crf != crf_config(cur):
                    try:
                        seg.crf = crf  # applies from the next frame
                    except SegRosError as e:
                        return self._rejected([n for n in sorted(changes) if n.startswith("crf.")], str(e))
                seg.overlay_alpha = new["overlay_alpha"]
            self._state = (new, seg)  # one assignment: the worker sees the old or the new pair, never a mix
            self._worker.min_interval_s = _interval(new["max_rate_hz"])
            self._update_info()
            if reload:
                self.stats.count("reloads")
                self._log("info", f"pipeline rebuilt for {', '.join(reload)}: {seg.describe()}")
                for listener in list(self.pipeline_listeners):
                    listener(seg)
            return True, ""

    def _wait_built(self, future: Future[Segmenter]) -> Segmenter:
        """The built pipeline; CancelledError once the engine is closed (the build goes on in the background)."""
        while True:
            try:
                return future.result(timeout=0.1)
            except FutureTimeout:
                if self._closed:
                    raise CancelledError from None

    def _build(self, values: dict[str, Any]) -> Segmenter:
        """A new pipeline for ``values`` (runs in the loader thread)."""
        if self._test_delay_s > 0:
            time.sleep(self._test_delay_s)
        return self._factory(**segmenter_kwargs(values))

    def _rejected(self, names: list[str], reason: str) -> tuple[bool, str]:
        self.stats.count("params_rejected")
        text = f"{', '.join(names)} change rejected, the running pipeline is kept: {reason}"
        self._log("warn", text)
        return False, text

    def _update_info(self) -> None:
        vals, seg = self._state
        self.stats.info = {
            "model": seg.model_path.name,
            "label set": f"{seg.label_set.name} ({seg.label_set.num_classes} classes)",
            "backend": seg.backend.name,
            "device": str(seg.device),
            "precision": seg.backend.precision,
            "resolution": format_resolution(seg.resolution),
            "keep aspect": str(seg.keep_aspect).lower(),
            "max rate hz": f"{vals['max_rate_hz']:g}",
            "crf": seg.crf_stage.describe() if seg.crf_stage is not None else "off",
        }

    # -- the worker ----------------------------------------------------------------------------------

    def _process(self, frame: InputFrame) -> None:
        msg = frame.msg
        if self._test_delay_s > 0:
            time.sleep(self._test_delay_s)
        vals, seg = self._state
        t0 = self._clock()
        budget = vals["max_pixels"]
        rgb = compressed_to_rgb(msg, budget) if frame.compressed else image_to_rgb(msg, budget)
        t1 = self._clock()
        wanted = {"labels"} | {o for o in ("color", "overlay", "confidence")
                               if vals[f"publish.{o}"] and self._subscribers(o) > 0}
        result = seg.segment(rgb, wanted)
        self._computed = ",".join(o for o in OUTPUT_TOPICS if o in wanted)
        t2 = self._clock()
        header = msg.header
        cls = self._image_cls
        if vals["publish.labels"]:
            self._publish("labels", image_message(cls, header, result.labels))
        if result.color is not None:
            self._publish("color", image_message(cls, header, result.color))
        if result.overlay is not None:
            self._publish("overlay", image_message(cls, header, result.overlay))
        if result.confidence is not None:
            self._publish("confidence",
                          image_message(cls, header, confidence_image(result.confidence, vals["confidence_encoding"])))
        info = self._camera_info
        if info is not None and vals["publish.camera_info"] and self._subscribers("camera_info") > 0:
            self._publish("camera_info", scale_camera_info(info, rgb.shape[0], rgb.shape[1], header))
        t3 = self._clock()
        stages = {k: v for k, v in result.timings.items() if k != "total"}
        stages["decode"] = (t1 - t0) * 1000.0
        stages["publish"] = (t3 - t2) * 1000.0
        self.stats.frame((t3 - frame.arrived) * 1000.0, stages)

    def _on_error(self, error: BaseException, frame: InputFrame) -> None:
        kind = "compressed image" if frame.compressed else "image"
        frame_id = clip(repr(getattr(getattr(frame.msg, "header", None), "frame_id", "?")), 60)
        if isinstance(error, InputError):
            self.stats.bad_frame(str(error))
            self._warn("bad", f"dropped a bad {kind} (frame_id {frame_id}): {error}")
        else:
            text = f"{type(error).__name__}: {error}"
            self.stats.error(text)
            self._warn("error", f"segmenting an {kind} (frame_id {frame_id}) failed: {text}")

    def _warn(self, key: str, text: str) -> None:
        held = self._throttle.check(key)
        if held is not None:
            self._log("warn", text + (f" ({held} similar message(s) held back)" if held else ""))

    # -- diagnostics ---------------------------------------------------------------------------------

    def summary(self, extra: Mapping[str, str] | None = None) -> Summary:
        """The diagnostic status now (see :class:`~seg_ros.ros.diagnostics.NodeStats`); ``extra`` facts added."""
        c = self._worker.counts()
        self.stats.set_count("received", c.submitted)
        self.stats.set_count("processed", c.processed)
        self.stats.set_count("dropped", c.dropped)
        return self.stats.summary(extra={"outputs": self._computed or "none yet", **(extra or {})})


def _interval(max_rate_hz: float) -> float:
    return 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
