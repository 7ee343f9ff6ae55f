"""The logic of the launch files (launch/*.launch.py), as plain functions tested without launch_ros.

Pure Python: no rclpy, no launch imports, so it is importable from the launch files on a robot and from
the tests here. The launch files only wire these results into launch actions. Everything that can fail
(argument values, package lookups, files) is resolved here before the launch starts any process, so a
failed launch never leaves a node behind.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seg_ros.core.errors import ConfigError
from seg_ros.core.names import CAMERA_NAME, INPUT_TRANSPORTS, NODE_NAME

PACKAGE = "seg_ros"
EXECUTABLE = "segmentation_node"
LIFECYCLE_EXECUTABLE = "segmentation_lifecycle_node"
DEFAULT_PARAMS = "default.yaml"
RVIZ_CONFIG = "seg_ros.rviz"
RVIZ_PACKAGE = "rviz2"
BAG_PACKAGE = "ros2bag"
MCAP_PACKAGE = "rosbag2_storage_mcap"
CLOCK_HZ = "100"

NOT_GIVEN = ""
"""Default of the launch arguments that override the parameter file: empty means the user did not give it."""
BOOLEANS = ("true", "false")

READY_MARKER = "segmentation_node ready:"
"""The node logs exactly one line containing this once its publishers and input subscription exist and its
first model is loaded; the replay launch starts playback when it sees it."""
READY_MESSAGE = "node ready, starting playback"

EXIT_WITH_PARENT_ENV = "SEG_ROS_EXIT_WITH_PARENT"
"""Set to "1" on the node by the launch files: the node then exits when its parent (the launch) dies."""


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: ``default`` None means required; ``choices`` as launch validates them."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] | None = None

    def declare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``DeclareLaunchArgument(self.name, **...)``."""
        out: dict[str, Any] = {"description": self.description}
        if self.default is not None:
            out["default_value"] = self.default
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


_KEEP = "; not given = the parameter file's value"
NODE_ARGUMENTS = (
    LaunchArgument("image", "/camera/image_raw",
                   "Input image topic (the base topic when input_transport is compressed: <image>/compressed)."),
    LaunchArgument("camera_info", "/camera/camera_info",
                   "Input camera_info topic (optional: republished scaled as ~/camera_info)."),
    LaunchArgument("params_file", NOT_GIVEN, "ROS 2 parameter file; not given = share/seg_ros/config/default.yaml."),
    LaunchArgument("namespace", NOT_GIVEN, "Namespace of the node and its outputs."),
    LaunchArgument("model", NOT_GIVEN, "Model name, .safetensors or .onnx path" + _KEEP + "."),
    LaunchArgument("input_transport", NOT_GIVEN, "raw (sensor_msgs/Image) or compressed (<image>/compressed)" + _KEEP
                   + ".", (NOT_GIVEN, *INPUT_TRANSPORTS)),
    LaunchArgument("rviz", "false", "Also start RViz with config/seg_ros.rviz (input, overlay, colour) when rviz2 "
                   "is installed.", BOOLEANS),
    LaunchArgument("cameras", NOT_GIVEN, "Comma-separated camera names served by one node (the cameras parameter); "
                   "each reads cameras_image and cameras_camera_info instead of image and camera_info" + _KEEP + "."),
    LaunchArgument("cameras_image", "/{camera}/image_raw", "With cameras: each camera's input image topic, {camera} "
                   "replaced by its name (the base topic when its transport is compressed)."),
    LaunchArgument("cameras_camera_info", "/{camera}/camera_info", "With cameras: each camera's camera_info topic, "
                   "{camera} replaced by its name."),
)
"""The arguments of both launch files that configure segmentation_node and RViz."""
SEGMENTATION_ARGUMENTS = (
    *NODE_ARGUMENTS,
    LaunchArgument("use_sim_time", NOT_GIVEN, "Use /clock (simulation)" + _KEEP + ".", (NOT_GIVEN, *BOOLEANS)),
    LaunchArgument("lifecycle", "false", "Start the managed variant, segmentation_lifecycle_node: it loads the model "
                   "on configure and takes frames once active (a lifecycle manager drives it).", BOOLEANS),
)
"""segmentation.launch.py's arguments."""
REPLAY_ARGUMENTS = (
    LaunchArgument("bag", None, "rosbag2 folder or file to play (sqlite3 or mcap)."),
    LaunchArgument("rate", "1.0", "Playback speed factor (> 0)."),
    LaunchArgument("loop", "false", "Start over at the end of the bag.", BOOLEANS),
    LaunchArgument("start_offset", "0.0", "Seconds into the bag to start at."),
    LaunchArgument("delay", "0", "Extra seconds to wait after the node is ready before playing."),
    LaunchArgument("remap", NOT_GIVEN, "Space-separated old:=new topic remaps applied by ros2 bag play."),
    *NODE_ARGUMENTS,
)
"""rosbag_replay.launch.py's arguments (the node always runs on the bag's clock: no use_sim_time)."""


