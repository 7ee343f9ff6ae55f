"""``segmentation_node``: the rclpy node, and the only module of seg_ros that imports rclpy.

Topics (relative, so namespaces and remapping apply)::

    image                sensor_msgs/Image              in   (input_transport raw)
    image/compressed     sensor_msgs/CompressedImage    in   (input_transport compressed; follows image's remap)
    camera_info          sensor_msgs/CameraInfo         in   (optional)
    ~/labels             sensor_msgs/Image mono8        out  class ids at the input resolution
    ~/color              sensor_msgs/Image rgb8         out  label colours        (only while subscribed)
    ~/overlay            sensor_msgs/Image rgb8         out  frame + colours      (only while subscribed)
    ~/confidence         sensor_msgs/Image mono8/32FC1  out  max softmax          (only while subscribed)
    ~/camera_info        sensor_msgs/CameraInfo         out  scaled to the output size (when camera_info comes in)
    ~/label_info         vision_msgs/LabelInfo          out  transient local; when vision_msgs is installed
    ~/label_info_json    std_msgs/String (JSON)         out  transient local; the fallback without vision_msgs
    /diagnostics         diagnostic_msgs/DiagnosticArray out 1 Hz

With ``cameras: [front, rear]`` one node serves several cameras with one model:
each camera reads ``<camera>/image`` (or ``<camera>/image/compressed``) and
``<camera>/camera_info`` and publishes ``~/<camera>/labels``, ``color``,
``overlay``, ``confidence`` and ``camera_info`` (``camera_ports.py``);
/diagnostics then carries one status for the shared pipeline and one per camera.

Every per-frame output carries the input image's header unchanged. The work
is done by :class:`seg_ros.ros.engine.SegmentationEngine` (ROS-free); this
module declares the parameters of :data:`seg_ros.config.PARAMS` with
descriptors, creates the topics with their QoS and forwards callbacks.

Threads: :class:`~seg_ros.ros.executor.FramesFirstExecutor` runs the inputs
and timers in the thread that spins and the services (parameters, lifecycle)
in threads of their own, so a parameter change that waits for a new model to
load does not hold up frames, which the engine's worker keeps segmenting with
the old model until the swap.

Stopping: the executor spins in a thread of its own while the main thread waits
for SIGINT or SIGTERM (``stopping.py``, installed before torch is imported;
rclpy's own handlers are not installed, so the context stays valid until the
node is torn down in order). The first signal stops the frames and every
publication, then the executor, the node and the context go; the frame in
progress is given ``STOP_GRACE_S`` to finish, after which the process ends with
``os._exit`` (the ROS side is already closed, and a thread still inside torch
must not meet the interpreter's finalisation). Later signals only cut the
grace short. With ``SEG_ROS_EXIT_WITH_PARENT=1`` (set by the launch files)
Linux sends SIGTERM when the parent process dies.
"""

from __future__ import annotations

# isort: off
# First, before rclpy and torch load: it installs the stop handlers when this process is the node.
from seg_ros.ros.stopping import PROCESS_STOP, StopSignals, exit_with_parent
# isort: on

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import NameValidationException, ParameterException, ParameterNotDeclaredException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter as RclpyParameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from seg_ros.config import CAMERA_PARAMS, NODE_NAME, PARAMS, SPECS, ParamSpec, spec_for, validate, validate_all
from seg_ros.core.errors import ConfigError, SegRosError
from seg_ros.io.messages import label_info_json, label_info_message
from seg_ros.ros.camera_ports import CameraPorts
from seg_ros.ros.dds import use_default_profile
from seg_ros.ros.diagnostics import diagnostic_array
from seg_ros.ros.engine import SHUTTING_DOWN, SegmentationEngine
from seg_ros.ros.executor import FramesFirstExecutor
from seg_ros.ros.launch_support import READY_MARKER

try:  # vision_msgs has no PyPI wheel; on a robot it comes from apt (ros-<distro>-vision-msgs)
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

try:  # rclpy's own exceptions, Humble to Kilted (rclpy.exceptions re-exports only InvalidHandle, and not on every
    # distribution): rcl failures, e.g. a malformed --ros-args rule; unknown ROS arguments; a destroyed entity
    from rclpy._rclpy_pybind11 import InvalidHandle, RCLError, UnknownROSArgsError
except ImportError:  # pragma: no cover - older layouts
    from rclpy.exceptions import InvalidHandle

    RCLError = UnknownROSArgsError = RuntimeError

