"""Replay a rosbag2 recording through segmentation_node on the bag's clock.

    ros2 launch seg_ros rosbag_replay.launch.py bag:=/data/drive_0001 image:=/camera/image_raw
    ros2 launch seg_ros rosbag_replay.launch.py bag:=/data/drive.mcap rate:=0.5 loop:=true start_offset:=30 \
        remap:="/front/image_raw:=/camera/image_raw /front/camera_info:=/camera/camera_info" rviz:=true
    ros2 launch seg_ros rosbag_replay.launch.py bag:=two_cams cameras:=front,rear   # /front/image_raw, /rear/...

Starts the node with use_sim_time:=true (always: the player publishes the bag's /clock, whatever the
parameter file says), waits for its ready line (model loaded, publishers and subscription up), then runs
`ros2 bag play <bag> --clock 100 --rate <rate> --start-offset <s> [--loop] [--delay <s>] [--remap a:=b ...]`.
If the node exits or the player fails, the launch ends; when the bag ends, the node stays up.
The bag, ros2bag (and rosbag2_storage_mcap for MCAP) and every argument are checked before the node
starts. Arguments (`-s` lists them): bag (required), rate, loop, start_offset, delay (extra seconds after
the node is ready, default 0), remap (space-separated old:=new topic remaps applied by the player),
image, camera_info, params_file, model, input_transport, namespace, rviz (default false; started only
when rviz2 is installed), cameras, cameras_image, cameras_camera_info (one node for several cameras, as in
segmentation.launch.py).
"""

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
)
from launch.event_handlers import OnProcessExit, OnProcessIO
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from seg_ros.ros.launch_support import (
    PACKAGE,
    REPLAY_ARGUMENTS,
    ReadyWatcher,
    bag_play_command,
    check_replay_packages,
    exit_reason,
    plan_node,
    player_exit_reason,
    ready_message,
)


def launch_setup(context, *args, **kwargs):
    """Node first, player once the node is ready; raises before anything starts if an argument is wrong."""
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    check_replay_packages(arg("bag"))
    player = ExecuteProcess(
        cmd=bag_play_command(arg("bag"), arg("rate"), arg("start_offset"), arg("loop"), arg("delay"), arg("remap")),
        name="ros2_bag_play",
        output="screen",
    )
    plan = plan_node(arg, get_package_share_directory(PACKAGE), use_sim_time="true", lifecycle="false")
    node = Node(**plan.node)
    watcher = ReadyWatcher()

    def on_output(stream):
        def handle(event):
            if watcher.feed(event.text, stream):  # true once: the player starts once
                return [LogInfo(msg=ready_message(arg("delay"))), player]
            return None
        return handle

    def on_node_exit(event, exit_context):
        if exit_context.is_shutdown:  # Ctrl-C or another shutdown already under way
            return None
        return [Shutdown(reason=exit_reason(watcher.ready, event.returncode))]

    def on_player_exit(event, exit_context):
        reason = player_exit_reason(event.returncode)
        return None if reason is None or exit_context.is_shutdown else [Shutdown(reason=reason)]

    actions = [LogInfo(msg=m) for m in plan.messages]
    actions += [
        RegisterEventHandler(OnProcessIO(target_action=node, on_stdout=on_output("stdout"),
                                         on_stderr=on_output("stderr"))),
        RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_node_exit)),
        RegisterEventHandler(OnProcessExit(target_action=player, on_exit=on_player_exit)),
    ]
    if plan.rviz is not None:  # before the node: a failure to start RViz cannot leave the node behind
        actions.append(Node(**plan.rviz))
    actions.append(node)
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(a.name, **a.declare_kwargs()) for a in REPLAY_ARGUMENTS],
        OpaqueFunction(function=launch_setup),
    ])
