"""Replay a rosbag2 recording through segmentation_node on the bag's clock.

    ros2 launch seg_ros rosbag_replay.launch.py bag:=/data/drive_0001 image:=/camera/image_raw rviz:=true
    ros2 launch seg_ros rosbag_replay.launch.py bag:=/data/drive.mcap rate:=0.5 loop:=true start_offset:=30 \
        remap:="/front/image_raw:=/camera/image_raw /front/camera_info:=/camera/camera_info"

Runs `ros2 bag play <bag> --clock 100 --rate <rate> --start-offset <s> [--loop] [--delay <s>]
[--remap a:=b ...]` and the node with use_sim_time:=true, so every output carries the recorded stamps.
Arguments: bag (required), rate, loop, start_offset, delay (seconds before playback, to let the model
load), remap (space-separated old:=new topic remaps applied by the player), image, camera_info,
params_file, model, input_transport, namespace, rviz.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = "seg_ros"
SEGMENTATION_LAUNCH = "segmentation.launch.py"
CLOCK_HZ = "100"


def bag_play_command(bag, rate, start_offset, loop, delay, remap):
    """The `ros2 bag play` command line (options valid on Humble, Jazzy and later)."""
    cmd = ["ros2", "bag", "play", bag, "--clock", CLOCK_HZ, "--rate", rate, "--start-offset", start_offset]
    if loop:
        cmd.append("--loop")
    if float(delay) > 0:  # Humble refuses --delay 0
        cmd += ["--delay", delay]
    if remap.split():
        cmd += ["--remap", *remap.split()]  # nargs='+': must stay last
    return cmd


def launch_setup(context, *args, **kwargs):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    share = get_package_share_directory(PACKAGE)
    player = ExecuteProcess(
        cmd=bag_play_command(arg("bag"), arg("rate"), arg("start_offset"), arg("loop").lower() == "true",
                             arg("delay"), arg("remap")),
        output="screen",
    )
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", SEGMENTATION_LAUNCH)),
        launch_arguments={
            "image": arg("image"),
            "camera_info": arg("camera_info"),
            "params_file": arg("params_file"),
            "namespace": arg("namespace"),
            "model": arg("model"),
            "input_transport": arg("input_transport"),
            "use_sim_time": "true",
            "rviz": arg("rviz"),
        }.items(),
    )
    return [node, player]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder or file to play (sqlite3 or mcap)."),
        DeclareLaunchArgument("rate", default_value="1.0", description="Playback speed factor."),
        DeclareLaunchArgument("loop", default_value="false", choices=["true", "false"],
                              description="Start over at the end of the bag."),
        DeclareLaunchArgument("start_offset", default_value="0.0", description="Seconds into the bag to start at."),
        DeclareLaunchArgument("delay", default_value="3.0",
                              description="Seconds to wait before playing, so the model has loaded."),
        DeclareLaunchArgument("remap", default_value="",
                              description="Space-separated old:=new topic remaps applied by ros2 bag play."),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="Image topic (after remap)."),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="camera_info topic (after remap)."),
        DeclareLaunchArgument("params_file", default_value="",
                              description="ROS 2 parameter file; empty = share/seg_ros/config/default.yaml."),
        DeclareLaunchArgument("model", default_value="", description="Overrides the parameter file's model if set."),
        DeclareLaunchArgument("input_transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw or compressed (<image>/compressed) input."),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node."),
        DeclareLaunchArgument("rviz", default_value="true", choices=["true", "false"],
                              description="Start RViz with the input, overlay and colour images."),
        OpaqueFunction(function=launch_setup),
    ])
