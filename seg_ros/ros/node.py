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

Every per-frame output carries the input image's header unchanged. The work
is done by :class:`seg_ros.ros.engine.SegmentationEngine` (ROS-free); this
module declares the parameters of :data:`seg_ros.ros.params.PARAMS` with
descriptors, creates the topics with their QoS and forwards callbacks.

Threads: a MultiThreadedExecutor runs the callbacks. The parameter services
live in the node's default callback group, the inputs and the timers in groups
of their own, so a parameter change that waits for a new model to load does
not hold up frames, which the engine's worker keeps segmenting with the old
model until the swap.
"""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from seg_ros.errors import SegRosError
from seg_ros.ros.diagnostics import diagnostic_array
from seg_ros.ros.engine import OUTPUTS, SegmentationEngine
from seg_ros.ros.messages import label_info_json, label_info_message
from seg_ros.ros.params import NODE_NAME, PARAMS, SPECS, ParamSpec, validate_all
from seg_ros.ros.qos import choose_reliability, incompatible_qos_hint

try:  # rclpy >= Iron; Humble has the same classes in rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # pragma: no cover - Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

try:  # vision_msgs has no PyPI wheel; on a robot it comes from apt (ros-<distro>-vision-msgs)
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

EXIT_USER_ERROR = 2
_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
_PARAM_TYPE = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
               float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def parameter_descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The rcl descriptor of one parameter: type, description, choices, range and read-only flag."""
    d = ParameterDescriptor(name=spec.name, type=_PARAM_TYPE[spec.type], read_only=spec.read_only)
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


