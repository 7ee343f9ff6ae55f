"""One camera's topics on the node: its image (or image/compressed) and camera_info subscriptions, its outputs.

A camera named ``front`` (the ``cameras`` parameter) reads ``front/image`` and ``front/camera_info`` (relative:
under the node's namespace, remappable) and publishes ``~/front/labels``, ``~/front/color``, ... The node's single
unnamed camera (no ``cameras``) reads ``image`` and publishes ``~/labels``, ... as it always did. Each camera has
its own input transport and QoS (:data:`seg_ros.config.CAMERA_PARAMS`, ``<camera>.qos.depth`` etc., else the
node's values); ``qos.reliability: auto`` is matched per camera to what its publishers offer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_ros.config import camera_values
from seg_ros.ros.engine import OUTPUT_TOPICS, SegmentationEngine
from seg_ros.ros.qos import choose_reliability, incompatible_qos_hint

try:  # rclpy >= Iron; Humble has the same classes in rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # pragma: no cover - Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)


class CameraPorts:
    """The publishers and subscriptions of one camera (``""``: the node's single camera) on ``node``.

    Args:
        node: the rclpy node (plain or lifecycle) the topics belong to.
        camera: the camera's name.
        engine: whose ``submit`` / ``set_camera_info`` the subscriptions call, and whose values give the QoS.
        callback_group: the subscriptions' callback group.
        warn: ``warn(text)`` for an incompatible QoS (the node's logger).
    """

    def __init__(self, node: Node, camera: str, engine: SegmentationEngine, callback_group: Any,
                 warn: Callable[[str], None]) -> None:
        self.node = node
        self.camera = camera
        self.engine = engine
        self._group = callback_group
        self._warn = warn
        prefix = f"{camera}/" if camera else ""
        self._prefix = prefix
        self.publishers = {name: node.create_publisher(Image, f"~/{prefix}{name}", OUTPUT_QOS)
                           for name in OUTPUT_TOPICS if name != "camera_info"}
        self.publishers["camera_info"] = node.create_publisher(CameraInfo, f"~/{prefix}camera_info", OUTPUT_QOS)
        self._image_sub: Any = None
        self._info_sub: Any = None
        self.reliability = ""
        self.subscribed_with: tuple[str, str, int] = ("", "", 0)
        """(qos.reliability setting, reliability used, depth) of the current subscriptions."""

    @property
    def values(self) -> dict[str, Any]:
        """This camera's own values of the per-camera parameters."""
        return camera_values(self.engine.values, self.camera)

    @property
    def image_topic(self) -> str:
        """The fully resolved input topic (``<base>/compressed`` for the compressed transport, image_transport's
        convention: remapping the base topic moves every transport with it)."""
        base = self.node.resolve_topic_name(f"{self._prefix}image")
        return base + "/compressed" if self.values["input_transport"] == "compressed" else base

    @property
    def subscribed(self) -> bool:
        return self._image_sub is not None

    def offered_reliabilities(self) -> list[str]:
        out = []
        for info in self.node.get_publishers_info_by_topic(self.image_topic):
            rel = info.qos_profile.reliability
            out.append("reliable" if rel == ReliabilityPolicy.RELIABLE else "best_effort")
        return out

    def subscribe(self) -> None:
        """(Re)create the image and camera_info subscriptions from this camera's qos.* values."""
        values = self.values
        setting = values["qos.reliability"]
        offered = self.offered_reliabilities() if setting == "auto" else []
        reliability = choose_reliability(setting, offered)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=values["qos.depth"],
                         reliability=_RELIABILITY[reliability], durability=DurabilityPolicy.VOLATILE)
        self.unsubscribe()
        compressed = values["input_transport"] == "compressed"
        camera = self.camera
        if compressed:
            on_image: Callable[[Any], None] = lambda msg: self.engine.submit(msg, True, camera)  # noqa: E731
        else:
            on_image = lambda msg: self.engine.submit(msg, False, camera)  # noqa: E731
        self._image_sub = self.node.create_subscription(
            CompressedImage if compressed else Image, self.image_topic, on_image, qos,
            callback_group=self._group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos))
        self._info_sub = self.node.create_subscription(
            CameraInfo, f"{self._prefix}camera_info", lambda msg: self.engine.set_camera_info(msg, camera), qos,
            callback_group=self._group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos))
        self.subscribed_with = (setting, reliability, values["qos.depth"])
        if self.reliability and reliability != self.reliability:
            self.node.get_logger().info(
                f"input QoS of {self.image_topic} now {reliability} (qos.reliability={setting}, offered: "
                f"{', '.join(offered) or 'no publisher'}).")
        self.reliability = reliability

    def check_auto_qos(self) -> None:
        """Re-match ``qos.reliability: auto`` when the publishers on the input topic changed."""
        setting, reliability, _ = self.subscribed_with
        if self.subscribed and setting == "auto" and \
                choose_reliability("auto", self.offered_reliabilities()) != reliability:
            self.subscribe()

    def unsubscribe(self) -> None:
        for sub in (self._image_sub, self._info_sub):
            if sub is not None:
                self.node.destroy_subscription(sub)
        self._image_sub = self._info_sub = None

    def destroy(self) -> None:
        """Subscriptions and publishers gone (the lifecycle node's deactivate)."""
        self.unsubscribe()
        for pub in self.publishers.values():
            self.node.destroy_publisher(pub)
        self.publishers = {}

    def input_facts(self) -> dict[str, str]:
        """The input's topic and QoS for diagnostics."""
        setting, reliability, depth = self.subscribed_with
        return {"input topic": self.image_topic,
                "input QoS": f"{reliability} depth {depth} (qos.reliability={setting})"}

    def _on_incompatible_qos(self, event: Any) -> None:
        policy = getattr(event.last_policy_kind, "name", str(event.last_policy_kind))
        setting, reliability, _ = self.subscribed_with
        self.engine.stats.count("qos_incompatible")
        self._warn(incompatible_qos_hint(self.image_topic, policy, setting, reliability))