LABEL_INFO_TOPIC = "~/label_info" if LabelInfo is not None else "~/label_info_json"
"""Where the label set is latched: vision_msgs/LabelInfo when vision_msgs is installed, else JSON."""
EXIT_USER_ERROR = 2
STOP_GRACE_S = 2.0
"""After a stop signal and the ROS teardown, how long the frame in progress may take before the process ends
without waiting for it (seconds)."""
_PARAM_TYPE = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
               float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
               tuple: ParameterType.PARAMETER_STRING_ARRAY}


def parameter_descriptor(spec: ParamSpec, name: str | None = None) -> ParameterDescriptor:
    """The rcl descriptor of one parameter (named ``name``, default the spec's): type, description, choices, range
    and read-only flag."""
    d = ParameterDescriptor(name=name or spec.name, type=_PARAM_TYPE[spec.type], read_only=spec.read_only)
    d.description = spec.description + (" Changing it rebuilds the pipeline in the background." if spec.reload else "")
    if spec.choices:
        d.additional_constraints = f"one of: {', '.join(spec.choices)}"
    if spec.range is not None:
        lo, hi = spec.range
        if spec.type is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


class SegmentationFrontEnd:
    """The ROS side of :class:`~seg_ros.ros.engine.SegmentationEngine`, shared by the plain and the lifecycle node
    (mixed in before rclpy's ``Node`` / ``LifecycleNode``): parameters, topics, diagnostics, label info.

    The pieces are brought up and down in steps, which the plain node takes at once and the lifecycle node
    takes per transition: :meth:`_declare` (parameters), :meth:`_load` (the engine and its model: the slow
    part), :meth:`_open` (publishers, subscriptions, timers, the worker), :meth:`_shut` (the reverse of
    ``_open``, dropping queued frames) and :meth:`_unload` (the engine and the model freed).
    """

    def _declare(self) -> dict[str, Any]:
        """Declare the parameters and set up what never changes; returns the validated start-up values."""
        values = declare_parameters(self)
        self._closing = False
        self._ros_lock = threading.Lock()
        """Held around every rcl call made outside the executor (the worker's publications); closing takes it."""
        self._judged = threading.local()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._engine: SegmentationEngine | None = None
        self._ports: dict[str, CameraPorts] = {}
        self._timers: list[Any] = []
        self._label_pub: Any = None
        self._diag_pub: Any = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        return values

    def _load(self, values: dict[str, Any]) -> None:
        """Build the engine (load the model, build or import the backend) and start its idle worker."""
        engine = SegmentationEngine(values, Image, self._publish, self._subscriber_count, self._log)
        engine.pipeline_listeners.append(lambda seg: self._publish_label_info())
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._label_pub = self.create_publisher(LabelInfo if LabelInfo is not None else String, LABEL_INFO_TOPIC,
                                                latched)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._engine = engine.start()

    def _open(self) -> None:
        """Publishers and subscriptions of every camera, the diagnostics and QoS timers; frames flow."""
        engine = self._engine
        ports = {c: CameraPorts(self, c, engine, self._input_group, self._log_warning) for c in engine.cameras}
        with self._ros_lock:
            self._ports = ports
        for p in ports.values():
            p.subscribe()
        self._timers = [self._steady_timer(1.0, self._publish_diagnostics),
                        self._steady_timer(1.0, self._check_auto_qos)]
        self._publish_label_info()

    def _shut(self, timeout: float = 5.0) -> None:
        """Undo :meth:`_open`: no subscription, publisher or timer is left, frames that wait are dropped, and the
        frame in progress is given ``timeout`` seconds to finish (its outputs are not published)."""
        with self._ros_lock:
            ports, self._ports = self._ports, {}
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        for p in ports.values():
            p.destroy()
        if self._engine is not None:
            self._engine.drop_pending()
            self._engine.worker.wait_idle(timeout)

    def _unload(self) -> None:
        """Undo :meth:`_load`: the worker stops, the engine and its model are freed (host memory is handed back
        to the system where the C library allows, and CUDA's cached blocks are released)."""
        with self._ros_lock:
            engine, self._engine = self._engine, None
            pubs, self._label_pub, self._diag_pub = (self._label_pub, self._diag_pub), None, None
        if engine is not None:
            engine.close(timeout=5.0)
            del engine
        for pub in pubs:
            if pub is not None:
                self.destroy_publisher(pub)
        release_memory()

    def _steady_timer(self, period_s: float, callback: Any) -> Any:
        """A timer on the steady clock, so that it keeps running under use_sim_time when no /clock comes."""
        try:
            return self.create_timer(period_s, callback, callback_group=self._timer_group,
                                     clock=Clock(clock_type=ClockType.STEADY_TIME))
        except TypeError:  # pragma: no cover - an rclpy whose create_timer takes no clock: ROS time
            return self.create_timer(period_s, callback, callback_group=self._timer_group)

    def announce_ready(self) -> None:
        """Log the one line starting with ``READY_MARKER`` (the replay launch waits for it)."""
        seg = self._engine.segmenter  # type: ignore[union-attr]
        inputs = "; ".join(f"{p.image_topic} ({p.values['input_transport']}, QoS {p.reliability} depth "
                           f"{p.values['qos.depth']})" for p in self._ports.values())
        self.get_logger().info(f"{READY_MARKER} segmenting {inputs} with {seg.describe()}; outputs under "
                               f"{self.get_fully_qualified_name()}/")

    def _check_auto_qos(self) -> None:
        """Re-match qos.reliability:=auto when the publishers on an input topic change."""
        if self._closing:
            return
        for ports in self._ports.values():
            if not self._closing:
                ports.check_auto_qos()

    # -- outputs -----------------------------------------------------------------------------------------

    def _publish(self, key: str, msg: Any) -> None:
        camera, _, output = key.rpartition("/")
        with self._ros_lock:
            ports = self._ports.get(camera)
            if not self._closing and ports is not None:
                ports.publishers[output].publish(msg)

    def _subscriber_count(self, key: str) -> int:
        camera, _, output = key.rpartition("/")
        with self._ros_lock:
            ports = self._ports.get(camera)
            return 0 if self._closing or ports is None else ports.publishers[output].get_subscription_count()

    def _log_warning(self, text: str) -> None:
        self._log("warn", text)

    def _log(self, level: str, text: str) -> None:
        if self._closing:  # frames and changes cut short by the stop are not failures
            return
        # One call site per severity: rclpy refuses to log from one site at several severities.
        if level == "info":
            self.get_logger().info(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().error(text)

    def _publish_label_info(self) -> None:
        engine = self._engine
        if engine is None:
            return
        seg = engine.segmenter
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        if LabelInfo is not None:
            msg = label_info_message(LabelInfo, VisionClass, header, seg.label_set)
        else:
            msg = String(data=label_info_json(seg.label_set))
        with self._ros_lock:
            if not self._closing and self._label_pub is not None:
                self._label_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        engine, ports = self._engine, self._ports
        if self._closing or engine is None or not ports:
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        msg = diagnostic_array(_DiagTypes, header, diagnostic_statuses(self, engine, ports))
        with self._ros_lock:
            if not self._closing and self._diag_pub is not None:
                self._diag_pub.publish(msg)

    # -- parameters ----------------------------------------------------------------------------------------

    def set_parameters(self, parameter_list: list[Any]) -> list[Any]:
        """As rclpy's (one atomic set per parameter), through :meth:`set_parameters_atomically`."""
        return [self.set_parameters_atomically([p]) for p in parameter_list]

    def set_parameters_atomically(self, parameter_list: list[Any]) -> Any:
        """As rclpy's, counting in diagnostics the rejections made before the engine sees the change (type,
        range, read-only, undeclared name); the engine counts its own."""
        self._judged.by_engine = False
        try:
            result = super().set_parameters_atomically(parameter_list)
        except ParameterNotDeclaredException as e:
            self._count_rejection(str(e))
            raise
        if not result.successful and not self._judged.by_engine:
            self._count_rejection(result.reason)
        return result

    def _count_rejection(self, reason: str) -> None:
        engine = self._engine
        if not self._closing:
            if engine is not None:
                engine.stats.count("params_rejected")
            self._log("warn", f"parameter change rejected: {reason}")

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if spec_for(p.name) is not None}
        if not changes:
            return SetParametersResult(successful=True)
        if self._closing:
            return SetParametersResult(successful=False, reason=SHUTTING_DOWN)
        engine = self._engine
        if engine is None:  # the lifecycle node before configure: checked now, read at configure
            try:
                for name, value in changes.items():
                    validate(name, value)
            except ConfigError as e:
                return SetParametersResult(successful=False, reason=str(e))
            return SetParametersResult(successful=True)
        try:
            ok, reason = engine.apply(changes)
            self._judged.by_engine = True
            if ok and not self._closing:
                resubscribe_changed_qos(self._ports)
        except Exception as e:  # noqa: BLE001 - a parameter request must always get an answer
            ok, reason = False, f"{type(e).__name__}: {e}"
            self._log("error", f"parameter change {sorted(changes)} failed: {reason}")
        return SetParametersResult(successful=ok, reason=reason)

    def close(self) -> None:
        """Stop taking frames and parameter changes; no rcl call from the worker after this returns.

        The frame in progress is not waited for (see :func:`main`).
        """
        with self._ros_lock:
            self._closing = True
        if self._engine is not None:
            self._engine.close(timeout=0)


