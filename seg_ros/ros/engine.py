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

Several cameras (the ``cameras`` parameter): each has its own newest-frame
slot, camera_info, per-camera parameters (:data:`seg_ros.config.CAMERA_PARAMS`)
and statistics; one Segmenter serves them all, each worker round segmenting the
newest frame of every camera that has one as one batch (the scheduling rule is
in :mod:`seg_ros.ros.worker`). Output keys passed to ``publish`` and
``subscribers`` are ``<camera>/<output>``; with no ``cameras`` they are the
bare output names, as before.

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

from seg_ros.config import (
    camera_values,
    check_camera_scoped,
    crf_config,
    reload_params,
    segmenter_kwargs,
    spec_for,
    validate,
    validate_all,
)
from seg_ros.core.errors import ConfigError, InputError, SegRosError, clip
from seg_ros.io.messages import compressed_to_rgb, confidence_image, image_message, image_to_rgb
from seg_ros.pipeline import Segmenter, SegResult, format_resolution
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
    """What a subscription callback stores: the message as received, when (monotonic seconds), from which
    camera ("" = the node's single camera)."""

    msg: Any
    compressed: bool
    arrived: float
    camera: str = ""


def output_key(camera: str, output: str) -> str:
    """The key of ``camera``'s ``output`` for ``publish`` and ``subscribers``: ``<camera>/<output>``, or the bare
    output name for the single unnamed camera."""
    return f"{camera}/{output}" if camera else output


@dataclass
class CameraState:
    """One camera's latest camera_info, statistics and the outputs computed for its last frame."""

    name: str
    stats: NodeStats
    camera_info: Any = None
    computed: str = ""