class SegmentationNode(Node):
    """The ROS 2 front end of :class:`~seg_ros.ros.engine.SegmentationEngine` (see the module docstring).

    Raises:
        SegRosError: a start-up parameter is invalid or the initial model cannot be loaded.
    """

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        values = validate_all({p.name: self.get_parameter(p.name).value for p in PARAMS})
        self._closing = False
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()

        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {name: self.create_publisher(Image, f"~/{name}", out_qos) for name in OUTPUTS
                      if name != "camera_info"}
        self._pubs["camera_info"] = self.create_publisher(CameraInfo, "~/camera_info", out_qos)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        if LabelInfo is not None:
            self._label_pub = self.create_publisher(LabelInfo, "~/label_info", latched)
        else:
            self._label_pub = self.create_publisher(String, "~/label_info_json", latched)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self._engine = SegmentationEngine(values, Image, self._publish, self._subscriber_count, self._log)
        self._engine.pipeline_listeners.append(lambda seg: self._publish_label_info())

        self._image_sub = self._info_sub = None
        self._reliability = ""
        self._subscribe()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics, callback_group=self._timer_group)
        self._qos_timer = self.create_timer(1.0, self._check_auto_qos, callback_group=self._timer_group)
        self._engine.start()
        self._publish_label_info()
        seg = self._engine.segmenter
        self.get_logger().info(
            f"segmenting {self._image_topic} ({values['input_transport']}, QoS {self._reliability} depth "
            f"{values['qos.depth']}) with {seg.describe()}; outputs under {self.get_fully_qualified_name()}/")

    # -- inputs ------------------------------------------------------------------------------------------

    @property
    def _image_topic(self) -> str:
        if self._engine.values["input_transport"] == "compressed":
            # image_transport's convention: remapping the base topic moves every transport with it.
            return self.resolve_topic_name("image") + "/compressed"
        return self.resolve_topic_name("image")

    def _offered_reliabilities(self) -> list[str]:
        out = []
        for info in self.get_publishers_info_by_topic(self._image_topic):
            rel = info.qos_profile.reliability
            out.append("reliable" if rel == ReliabilityPolicy.RELIABLE else "best_effort")
        return out

    def _subscribe(self) -> None:
        """(Re)create the image and camera_info subscriptions from the qos.* parameters."""
        values = self._engine.values
        setting = values["qos.reliability"]
        offered = self._offered_reliabilities() if setting == "auto" else []
        reliability = choose_reliability(setting, offered)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=values["qos.depth"],
                         reliability=_RELIABILITY[reliability], durability=DurabilityPolicy.VOLATILE)
        for sub in (self._image_sub, self._info_sub):
            if sub is not None:
                self.destroy_subscription(sub)
        compressed = values["input_transport"] == "compressed"
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self._image_sub = self.create_subscription(
            CompressedImage if compressed else Image, self._image_topic,
            self._on_compressed if compressed else self._on_image, qos,
            callback_group=self._input_group, event_callbacks=events)
        self._info_sub = self.create_subscription(
            CameraInfo, "camera_info", self._engine.set_camera_info, qos, callback_group=self._input_group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos))
        self._subscribed_with = (setting, reliability, values["qos.depth"])
        if self._reliability and reliability != self._reliability:
            self.get_logger().info(f"input QoS now {reliability} (qos.reliability={setting}, offered: "
                                   f"{', '.join(offered) or 'no publisher'}).")
        self._reliability = reliability

    def _check_auto_qos(self) -> None:
        """Re-match qos.reliability:=auto when the publishers on the input topic change."""
        setting, reliability, depth = self._subscribed_with
        if setting != "auto" or self._closing:
            return
        if choose_reliability("auto", self._offered_reliabilities()) != reliability:
            self._subscribe()

    def _on_image(self, msg: Image) -> None:
        self._engine.submit(msg, compressed=False)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._engine.submit(msg, compressed=True)

    def _on_incompatible_qos(self, event: Any) -> None:
        policy = getattr(event.last_policy_kind, "name", str(event.last_policy_kind))
        setting, reliability, _ = self._subscribed_with
        self._engine.stats.count("qos_incompatible")
        self.get_logger().warning(incompatible_qos_hint(self._image_topic, policy, setting, reliability))

    # -- outputs -----------------------------------------------------------------------------------------

    def _publish(self, output: str, msg: Any) -> None:
        if self._closing:
            return
        try:
            self._pubs[output].publish(msg)
        except Exception:  # noqa: BLE001 - the context went away during shutdown (Ctrl-C)
            if not (self._closing or not rclpy.ok(context=self.context)):
                raise

    def _subscriber_count(self, output: str) -> int:
        return self._pubs[output].get_subscription_count()

    def _log(self, level: str, text: str) -> None:
        # One call site per severity: rclpy refuses to log from one site at several severities.
        if level == "info":
            self.get_logger().info(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().error(text)

    def _publish_label_info(self) -> None:
        seg = self._engine.segmenter
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        if LabelInfo is not None:
            self._label_pub.publish(label_info_message(LabelInfo, VisionClass, header, seg.label_set))
        else:
            self._label_pub.publish(String(data=label_info_json(seg.label_set)))

    def _publish_diagnostics(self) -> None:
        if self._closing:
            return
        setting, reliability, depth = self._subscribed_with
        summary = self._engine.summary({"input topic": self._image_topic,
                                        "input QoS": f"{reliability} depth {depth} (qos.reliability={setting})"})
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        msg = diagnostic_array(_DiagTypes, header, [
            (f"{self.get_fully_qualified_name().lstrip('/')}: segmentation", self._engine.stats.info["device"],
             summary)])
        self._diag_pub.publish(msg)

    # -- parameters ----------------------------------------------------------------------------------------

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            ok, reason = self._engine.apply(changes)
            if ok and any(n.startswith("qos.") for n in changes):
                self._subscribe()
        except Exception as e:  # noqa: BLE001 - a parameter request must always get an answer
            ok, reason = False, f"{type(e).__name__}: {e}"
            self._log("error", f"parameter change {sorted(changes)} failed: {reason}")
        return SetParametersResult(successful=ok, reason=reason)

    def close(self) -> None:
        """Stop the worker; no publishing after this."""
        self._closing = True
        self._engine.close()


class _DiagTypes:
    DiagnosticArray = DiagnosticArray
    DiagnosticStatus = DiagnosticStatus
    KeyValue = KeyValue


def message_kit() -> Any:
    """rclpy's message classes and (de)serialisers for ``seg-ros bench --node`` (rclpy is imported only here)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import RegionOfInterest

    from seg_ros.ros.nodebench import MessageKit

    def header() -> Header:
        h = Header(frame_id="camera")
        h.stamp.sec, h.stamp.nanosec = 1, 2
        return h

    def camera_info() -> CameraInfo:
        return CameraInfo(header=header(), height=720, width=1280, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[900.0, 0.0, 640.0, 0.0, 900.0, 360.0, 0.0, 0.0, 1.0],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[900.0, 0.0, 640.0, 0.0, 0.0, 900.0, 360.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                          roi=RegionOfInterest())

    return MessageKit("rclpy", Image, camera_info, header, serialize_message, deserialize_message)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run seg_ros segmentation_node`` and ``python -m seg_ros.ros.node``.

    Exits 0 on Ctrl-C / SIGTERM, 2 (after one sentence on stderr) when the start-up parameters or the
    model are unusable.
    """
    rclpy.init(args=args)
    node = executor = None
    rc = 0
    try:
        node = SegmentationNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SegRosError as e:
        print(f"{NODE_NAME}: error: {e}", file=sys.stderr)
        rc = EXIT_USER_ERROR
    except ParameterException as e:  # e.g. -p overlay_alpha:=2.0 outside its range
        print(f"{NODE_NAME}: error: {e}", file=sys.stderr)
        rc = EXIT_USER_ERROR
    finally:
        if node is not None:
            node.close()
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)  # let its threads leave rcl before the interpreter ends
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