class SegmentationNode(SegmentationFrontEnd, Node):
    """``segmentation_node``: every step of :class:`SegmentationFrontEnd` taken at construction.

    Raises:
        SegRosError: a start-up parameter is invalid or the initial model cannot be loaded.
    """

    def __init__(self, **node_kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **node_kwargs)
        self._load(self._declare())
        self._open()


def release_memory() -> None:
    """Hand freed memory back: Python's cycles collected, CUDA's cached blocks released, glibc's free heap
    trimmed (elsewhere a no-op)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def declare_parameters(node: Any) -> dict[str, Any]:
    """Declare every parameter of :data:`~seg_ros.config.PARAMS` on ``node`` with its descriptor, then the
    per-camera ones (``<camera>.<name>``, unset unless given: unset follows ``<name>``) for the cameras named;
    returns the validated start-up values.

    The start-up values (``-p``, parameter files) are checked against the schema before rclpy sees them, so
    that a wrong type or range is one sentence of ours; an integer given for a float parameter is taken.
    """
    overrides = getattr(node, "_parameter_overrides", None)
    if isinstance(overrides, dict):  # else rclpy's layout changed: its own checks remain
        for name, given in list(overrides.items()):
            spec = spec_for(name)
            if spec is None:
                continue
            value = validate(name, given.value)  # ConfigError names the parameter and what it must be
            if value is not given.value and spec.type is float:
                overrides[name] = RclpyParameter(name, value=value)
    for spec in PARAMS:
        if spec.type is tuple:  # an empty list has no type of its own for rclpy: declared typed, read with a default
            node.declare_parameter(spec.name, RclpyParameter.Type.STRING_ARRAY, parameter_descriptor(spec))
        else:
            node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
    cameras = validate("cameras", _value(node, SPECS["cameras"]))
    for name in overrides or {}:
        camera = name.split(".", 1)[0]
        if name not in SPECS and spec_for(name) is not None and camera not in cameras:
            raise ConfigError(f"parameter {name} names camera {camera}, which is not in cameras "
                              f"({', '.join(cameras) or 'empty'}).")
    for camera in cameras:
        for base in CAMERA_PARAMS:
            spec, name = SPECS[base], f"{camera}.{base}"
            node.declare_parameter(name, RclpyParameter.Type(_PARAM_TYPE[spec.type]), parameter_descriptor(spec, name))
    return parameter_values(node)


def parameter_values(node: Any) -> dict[str, Any]:
    """The node's current parameter values, validated: every parameter, and the per-camera ones that are set."""
    values = {p.name: _value(node, p) for p in PARAMS}
    for camera in validate("cameras", values["cameras"]):
        for base in CAMERA_PARAMS:
            given = node.get_parameter_or(f"{camera}.{base}", None)
            if given is not None and given.type_ != RclpyParameter.Type.NOT_SET:
                values[f"{camera}.{base}"] = given.value
    return validate_all(values)


