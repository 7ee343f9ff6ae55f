"""Names shared by the node, its launch files and the configuration schema.

Free of heavy imports (no torch), so that ``ros2 launch`` loads it in milliseconds.
"""

NODE_NAME = "segmentation_node"
"""The node's default name, and the section of a ROS 2 parameter file it reads besides ``/**``."""

INPUT_TRANSPORTS = ("raw", "compressed")
"""The node's ``input_transport`` choices: Image on ``image``, or CompressedImage on ``image/compressed``."""
