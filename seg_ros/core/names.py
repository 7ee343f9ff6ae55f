"""Names shared by the node, its launch files, the bags and the configuration schema.

Free of heavy imports (no torch), so that ``ros2 launch`` loads it in milliseconds.
"""

import re

NODE_NAME = "segmentation_node"
"""The node's default name, and the section of a ROS 2 parameter file it reads besides ``/**``."""

INPUT_TRANSPORTS = ("raw", "compressed")
"""The node's ``input_transport`` choices: Image on ``image``, or CompressedImage on ``image/compressed``."""

CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""A camera name: one ROS name token, the namespace of that camera's topics (and a parameter prefix)."""