def _value(node: Any, spec: ParamSpec) -> Any:
    if spec.type is tuple:
        given = node.get_parameter_or(spec.name, None)
        return list(spec.default) if given is None or given.type_ == RclpyParameter.Type.NOT_SET else given.value
    return node.get_parameter(spec.name).value


def resubscribe_changed_qos(ports: dict[str, CameraPorts]) -> None:
    """Re-create the subscriptions of the cameras whose qos.* values no longer match their subscriptions'."""
    for p in ports.values():
        setting, _, depth = p.subscribed_with
        if p.subscribed and (p.values["qos.reliability"], p.values["qos.depth"]) != (setting, depth):
            p.subscribe()


def diagnostic_statuses(node: Any, engine: SegmentationEngine,
                        ports: dict[str, CameraPorts]) -> list[tuple[str, str, Any]]:
    """(name, hardware id, summary) of the node's diagnostic statuses: the pipeline's (with one camera, the
    camera's too, as one status), then one per named camera."""
    base = node.get_fully_qualified_name().lstrip("/")
    device = engine.stats.info["device"]
    if "" in ports:
        return [(f"{base}: segmentation", device, engine.summary(ports[""].input_facts()))]
    return [(f"{base}: segmentation", device, engine.summary())] + [
        (f"{base}: camera {c}", device, engine.camera_summary(c, p.input_facts())) for c, p in ports.items()]


class _DiagTypes:
    DiagnosticArray = DiagnosticArray
    DiagnosticStatus = DiagnosticStatus
    KeyValue = KeyValue