@dataclass
class _Decoded:
    index: int
    frame: InputFrame
    rgb: Any
    decode_ms: float
    wanted: frozenset[str]
    values: dict[str, Any]


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
        self._apply_lock = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg_ros-loader")
        self._closed = False
        self._test_delay_s = float(os.environ.get(TEST_DELAY_ENV, "0") or 0)
        self.stats = NodeStats()
        """The shared pipeline's statistics (with one unnamed camera: also the camera's)."""
        names = vals["cameras"] or ("",)
        self.cameras: dict[str, CameraState] = {
            c: CameraState(c, self.stats if not c else NodeStats()) for c in names}
        """Per camera, in the order of the ``cameras`` parameter ("" alone without it)."""
        self.pipeline_listeners: list[Callable[[Segmenter], None]] = []
        """Called (from the thread that applied the change) after a new pipeline was swapped in."""
        self._worker: FrameWorker[InputFrame] = FrameWorker(
            on_error=self._on_error, process_batch=self._process_batch, cameras=names,
            min_interval_s=_interval(vals["max_rate_hz"]), name="seg_ros-worker")
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

    def submit(self, msg: Any, compressed: bool = False, camera: str = "") -> bool:
        """Store a received Image (or CompressedImage) as ``camera``'s newest frame; True if an older one was
        dropped."""
        return self._worker.submit(InputFrame(msg, compressed, self._clock(), camera), camera)

    def set_camera_info(self, msg: Any, camera: str = "") -> None:
        """``camera``'s latest camera_info; republished (scaled to the output size) with each of its frames'
        headers."""
        self.cameras[camera].camera_info = msg

    def drop_pending(self) -> int:
        """Drop the frames waiting to be segmented (counted as dropped), e.g. when the node is deactivated."""
        return self._worker.drop_pending()

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
                    spec = spec_for(name)
                    if spec is not None and spec.read_only and value != cur[name]:
                        raise ConfigError(f"parameter {name} is read-only at runtime; set it when the node starts "
                                          "(launch argument or parameter file).")
                    new[name] = validate(name, value)
                check_camera_scoped(new)
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

    def _process_batch(self, items: list[tuple[str, InputFrame]]) -> list[BaseException | None]:
        """Decode the newest frame of each camera, segment them as one batch, publish each camera's outputs;
        per item None or the exception that failed it (see :class:`~seg_ros.ros.worker.FrameWorker`)."""
        if self._test_delay_s > 0:
            time.sleep(self._test_delay_s)
        vals, seg = self._state
        errors: list[BaseException | None] = [None] * len(items)
        ready: list[_Decoded] = []
        budget = vals["max_pixels"]
        for i, (camera, frame) in enumerate(items):
            t0 = self._clock()
            try:
                rgb = compressed_to_rgb(frame.msg, budget) if frame.compressed else image_to_rgb(frame.msg, budget)
            except BaseException as e:  # noqa: BLE001 - this camera's frame fails alone
                errors[i] = e
                continue
            own = camera_values(vals, camera)
            wanted = frozenset({"labels"} | {o for o in ("color", "overlay", "confidence")
                                             if own[f"publish.{o}"] and self._subscribers(output_key(camera, o)) > 0})
            ready.append(_Decoded(i, frame, rgb, (self._clock() - t0) * 1000.0, wanted, own))
        if not ready:
            return errors
        try:
            results = seg.segment_batch([d.rgb for d in ready], frozenset().union(*(d.wanted for d in ready)))
        except BaseException as e:  # noqa: BLE001 - find the frame that failed it: one at a time
            if len(ready) == 1:
                errors[ready[0].index] = e
                return errors
            results = []
            for d in ready:
                try:
                    results.append(seg.segment(d.rgb, d.wanted))
                except BaseException as e1:  # noqa: BLE001 - only this camera's frame fails
                    errors[d.index] = e1
                    results.append(None)
        for d, result in zip(ready, results):
            if result is not None:
                self._publish_result(d, result, vals)
        return errors

    def _publish_result(self, d: _Decoded, result: SegResult, vals: dict[str, Any]) -> None:
        camera = d.frame.camera
        state = self.cameras[camera]
        own = d.values
        t2 = self._clock()
        header = d.frame.msg.header
        cls = self._image_cls
        state.computed = ",".join(o for o in OUTPUT_TOPICS if o in d.wanted)
        if own["publish.labels"]:
            self._publish(output_key(camera, "labels"), image_message(cls, header, result.labels))
        if result.color is not None and "color" in d.wanted:
            self._publish(output_key(camera, "color"), image_message(cls, header, result.color))
        if result.overlay is not None and "overlay" in d.wanted:
            self._publish(output_key(camera, "overlay"), image_message(cls, header, result.overlay))
        if result.confidence is not None and "confidence" in d.wanted:
            self._publish(output_key(camera, "confidence"), image_message(
                cls, header, confidence_image(result.confidence, vals["confidence_encoding"])))
        info = state.camera_info
        if info is not None and own["publish.camera_info"] and self._subscribers(output_key(camera,
                                                                                             "camera_info")) > 0:
            self._publish(output_key(camera, "camera_info"),
                          scale_camera_info(info, d.rgb.shape[0], d.rgb.shape[1], header))
        t3 = self._clock()
        stages = {k: v for k, v in result.timings.items() if k != "total"}
        stages["decode"] = d.decode_ms
        stages["publish"] = (t3 - t2) * 1000.0
        latency = (t3 - d.frame.arrived) * 1000.0
        state.stats.frame(latency, stages)
        if state.stats is not self.stats:
            self.stats.frame(latency, stages)

    def _on_error(self, error: BaseException, frame: InputFrame) -> None:
        kind = "compressed image" if frame.compressed else "image"
        if frame.camera:
            kind = f"{kind} of camera {frame.camera}"
        frame_id = clip(repr(getattr(getattr(frame.msg, "header", None), "frame_id", "?")), 60)
        stats = self.cameras[frame.camera].stats
        if isinstance(error, InputError):
            stats.bad_frame(str(error))
            self._warn(f"bad{frame.camera}", f"dropped a bad {kind} (frame_id {frame_id}): {error}")
        else:
            text = f"{type(error).__name__}: {error}"
            stats.error(text)
            if stats is not self.stats:
                self.stats.error(text)
            self._warn(f"error{frame.camera}", f"segmenting an {kind} (frame_id {frame_id}) failed: {text}")

    def _warn(self, key: str, text: str) -> None:
        held = self._throttle.check(key)
        if held is not None:
            self._log("warn", text + (f" ({held} similar message(s) held back)" if held else ""))

    # -- diagnostics ---------------------------------------------------------------------------------

    def summary(self, extra: Mapping[str, str] | None = None) -> Summary:
        """The shared pipeline's diagnostic status now (see :class:`~seg_ros.ros.diagnostics.NodeStats`), with
        the counts of all cameras; ``extra`` facts added. With one unnamed camera it is also the camera's."""
        c = self._worker.counts()
        self.stats.set_count("received", c.submitted)
        self.stats.set_count("processed", c.processed)
        self.stats.set_count("dropped", c.dropped)
        if "" in self.cameras:
            facts = {"outputs": self.cameras[""].computed or "none yet"}
        else:
            facts = {"cameras": ", ".join(self.cameras)}
        return self.stats.summary(extra={**facts, **(extra or {})})

    def camera_summary(self, camera: str, extra: Mapping[str, str] | None = None) -> Summary:
        """One named camera's diagnostic status: its frames, drops, bad frames and latency."""
        state = self.cameras[camera]
        c = self._worker.counts(camera)
        state.stats.set_count("received", c.submitted)
        state.stats.set_count("processed", c.processed)
        state.stats.set_count("dropped", c.dropped)
        return state.stats.summary(extra={"outputs": state.computed or "none yet", **(extra or {})})


def _interval(max_rate_hz: float) -> float:
    return 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
