"""Segment a live camera: segmentation_node, and RViz on request.

    ros2 launch seg_ros segmentation.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch seg_ros segmentation.launch.py image:=/front/image_raw input_transport:=compressed \
        namespace:=front model:=/data/models/camvid.safetensors params_file:=/data/seg.yaml rviz:=true

Arguments: image (input topic; for compressed input the base topic, /compressed is appended as
image_transport does), camera_info, params_file (default: share/seg_ros/config/default.yaml),
namespace, model (overrides the params file when not empty), input_transport, use_sim_time, rviz.
"""

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "seg_ros"
EXECUTABLE = "segmentation_node"
NODE_NAME = "segmentation_node"
DEFAULT_PARAMS = "default.yaml"
RVIZ_CONFIG = "seg_ros.rviz"


def rviz_config_for(share: str, image: str, namespace: str) -> str:
    """The shipped RViz layout with its topics moved to this launch's input topic and namespace."""
    with open(os.path.join(share, "config", RVIZ_CONFIG)) as f:
        text = f.read()
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    text = text.replace("/camera/image_raw", image).replace(f"/{NODE_NAME}/", f"{ns}/{NODE_NAME}/")
    fd, path = tempfile.mkstemp(prefix="seg_ros_", suffix=".rviz")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def launch_setup(context, *args, **kwargs):
    share = get_package_share_directory(PACKAGE)
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    use_sim_time = arg("use_sim_time").lower() == "true"
    overrides = {"use_sim_time": use_sim_time, "input_transport": arg("input_transport")}
    if arg("model"):
        overrides["model"] = arg("model")
    params_file = arg("params_file") or os.path.join(share, "config", DEFAULT_PARAMS)
    actions = [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=NODE_NAME,
            namespace=arg("namespace"),
            parameters=[params_file, overrides],
            remappings=[("image", arg("image")), ("camera_info", arg("camera_info"))],
            output="screen",
            emulate_tty=True,
        )
    ]
    if arg("rviz").lower() == "true":
        actions.append(Node(
            package="rviz2",
            executable="rviz2",
            name="seg_ros_rviz",
            arguments=["-d", rviz_config_for(share, arg("image"), arg("namespace"))],
            parameters=[{"use_sim_time": use_sim_time}],
            output="screen",
        ))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="Input image topic (the base topic when input_transport is compressed)."),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="Input camera_info topic (optional: republished scaled as ~/camera_info)."),
        DeclareLaunchArgument("params_file", default_value="",
                              description="ROS 2 parameter file; empty = share/seg_ros/config/default.yaml."),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node and its outputs."),
        DeclareLaunchArgument("model", default_value="",
                              description="Model name or .safetensors path; overrides the parameter file if set."),
        DeclareLaunchArgument("input_transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw: sensor_msgs/Image; compressed: <image>/compressed (JPEG/PNG)."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock (bag replay, simulation)."),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                              description="Also start RViz with config/seg_ros.rviz (input, overlay, colour)."),
        OpaqueFunction(function=launch_setup),
    ])
