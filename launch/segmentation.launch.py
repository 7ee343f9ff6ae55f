"""Segment a live camera: segmentation_node, and RViz on request.

    ros2 launch seg_ros segmentation.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch seg_ros segmentation.launch.py image:=/front/image_raw input_transport:=compressed \
        namespace:=front model:=/data/models/camvid.safetensors params_file:=/data/seg.yaml rviz:=true
    ros2 launch seg_ros segmentation.launch.py cameras:=front,rear      # one node: /front/image_raw, /rear/...
    ros2 launch seg_ros segmentation.launch.py lifecycle:=true          # managed: configure, then activate

Arguments (`ros2 launch seg_ros segmentation.launch.py -s` lists them): image (input topic; for compressed
input the base topic, /compressed is appended as image_transport does), camera_info, params_file (default:
share/seg_ros/config/default.yaml), namespace, model, input_transport, use_sim_time, rviz, cameras
(comma-separated: one node for all; each camera reads cameras_image / cameras_camera_info, default
/{camera}/image_raw and /{camera}/camera_info), lifecycle (segmentation_lifecycle_node through launch_ros's
LifecycleNode action).
model, input_transport and use_sim_time override the parameter file only when given. rviz:=true starts
RViz only when rviz2 is installed (else one log line, and the node runs on). Everything is resolved before
the node starts, and the node exits with the launch (SEG_ROS_EXIT_WITH_PARENT=1).
"""

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from seg_ros.ros.launch_support import PACKAGE, SEGMENTATION_ARGUMENTS, plan_node


def launch_setup(context, *args, **kwargs):
    """The node (and RViz), from the launch arguments; raises before anything starts if one is wrong."""
    plan = plan_node(lambda name: LaunchConfiguration(name).perform(context), get_package_share_directory(PACKAGE))
    actions = [LogInfo(msg=m) for m in plan.messages]
    if plan.rviz is not None:  # first: a failure to start RViz cannot leave the node behind
        actions.append(Node(**plan.rviz))
    actions.append(LifecycleNode(**plan.node) if plan.lifecycle else Node(**plan.node))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(a.name, **a.declare_kwargs()) for a in SEGMENTATION_ARGUMENTS],
        OpaqueFunction(function=launch_setup),
    ])