def _init_rclpy(args: list[str] | None) -> None:
    """rclpy.init without its signal handlers: the node stops in its own order (see the module docstring)."""
    try:
        from rclpy.signals import SignalHandlerOptions

        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # pragma: no cover - an rclpy without signal_handler_options
        rclpy.init(args=args)


def spin_until_stopped(executor: Any, stop: StopSignals, failure: list[BaseException]) -> None:
    """Spin ``executor`` until it stops; what it raises before a stop was requested goes into ``failure``."""
    try:
        while True:
            try:
                executor.spin()
                break
            except InvalidHandle:
                # The executor met a subscription that a qos.* change is re-creating in another thread while
                # it built its wait set (an rclpy race): the wait set is dropped; spin on with the new one.
                if stop.requested.is_set():
                    break
    except ExternalShutdownException:
        pass
    except BaseException as e:  # noqa: BLE001 - re-raised by main after the teardown
        # Once the teardown is under way, the executors of Humble and Jazzy can raise from the guard
        # conditions that their shutdown() destroys while this thread still spins: not a failure.
        if not stop.requested.is_set():
            failure.append(e)
    finally:
        stop.request()


def _teardown(node: SegmentationFrontEnd | None, executor: Any, spinner: threading.Thread | None) -> None:
    """Frames and publications first, then the executor, the node and the context; waits for no frame."""
    if node is not None:
        node.close()
    if executor is not None:
        executor.shutdown(timeout_sec=5.0)
    if spinner is not None:
        spinner.join(5.0)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()


def _exit_when_threads_end(rc: int, stop: StopSignals) -> int:
    """Returns ``rc`` once no other Python thread runs; if one still does after ``STOP_GRACE_S`` (a frame or a model
    load in progress, the ROS side already closed), ends the process at once with ``os._exit(rc)``."""
    deadline = time.monotonic() + STOP_GRACE_S
    main_thread = threading.main_thread()
    while any(t is not main_thread and t.is_alive() for t in threading.enumerate()):
        if time.monotonic() > deadline or stop.hurry.is_set():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        time.sleep(0.02)
    return rc


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run seg_ros segmentation_node`` and ``python -m seg_ros.ros.node``.

    Exits 0 on SIGINT / SIGTERM at any moment (once or repeatedly), 2 (after one sentence on stderr) when
    the start-up arguments, parameters or the model are unusable.
    """
    return run_node(SegmentationNode, args)


def run_node(make_node: Callable[[], Any], args: list[str] | None = None) -> int:
    """Run the node ``make_node()`` builds until a stop signal (see :func:`main`); its ``announce_ready`` is
    called once it spins."""
    stop = PROCESS_STOP
    if not stop.installed:  # main() reached through another entry point than the node's own
        stop.install()
        exit_with_parent(stop)
    if stop.requested.is_set():  # stopped while importing: nothing to tear down
        return 0
    use_default_profile()  # bounds Fast DDS's receive buffers (docs/soak.md); read when rclpy creates the participant
    try:
        _init_rclpy(args)
    except RCLError as e:  # e.g. a malformed --ros-args rule
        print(f"{NODE_NAME}: error: {_first_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UnknownROSArgsError as e:  # its text is the list of them
        print(f"{NODE_NAME}: error: unknown ROS arguments {e}; remove them or fix their spelling "
              f"(ros2 run seg_ros {NODE_NAME} --ros-args -p name:=value ...).", file=sys.stderr)
        return EXIT_USER_ERROR
    stop.install()  # again: an rclpy that installs its own handlers in init replaced ours
    node = executor = spinner = None
    failure: list[BaseException] = []
    rc = 0
    try:
        node = make_node()
        if not stop.requested.is_set():
            executor = FramesFirstExecutor()
            executor.add_node(node)
            spinner = threading.Thread(target=spin_until_stopped, args=(executor, stop, failure),
                                       name="seg_ros-executor", daemon=True)
            spinner.start()
            node.announce_ready()
            stop.wait()
    except (SegRosError, ParameterException, NameValidationException, RCLError) as e:
        # e.g. -p overlay_alpha:=2.0 outside its range, a wrong type, an invalid node name
        print(f"{NODE_NAME}: error: {_first_line(e)}", file=sys.stderr)
        rc = EXIT_USER_ERROR
    finally:
        stop.request()  # whatever the way out, the teardown is a stop (see spin_until_stopped)
        _teardown(node, executor, spinner)
    if failure:
        raise failure[0]
    return _exit_when_threads_end(rc, stop)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