def camera_names(text: str) -> list[str]:
    """The ``cameras`` launch argument (``front,rear``) as names; empty for an empty argument.

    Raises:
        ConfigError: a name that is no ROS name token, or a name given twice.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if not CAMERA_NAME.fullmatch(n):
            raise ConfigError(f"launch argument cameras:={text}: camera name {n!r} is not valid; use a letter "
                              "followed by letters, digits or underscores.")
    if len(set(names)) != len(names):
        raise ConfigError(f"launch argument cameras:={text} names a camera twice.")
    return names


def parameter_overrides(*, model: str = NOT_GIVEN, input_transport: str = NOT_GIVEN,
                        use_sim_time: str = NOT_GIVEN, cameras: str = NOT_GIVEN) -> dict[str, Any]:
    """The parameters that launch arguments set over the parameter file: only the arguments the user gave.

    Args:
        model: a model name or path; empty = keep the parameter file's.
        input_transport: "raw" or "compressed"; empty = keep the parameter file's.
        use_sim_time: "true" or "false"; empty = keep the parameter file's.
        cameras: comma-separated camera names; empty = keep the parameter file's.

    Returns:
        ``{name: value}`` for the launch_ros Node's ``parameters`` list, after the file.

    Raises:
        ConfigError: a given value is not one of the choices.
    """
    out: dict[str, Any] = {}
    if model:
        out["model"] = model
    if input_transport:
        out["input_transport"] = _choice("input_transport", input_transport, INPUT_TRANSPORTS)
    if use_sim_time:
        out["use_sim_time"] = _choice("use_sim_time", use_sim_time, BOOLEANS) == "true"
    if cameras:
        out["cameras"] = camera_names(cameras)
    return out


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"launch argument {name}:={value} is not one of {', '.join(choices)}; "
                          f"give one of them or leave it out to keep the parameter file's value.")
    return value


def params_file_path(given: str, share: str) -> str:
    """The parameter file to load: ``given``, else the shipped ``<share>/config/default.yaml``.

    Raises:
        ConfigError: ``given`` is not a readable file.
    """
    if not given:
        return os.path.join(share, "config", DEFAULT_PARAMS)
    if not os.path.isfile(given) or not os.access(given, os.R_OK):
        raise ConfigError(f"params_file {given} is not a readable file; give the path of a ROS 2 parameter "
                          f"file (see config/default.yaml).")
    return given


def package_installed(name: str) -> bool:
    """Whether ROS package ``name`` is in the ament index of the sourced workspaces."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix(name)
    except PackageNotFoundError:
        return False
    return True


def rviz_decision(requested: str, package_exists: Callable[[str], bool] = package_installed
                  ) -> tuple[bool, str | None]:
    """Whether to start RViz, and the line to log when it was asked for but is not installed.

    Args:
        requested: the ``rviz`` launch argument ("true" or "false").
        package_exists: ``name -> installed?`` (the ament index on a robot).
    """
    if _choice("rviz", requested, BOOLEANS) == "false":
        return False, None
    if package_exists(RVIZ_PACKAGE):
        return True, None
    return False, ("rviz:=true but rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2); "
                   "going on without RViz.")


def rviz_config_for(share: str, image: str, namespace: str, directory: str | None = None) -> str:
    """Write the shipped RViz layout with its topics moved to this launch's input topic and namespace.

    Returns:
        The path of the new ``.rviz`` file (in ``directory``, default the system temporary folder).
    """
    with open(os.path.join(share, "config", RVIZ_CONFIG)) as f:
        text = f.read()
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    text = text.replace("/camera/image_raw", image).replace(f"/{NODE_NAME}/", f"{ns}/{NODE_NAME}/")
    fd, path = tempfile.mkstemp(prefix="seg_ros_", suffix=".rviz", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def node_kwargs(*, params_file: str, overrides: dict[str, Any], namespace: str, image: str,
                camera_info: str, cameras_image: str = "/{camera}/image_raw",
                cameras_camera_info: str = "/{camera}/camera_info", lifecycle: bool = False) -> dict[str, Any]:
    """Keyword arguments of the launch_ros ``Node`` (or, with ``lifecycle``, ``LifecycleNode``) action that starts
    segmentation_node (segmentation_lifecycle_node).

    The parameter file comes first and the overrides after it, so only the arguments the user gave win. With
    ``overrides["cameras"]``, each camera's ``<camera>/image`` and ``<camera>/camera_info`` are remapped to the
    ``cameras_*`` templates with ``{camera}`` replaced; else ``image`` and ``camera_info`` are.
    """
    cameras = overrides.get("cameras")
    if cameras and len(cameras) > 1:
        for name, template in (("cameras_image", cameras_image), ("cameras_camera_info", cameras_camera_info)):
            if "{camera}" not in template:
                raise ConfigError(f"launch argument {name}:={template} has no {{camera}}: every camera would read "
                                  "the same topic; put {camera} where the camera's name goes.")
    if cameras:
        remappings = [(f"{c}/{topic}", template.replace("{camera}", c)) for c in cameras
                      for topic, template in (("image", cameras_image), ("camera_info", cameras_camera_info))]
    else:
        remappings = [("image", image), ("camera_info", camera_info)]
    return {
        "package": PACKAGE,
        "executable": LIFECYCLE_EXECUTABLE if lifecycle else EXECUTABLE,
        "name": NODE_NAME,
        "namespace": namespace,
        "parameters": [params_file, overrides] if overrides else [params_file],
        "remappings": remappings,
        "additional_env": {EXIT_WITH_PARENT_ENV: "1"},
        "output": "screen",
        "emulate_tty": True,
    }


def rviz_kwargs(config: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the launch_ros ``Node`` action that starts RViz with ``config``.

    RViz follows the node's ``use_sim_time`` when a launch argument gave it.
    """
    params = [{"use_sim_time": overrides["use_sim_time"]}] if "use_sim_time" in overrides else []
    return {"package": RVIZ_PACKAGE, "executable": "rviz2", "name": "seg_ros_rviz", "arguments": ["-d", config],
            "parameters": params, "output": "screen"}


@dataclass
class NodePlan:
    """What a launch file starts: the node's and RViz's Node keyword arguments and the lines to log first;
    ``lifecycle``: start the node with launch_ros's ``LifecycleNode`` action."""

    node: dict[str, Any]
    rviz: dict[str, Any] | None
    messages: list[str] = field(default_factory=list)
    lifecycle: bool = False


def plan_node(arg: Callable[[str], str], share: str, *, use_sim_time: str | None = None,
              lifecycle: str | None = None,
              package_exists: Callable[[str], bool] = package_installed, rviz_dir: str | None = None) -> NodePlan:
    """Resolve the node's launch arguments into what to start; every lookup that can fail happens here.

    Args:
        arg: launch argument name -> its value ("" when not given).
        share: seg_ros's share folder (config/default.yaml, config/seg_ros.rviz).
        use_sim_time: force this value ("true" for replay); None = the ``use_sim_time`` argument.
        lifecycle: force this value ("false" for replay); None = the ``lifecycle`` argument.
        package_exists: ``name -> installed?`` (the ament index on a robot).
        rviz_dir: where to write the RViz layout (default: the system temporary folder).

    Raises:
        ConfigError: an argument value or the parameter file is invalid.
    """
    overrides = parameter_overrides(model=arg("model"), input_transport=arg("input_transport"),
                                    use_sim_time=arg("use_sim_time") if use_sim_time is None else use_sim_time,
                                    cameras=arg("cameras"))
    managed = _choice("lifecycle", arg("lifecycle") if lifecycle is None else lifecycle, BOOLEANS) == "true"
    params_file = params_file_path(arg("params_file"), share)
    start_rviz, rviz_message = rviz_decision(arg("rviz"), package_exists)
    given = ", ".join(f"{k}={v}" for k, v in overrides.items())
    messages = [f"{NODE_NAME}: parameters from {params_file}" + (f", then {given}" if given else "")]
    if rviz_message:
        messages.append(rviz_message)
    rviz = None
    if start_rviz:
        rviz = rviz_kwargs(rviz_config_for(share, arg("image"), arg("namespace"), rviz_dir), overrides)
    node = node_kwargs(params_file=params_file, overrides=overrides, namespace=arg("namespace"), image=arg("image"),
                       camera_info=arg("camera_info"), cameras_image=arg("cameras_image"),
                       cameras_camera_info=arg("cameras_camera_info"), lifecycle=managed)
    if managed:
        messages.append(f"{LIFECYCLE_EXECUTABLE}: configure and activate it with a lifecycle manager or "
                        f"`ros2 lifecycle set <node> configure`, then `... activate`")
    return NodePlan(node, rviz, messages, managed)


def _number(name: str, value: str, minimum: float, *, inclusive: bool = True) -> str:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    ok = math.isfinite(x) and (x >= minimum if inclusive else x > minimum)
    if not ok:
        bound = f"{'at least' if inclusive else 'more than'} {minimum:g}"
        raise ConfigError(f"launch argument {name}:={value} must be a number {bound}.")
    return value


def bag_play_command(bag: str, rate: str, start_offset: str, loop: str, delay: str, remap: str) -> list[str]:
    """The ``ros2 bag play`` command line (options valid on Humble, Jazzy and later).

    Args:
        bag: the bag folder or file.
        rate: playback speed factor (> 0).
        start_offset: seconds into the bag to start at (>= 0).
        loop: "true" or "false".
        delay: seconds the player waits before playing (>= 0; "0" adds no option: Humble refuses it).
        remap: space-separated ``old:=new`` topic remaps.

    Raises:
        ConfigError: a value out of range.
    """
    cmd = ["ros2", "bag", "play", bag, "--clock", CLOCK_HZ, "--rate", _number("rate", rate, 0.0, inclusive=False),
           "--start-offset", _number("start_offset", start_offset, 0.0)]
    if _choice("loop", loop, BOOLEANS) == "true":
        cmd.append("--loop")
    if float(_number("delay", delay, 0.0)) > 0:
        cmd += ["--delay", delay]
    if remap.split():
        cmd += ["--remap", *remap.split()]  # nargs='+': must stay last
    return cmd


def bag_storage(bag: str) -> str:
    """The rosbag2 storage plugin a bag needs: "mcap" or "sqlite3".

    Raises:
        ConfigError: ``bag`` does not exist.
    """
    if os.path.isfile(bag):
        return "mcap" if bag.endswith(".mcap") else "sqlite3"
    if not os.path.isdir(bag):
        raise ConfigError(f"bag {bag} does not exist; give a rosbag2 folder or its .db3 / .mcap file.")
    metadata = os.path.join(bag, "metadata.yaml")
    if os.path.isfile(metadata):
        with open(metadata, errors="replace") as f:
            found = re.search(r"^\s*storage_identifier:\s*['\"]?(\w+)", f.read(), re.MULTILINE)
        if found:
            return found.group(1)
    return "mcap" if any(name.endswith(".mcap") for name in os.listdir(bag)) else "sqlite3"


def check_replay_packages(bag: str, package_exists: Callable[[str], bool] = package_installed,
                          which: Callable[[str], str | None] = shutil.which) -> None:
    """Raise ConfigError naming the first thing that playing ``bag`` needs and that is missing.

    Args:
        bag: the bag folder or file (it must exist).
        package_exists: ``name -> installed?`` (the ament index on a robot).
        which: ``command -> its path or None`` (the player runs ``ros2``).
    """
    needed = [BAG_PACKAGE] + ([MCAP_PACKAGE] if bag_storage(bag) == "mcap" else [])
    for name in needed:
        if not package_exists(name):
            deb = name.replace("_", "-")
            raise ConfigError(f"{name} is not installed, so {bag} cannot be played; "
                              f"apt install ros-$ROS_DISTRO-{deb}.")
    if which("ros2") is None:
        raise ConfigError("the ros2 command is not on PATH, so the bag cannot be played; "
                          "source /opt/ros/$ROS_DISTRO/setup.bash first.")


def is_ready_line(text: str | bytes) -> bool:
    """Whether ``text`` (one or more log lines of the node) contains its ready line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return READY_MARKER in text


class ReadyWatcher:
    """Finds the node's ready line in its output, fed chunk by chunk as launch receives it.

    A chunk may end inside the marker, so the end of each stream's last chunk is kept (bounded by the
    marker's length). :meth:`feed` is true exactly once, for the chunk that completes the first marker.
    """

    def __init__(self) -> None:
        self.ready = False
        self._tails: dict[str, str] = {}

    @property
    def buffered_chars(self) -> int:
        """Characters kept between chunks over all streams: at most the marker's length - 1 per stream."""
        return sum(len(t) for t in self._tails.values())

    def feed(self, text: str | bytes, stream: str = "stderr") -> bool:
        """Take the next chunk of ``stream`` ("stdout" or "stderr"); true when the node just became ready."""
        if self.ready:
            return False
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        joined = self._tails.get(stream, "") + text
        if is_ready_line(joined):
            self.ready = True
            self._tails.clear()
            return True
        self._tails[stream] = joined[-(len(READY_MARKER) - 1):]
        return False


def ready_message(delay: str) -> str:
    """The log line of the replay launch when the node is ready (``delay``: the player's extra seconds)."""
    return READY_MESSAGE if float(delay) <= 0 else f"{READY_MESSAGE} in {float(delay):g} s"


def exit_reason(ready: bool, returncode: int | None) -> str:
    """Why the replay launch shuts down when segmentation_node exits (``ready``: it had logged its ready line)."""
    status = f"exit status {returncode}" if returncode is not None else "unknown exit status"
    if not ready:
        return (f"{NODE_NAME} exited ({status}) before it was ready, so playback was not started; "
                f"see its log above.")
    return f"{NODE_NAME} exited ({status}); stopping playback."


def player_exit_reason(returncode: int | None) -> str | None:
    """Why the replay launch shuts down when ``ros2 bag play`` exits; None when it finished the bag (status 0)."""
    if returncode == 0:
        return None
    return f"ros2 bag play failed (exit status {returncode}); see its log above."
