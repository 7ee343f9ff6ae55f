"""Launch files, their logic (seg_ros/ros/launch_support.py), parameter files, the RViz layout and the docs.

launch and launch_ros have no PyPI wheels, so the launch files run here against stand-ins of the few launch
classes they use (each checks its keyword arguments against the real signature); everything they decide is
in launch_support, tested directly, with package lookups through the real ament index where it is installed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

import pytest
import yaml

from seg_ros.config import NODE_NAME, PARAMS, load_params_file, markdown_table
from seg_ros.core.errors import ConfigError
from seg_ros.ros import launch_support as ls

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
README = (REPO / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}


def _given(**values: str):
    """A launch-argument lookup: the declared defaults of segmentation.launch.py, then ``values``."""
    args = {a.name: a.default for a in ls.SEGMENTATION_ARGUMENTS}
    args.update(values)
    return args.__getitem__


def _share(tmp_path: Path) -> Path:
    share = tmp_path / "share" / "seg_ros"
    shutil.copytree(REPO / "config", share / "config")
    return share


# -- launch arguments override the parameter file only when given ------------------------------------------


def test_overrides_hold_only_the_arguments_given():
    assert ls.parameter_overrides() == {}
    assert ls.parameter_overrides(model="", input_transport="", use_sim_time="") == {}
    assert ls.parameter_overrides(model="/m/camvid.safetensors", input_transport="compressed",
                                  use_sim_time="false") == {
        "model": "/m/camvid.safetensors", "input_transport": "compressed", "use_sim_time": False}
    assert ls.parameter_overrides(use_sim_time="true") == {"use_sim_time": True}


@pytest.mark.parametrize("kwargs, text", [
    ({"input_transport": "jpeg"}, "launch argument input_transport:=jpeg is not one of raw, compressed;"),
    ({"use_sim_time": "yes"}, "launch argument use_sim_time:=yes is not one of true, false;"),
])
def test_override_values_are_validated(kwargs, text):
    with pytest.raises(ConfigError) as e:
        ls.parameter_overrides(**kwargs)
    assert str(e.value).startswith(text) and str(e.value).endswith("keep the parameter file's value.")


def test_launch_choices_and_names_match_the_node_schema():
    by_name = {a.name: a for a in ls.SEGMENTATION_ARGUMENTS}
    for name in ("model", "input_transport", "use_sim_time", "params_file"):
        assert by_name[name].default == ls.NOT_GIVEN, name
    assert by_name["input_transport"].choices == ("", "raw", "compressed")
    assert by_name["use_sim_time"].declare_kwargs() == {
        "default_value": "", "choices": ["", "true", "false"], "description": by_name["use_sim_time"].description}


def test_parameter_file_values_survive_when_no_argument_is_given(tmp_path):
    share = _share(tmp_path)
    user = tmp_path / "front.yaml"
    user.write_text("/**:\n  ros__parameters:\n    input_transport: compressed\n    use_sim_time: true\n")
    plan = ls.plan_node(_given(params_file=str(user)), str(share), package_exists=lambda name: False)
    assert plan.node["parameters"] == [str(user)]  # nothing after the file: its values stand
    assert plan.messages == [f"segmentation_node: parameters from {user}"]
    plan = ls.plan_node(_given(params_file=str(user), input_transport="raw", model="m.onnx"), str(share),
                        package_exists=lambda name: False)
    assert plan.node["parameters"] == [str(user), {"model": "m.onnx", "input_transport": "raw"}]
    assert plan.messages == [f"segmentation_node: parameters from {user}, then model=m.onnx, input_transport=raw"]
    # Replay forces the bag's clock over whatever the file says.
    plan = ls.plan_node(_given(), str(share), use_sim_time="true", package_exists=lambda name: False)
    assert plan.node["parameters"] == [str(share / "config" / "default.yaml"), {"use_sim_time": True}]


def test_params_file_must_exist(tmp_path):
    assert ls.params_file_path("", "/opt/share/seg_ros") == "/opt/share/seg_ros/config/default.yaml"
    with pytest.raises(ConfigError, match=r"^params_file /nope/seg\.yaml is not a readable file; give the path"):
        ls.params_file_path("/nope/seg.yaml", "/opt/share/seg_ros")
    with pytest.raises(ConfigError, match="is not a readable file"):
        ls.params_file_path(str(tmp_path), "/opt/share/seg_ros")  # a folder


def test_node_action_arguments(tmp_path):
    kw = ls.plan_node(_given(image="/front/image_raw", camera_info="/front/camera_info", namespace="front"),
                      str(_share(tmp_path)), package_exists=lambda name: False).node
    assert kw["package"] == "seg_ros" and kw["executable"] == "segmentation_node" and kw["name"] == NODE_NAME
    assert kw["namespace"] == "front"
    assert kw["remappings"] == [("image", "/front/image_raw"), ("camera_info", "/front/camera_info")]
    assert kw["additional_env"] == {"SEG_ROS_EXIT_WITH_PARENT": "1"}  # the node dies with the launch
    assert kw["output"] == "screen" and kw["emulate_tty"] is True


# -- RViz only where it is installed ------------------------------------------------------------------------


def test_rviz_starts_only_when_asked_and_installed(tmp_path):
    seen = []

    def exists(name):
        seen.append(name)
        return name == "rviz2"

    assert ls.rviz_decision("false", exists) == (False, None) and seen == []  # not even looked up
    assert ls.rviz_decision("true", exists) == (True, None) and seen == ["rviz2"]
    start, line = ls.rviz_decision("true", lambda name: False)
    assert not start and line == ("rviz:=true but rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2); "
                                  "going on without RViz.")
    share = _share(tmp_path)
    plan = ls.plan_node(_given(rviz="true"), str(share), package_exists=lambda name: False)
    assert plan.rviz is None and plan.messages[-1] == line and plan.node["executable"] == "segmentation_node"
    plan = ls.plan_node(_given(rviz="true", use_sim_time="true"), str(share), package_exists=exists,
                        rviz_dir=str(tmp_path))
    assert plan.rviz["package"] == "rviz2" and plan.rviz["parameters"] == [{"use_sim_time": True}]
    config = Path(plan.rviz["arguments"][1])
    assert plan.rviz["arguments"][0] == "-d" and config.parent == tmp_path and config.suffix == ".rviz"


def test_rviz_config_is_moved_to_the_launch_topics(tmp_path):
    path = ls.rviz_config_for(str(_share(tmp_path)), "/front/image_raw", "robot1", str(tmp_path))
    doc = yaml.safe_load(Path(path).read_text())
    topics = {d["Name"]: d["Topic"]["Value"] for d in doc["Visualization Manager"]["Displays"]}
    assert topics == {"Input": "/front/image_raw", "Overlay": "/robot1/segmentation_node/overlay",
                      "Colour": "/robot1/segmentation_node/color"}


@pytest.fixture
def ament_prefix(tmp_path, monkeypatch):
    """A real ament prefix holding seg_ros's share folder; ``add(name)`` registers another package."""
    pytest.importorskip("ament_index_python")
    prefix = tmp_path / "prefix"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    shutil.copytree(REPO / "config", prefix / "share" / "seg_ros" / "config")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))

    def add(name):
        (index / name).touch()

    add("seg_ros")
    return types.SimpleNamespace(prefix=prefix, add=add)


def test_package_lookup_reads_the_ament_index(ament_prefix):
    assert ls.package_installed("seg_ros") and not ls.package_installed("rviz2")
    ament_prefix.add("rviz2")
    assert ls.package_installed("rviz2") and ls.rviz_decision("true") == (True, None)


# -- ready line, playback, exits ----------------------------------------------------------------------------

READY_LINE = ("[INFO] [1733390000.123456789] [front.segmentation_node]: segmentation_node ready: segmenting "
              "/camera/image_raw (raw, QoS best_effort depth 1) with liteseg on cpu; outputs under /front/\n")


def test_ready_line_matching():
    assert ls.is_ready_line(READY_LINE) and ls.is_ready_line(READY_LINE.encode())
    assert ls.is_ready_line(f"\x1b[32m{READY_LINE.strip()}\x1b[0m\n")  # colourised console output
    for other in ("[INFO] [segmentation_node]: loading model liteseg_mobilenetv2_synthetic\n",
                  "[ERROR] [segmentation_node]: segmentation_node failed: no model\n", "segmentation_node ready\n", ""):
        assert not ls.is_ready_line(other), other


def test_ready_watcher_fires_once_across_chunks_and_streams():
    w = ls.ReadyWatcher()
    assert not w.feed(b"[INFO] [segmentation_node]: loading model\n[INFO] [segmentation_node]: segmentation_no")
    assert not w.feed(b"ready soon\n", "stdout")  # another stream's text does not complete stderr's marker
    assert w.feed(b"de ready: segmenting /camera/image_raw\n") and w.ready
    assert not w.feed(READY_LINE.encode()) and not w.feed(READY_LINE, "stdout")  # never twice
    w = ls.ReadyWatcher()
    for ch in READY_LINE:  # one character per chunk
        fired = w.feed(ch.encode(), "stdout")
        if fired:
            break
    assert fired and w.ready and w.buffered_chars == 0
    w = ls.ReadyWatcher()
    w.feed(b"x" * 1_000_000)
    assert w.buffered_chars == len(ls.READY_MARKER) - 1  # bounded, whatever the node prints


def test_exit_reasons_and_ready_message():
    assert ls.exit_reason(False, 2) == ("segmentation_node exited (exit status 2) before it was ready, so playback "
                                        "was not started; see its log above.")
    assert ls.exit_reason(True, -11) == "segmentation_node exited (exit status -11); stopping playback."
    assert ls.player_exit_reason(0) is None
    assert ls.player_exit_reason(1) == "ros2 bag play failed (exit status 1); see its log above."
    assert ls.ready_message("0") == "node ready, starting playback"
    assert ls.ready_message("2.5") == "node ready, starting playback in 2.5 s"


def test_bag_play_command():
    assert ls.bag_play_command("/bags/drive", "1.0", "0.0", "false", "0", "") == [
        "ros2", "bag", "play", "/bags/drive", "--clock", "100", "--rate", "1.0", "--start-offset", "0.0"]
    full = ls.bag_play_command("/bags/d.mcap", "0.5", "12.5", "true", "3.0",
                               "/a:=/camera/image_raw /b:=/camera/camera_info")
    assert full[:4] == ["ros2", "bag", "play", "/bags/d.mcap"] and "--loop" in full
    assert full[full.index("--delay") + 1] == "3.0"
    assert full[-3:] == ["--remap", "/a:=/camera/image_raw", "/b:=/camera/camera_info"]  # nargs='+' stays last


@pytest.mark.parametrize("field, value, text", [
    ("rate", "0", "launch argument rate:=0 must be a number more than 0."),
    ("rate", "fast", "launch argument rate:=fast must be a number more than 0."),
    ("start_offset", "-1", "launch argument start_offset:=-1 must be a number at least 0."),
    ("delay", "nan", "launch argument delay:=nan must be a number at least 0."),
    ("loop", "yes", "launch argument loop:=yes is not one of true, false;"),
])
def test_bag_play_arguments_are_validated(field, value, text):
    args = {"bag": "/b", "rate": "1.0", "start_offset": "0", "loop": "false", "delay": "0", "remap": ""}
    args[field] = value
    with pytest.raises(ConfigError) as e:
        ls.bag_play_command(**args)
    assert str(e.value).startswith(text)


def test_replay_checks_the_bag_and_the_player_packages(tmp_path):
    sqlite = tmp_path / "drive"
    sqlite.mkdir()
    (sqlite / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: sqlite3\n")
    mcap_dir = tmp_path / "drive_mcap"
    mcap_dir.mkdir()
    (mcap_dir / "drive_mcap_0.mcap").write_bytes(b"\x89MCAP0\r\n")
    mcap_file = mcap_dir / "drive_mcap_0.mcap"
    assert ls.bag_storage(str(sqlite)) == "sqlite3"
    assert ls.bag_storage(str(mcap_dir)) == "mcap" and ls.bag_storage(str(mcap_file)) == "mcap"
    with pytest.raises(ConfigError, match=r"^bag /nope/drive does not exist; give a rosbag2 folder or its"):
        ls.bag_storage("/nope/drive")
    ls.check_replay_packages(str(sqlite), lambda name: name == "ros2bag", which=lambda cmd: "/opt/ros/bin/ros2")
    with pytest.raises(ConfigError, match=r"^the ros2 command is not on PATH, so the bag cannot be played; source"):
        ls.check_replay_packages(str(sqlite), lambda name: True, which=lambda cmd: None)
    with pytest.raises(ConfigError) as e:
        ls.check_replay_packages(str(mcap_file), lambda name: name == "ros2bag")
    assert str(e.value) == (f"rosbag2_storage_mcap is not installed, so {mcap_file} cannot be played; "
                            f"apt install ros-$ROS_DISTRO-rosbag2-storage-mcap.")
    with pytest.raises(ConfigError, match="^ros2bag is not installed"):
        ls.check_replay_packages(str(sqlite), lambda name: False)


# -- the launch files, run against stand-ins of launch's classes --------------------------------------------

_SIGNATURES = {
    "launch": {"LaunchDescription": "initial_entities=None"},
    "launch.actions": {
        "DeclareLaunchArgument": "name, *, default_value=None, description=None, choices=None",
        "OpaqueFunction": "*, function, args=None, kwargs=None",
        "LogInfo": "*, msg",
        "RegisterEventHandler": "event_handler",
        "Shutdown": "*, reason='reason not given'",
        "ExecuteProcess": "*, cmd, name=None, cwd=None, env=None, additional_env=None, shell=False, "
                          "emulate_tty=False, output='log', sigterm_timeout=None, sigkill_timeout=None",
    },
    "launch.event_handlers": {
        "OnProcessIO": "*, target_action=None, on_stdin=None, on_stdout=None, on_stderr=None",
        "OnProcessExit": "*, target_action=None, on_exit",
    },
    "launch.substitutions": {"LaunchConfiguration": "variable_name, *, default=None"},
    "launch_ros.actions": {
        "Node": "*, executable, package=None, name=None, namespace=None, exec_name=None, parameters=None, "
                "remappings=None, ros_arguments=None, arguments=None, cwd=None, env=None, additional_env=None, "
                "emulate_tty=False, output='log', sigterm_timeout=None, sigkill_timeout=None",
        # name and namespace are required; the rest is Node's
        "LifecycleNode": "*, name, namespace, executable, package=None, exec_name=None, parameters=None, "
                         "remappings=None, ros_arguments=None, arguments=None, cwd=None, env=None, "
                         "additional_env=None, emulate_tty=False, output='log', sigterm_timeout=None, "
                         "sigkill_timeout=None",
    },
}


def _stand_in(name: str, params: str) -> type:
    """A class recording its arguments, refusing any the real launch class does not take."""
    signature = inspect.signature(eval(f"lambda {params}: None"))  # noqa: S307 - literal text above

    def __init__(self, *args, **kwargs):
        self.kw = dict(signature.bind(*args, **kwargs).arguments)

    def perform(self, context):  # LaunchConfiguration
        return context.configs[self.kw["variable_name"]]

    return type(name, (), {"__init__": __init__, "perform": perform, "__repr__": lambda self: f"{name}({self.kw})"})


@pytest.fixture
def launch_file(ament_prefix, monkeypatch, tmp_path):
    """``run(file, **given)``: the actions a launch file's OpaqueFunction returns for the arguments given."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # RViz layouts
    bin_dir = tmp_path / "bin"  # the player's ros2 command
    bin_dir.mkdir()
    (bin_dir / "ros2").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "ros2").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    for module, classes in _SIGNATURES.items():
        fake = types.ModuleType(module)
        for cls, params in classes.items():
            setattr(fake, cls, _stand_in(cls, params))
        monkeypatch.setitem(sys.modules, module, fake)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))

    def run(name: str, **given: str):
        spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        entities = mod.generate_launch_description().kw["initial_entities"]
        declared = {e.kw["name"]: e.kw for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
        configs = {k: v.get("default_value") for k, v in declared.items()}
        configs.update(given)
        assert None not in configs.values(), "a required argument was not given"
        for name, kw in declared.items():  # what DeclareLaunchArgument refuses (Humble to Kilted), before any setup
            choices = kw.get("choices")
            assert choices is None or (choices and configs[name] in choices and kw.get("default_value") in
                                       (None, *choices)), (name, kw, configs[name])
        (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
        context = types.SimpleNamespace(configs=configs, is_shutdown=False)
        return opaque.kw["function"](context), declared, context

    return run


def _of(actions, name):
    return [a for a in actions if type(a).__name__ == name]


def test_segmentation_launch_without_rviz2_starts_the_node_and_says_so(launch_file, ament_prefix):
    actions, declared, _ = launch_file("segmentation.launch.py", rviz="true", input_transport="compressed")
    assert set(declared) == {a.name for a in ls.SEGMENTATION_ARGUMENTS}
    (node,) = _of(actions, "Node")
    assert node.kw["parameters"] == [str(ament_prefix.prefix / "share/seg_ros/config/default.yaml"),
                                     {"input_transport": "compressed"}]
    assert node.kw["additional_env"] == {"SEG_ROS_EXIT_WITH_PARENT": "1"}
    logs = [a.kw["msg"] for a in _of(actions, "LogInfo")]
    assert logs[-1].startswith("rviz:=true but rviz2 is not installed")
    ament_prefix.add("rviz2")
    actions, _, _ = launch_file("segmentation.launch.py", rviz="true")
    assert [n.kw["package"] for n in _of(actions, "Node")] == ["rviz2", "seg_ros"]  # the node last


def test_segmentation_launch_starts_the_lifecycle_node_on_request(launch_file):
    actions, _, _ = launch_file("segmentation.launch.py", lifecycle="true", namespace="cam")
    assert _of(actions, "Node") == []
    (node,) = _of(actions, "LifecycleNode")
    assert node.kw["executable"] == "segmentation_lifecycle_node" and node.kw["namespace"] == "cam"
    assert any("ros2 lifecycle set" in a.kw["msg"] for a in _of(actions, "LogInfo"))
    with pytest.raises(ConfigError, match="launch argument lifecycle:=yes is not one of true, false"):
        ls.plan_node(_given(lifecycle="yes"), "/opt/share/seg_ros", package_exists=lambda name: False)


def test_segmentation_launch_serves_several_cameras_from_one_node(launch_file):
    actions, _, _ = launch_file("segmentation.launch.py", cameras="front, rear",
                                cameras_image="/sensors/{camera}/image_rect")
    (node,) = _of(actions, "Node")
    assert node.kw["parameters"][1] == {"cameras": ["front", "rear"]}
    assert node.kw["remappings"] == [("front/image", "/sensors/front/image_rect"),
                                     ("front/camera_info", "/front/camera_info"),
                                     ("rear/image", "/sensors/rear/image_rect"),
                                     ("rear/camera_info", "/rear/camera_info")]
    with pytest.raises(ConfigError, match="names a camera twice"):
        launch_file("segmentation.launch.py", cameras="front,front")
    with pytest.raises(ConfigError, match="camera name '2nd' is not valid"):
        launch_file("segmentation.launch.py", cameras="front,2nd")
    with pytest.raises(ConfigError, match=r"cameras_image:=/cam/image has no \{camera\}: every camera would read"):
        launch_file("segmentation.launch.py", cameras="front,rear", cameras_image="/cam/image")


def test_replay_launch_serves_the_cameras_of_a_multi_camera_bag(launch_file, ament_prefix, tmp_path):
    bag = tmp_path / "two_cams"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  storage_identifier: sqlite3\n")
    ament_prefix.add("ros2bag")
    actions, _, _ = launch_file("rosbag_replay.launch.py", bag=str(bag), cameras="front,rear")
    (node,) = _of(actions, "Node")
    assert node.kw["executable"] == "segmentation_node"
    assert node.kw["parameters"][1] == {"use_sim_time": True, "cameras": ["front", "rear"]}
    assert ("rear/image", "/rear/image_raw") in node.kw["remappings"]


def test_segmentation_launch_fails_before_starting_anything(launch_file, tmp_path):
    with pytest.raises(ConfigError, match="is not a readable file"):
        launch_file("segmentation.launch.py", params_file=str(tmp_path / "missing.yaml"))


def test_replay_launch_plays_once_the_node_is_ready_and_ends_with_it(launch_file, ament_prefix, tmp_path):
    bag = tmp_path / "drive"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  storage_identifier: sqlite3\n")
    with pytest.raises(ConfigError, match="^ros2bag is not installed"):
        launch_file("rosbag_replay.launch.py", bag=str(bag))
    ament_prefix.add("ros2bag")
    with pytest.raises(ConfigError, match="^bag /nope does not exist"):
        launch_file("rosbag_replay.launch.py", bag="/nope")
    actions, declared, context = launch_file("rosbag_replay.launch.py", bag=str(bag), rviz="true", delay="1.5")
    assert declared["rviz"]["default_value"] == "false" and "use_sim_time" not in declared
    assert "default_value" not in declared["bag"]  # required
    names = [type(a).__name__ for a in actions]
    assert names == ["LogInfo", "LogInfo", "RegisterEventHandler", "RegisterEventHandler", "RegisterEventHandler",
                     "Node"]  # handlers before the node; no RViz (not installed), said in the second line
    (node,) = _of(actions, "Node")
    assert node.kw["parameters"][-1] == {"use_sim_time": True}
    io, node_exit, player_exit = (a.kw["event_handler"] for a in _of(actions, "RegisterEventHandler"))
    assert io.kw["target_action"] is node and node_exit.kw["target_action"] is node
    player = player_exit.kw["target_action"]
    assert player.kw["cmd"] == ["ros2", "bag", "play", str(bag), "--clock", "100", "--rate", "1.0",
                                "--start-offset", "0.0", "--delay", "1.5"]
    on_stdout, on_stderr = io.kw["on_stdout"], io.kw["on_stderr"]
    event = types.SimpleNamespace
    assert on_stderr(event(text=b"[INFO] [segmentation_node]: loading model\n")) is None
    started = on_stderr(event(text=READY_LINE.encode()))
    assert [type(a).__name__ for a in started] == ["LogInfo", "ExecuteProcess"] and started[1] is player
    assert started[0].kw["msg"] == "node ready, starting playback in 1.5 s"
    assert on_stderr(event(text=READY_LINE.encode())) is None and on_stdout(event(text=READY_LINE)) is None
    (shutdown,) = node_exit.kw["on_exit"](event(returncode=1), context)
    assert shutdown.kw["reason"] == "segmentation_node exited (exit status 1); stopping playback."
    assert player_exit.kw["on_exit"](event(returncode=0), context) is None  # the bag ended: the node stays
    assert player_exit.kw["on_exit"](event(returncode=1), context)[0].kw["reason"].startswith("ros2 bag play failed")
    context.is_shutdown = True  # Ctrl-C: no second shutdown
    assert node_exit.kw["on_exit"](event(returncode=-2), context) is None
    ament_prefix.add("rviz2")
    actions, _, _ = launch_file("rosbag_replay.launch.py", bag=str(bag), rviz="true")
    assert [type(a).__name__ for a in actions][-2:] == ["Node", "Node"] and len(_of(actions, "LogInfo")) == 1
    rviz, node = _of(actions, "Node")
    assert rviz.kw["package"] == "rviz2" and rviz.kw["parameters"] == [{"use_sim_time": True}]
    assert node.kw["package"] == "seg_ros"  # started last, after RViz


def test_replay_launch_ends_when_the_node_dies_before_it_is_ready(launch_file, ament_prefix, tmp_path):
    ament_prefix.add("ros2bag")
    bag = tmp_path / "d.db3"
    bag.write_bytes(b"SQLite format 3\x00")
    actions, _, context = launch_file("rosbag_replay.launch.py", bag=str(bag))
    io, node_exit, _ = (a.kw["event_handler"] for a in _of(actions, "RegisterEventHandler"))
    io.kw["on_stderr"](types.SimpleNamespace(text=b"[ERROR] [segmentation_node]: model file is corrupt\n"))
    (shutdown,) = node_exit.kw["on_exit"](types.SimpleNamespace(returncode=2), context)
    assert type(shutdown).__name__ == "Shutdown" and "before it was ready" in shutdown.kw["reason"]


# -- the real node: its parameter file layering and ready line, as the launch files start it ---------------


@pytest.mark.ros
@pytest.mark.slow
def test_real_node_keeps_the_file_transport_and_announces_ready(tmp_path):
    pytest.importorskip("rclpy")
    from ros_harness import claim_domain_id, ros_env

    user = tmp_path / "front.yaml"
    user.write_text("/**:\n  ros__parameters:\n    input_transport: compressed\n    use_sim_time: true\n"
                    "    resolution: '64x96'\n")
    plan = ls.plan_node(_given(params_file=str(user), model="liteseg_mobilenetv2_synthetic"),
                        str(_share(tmp_path)), package_exists=lambda name: False)
    args = ["--ros-args", "-r", f"__node:={plan.node['name']}"]
    for i, p in enumerate(plan.node["parameters"]):  # as launch_ros passes them: files in order
        if isinstance(p, dict):
            path = tmp_path / f"overrides_{i}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": p}}))
            p = str(path)
        args += ["--params-file", p]
    domain, lock = claim_domain_id()
    env = {**ros_env(domain, tmp_path), **plan.node["additional_env"]}
    proc = subprocess.Popen([sys.executable, "-m", "seg_ros.ros.node", *args], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher, seen = ls.ReadyWatcher(), b""
    guard = threading.Timer(120, proc.kill)  # a hung node ends the read below instead of the test run
    guard.start()
    try:
        while not watcher.ready:
            chunk = proc.stderr.read1(64)
            assert chunk, f"node exited before it was ready: {seen.decode(errors='replace')}"
            seen += chunk
            watcher.feed(chunk)
        seen += proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
        guard.cancel()
        lock.close()
    (line,) = [ln for ln in seen.decode().splitlines() if ls.READY_MARKER in ln]
    assert "(compressed, " in line  # the file's value: no launch argument overrode it
    assert "/segmentation_node/" in line
    assert proc.returncode == 0, rest.decode(errors="replace")


# -- static checks: declarations, installed files, docs -----------------------------------------------------


def _arguments_used(launch_name: str, text: str) -> set[str]:
    """``name:=`` arguments of every ``ros2 launch seg_ros <launch_name>`` command in a Markdown ``text``."""
    text = text.replace("\\\n", " ")
    used = set()
    for line in text.splitlines():
        if f"ros2 launch seg_ros {launch_name}" in line:
            used |= set(re.findall(r"\s(\w+):=", line.split(launch_name, 1)[1]))
    return used


@pytest.mark.parametrize("name, arguments", [("segmentation.launch.py", ls.SEGMENTATION_ARGUMENTS),
                                             ("rosbag_replay.launch.py", ls.REPLAY_ARGUMENTS)])
def test_launch_files_declare_what_the_docs_use(name, arguments):
    tree = ast.parse((LAUNCH / name).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"LaunchDescription", "DeclareLaunchArgument", "OpaqueFunction"} <= imported
    assert ("SEGMENTATION_ARGUMENTS" if name.startswith("seg") else "REPLAY_ARGUMENTS") in imported
    declared = {a.name: a for a in arguments}
    assert _arguments_used(name, README), f"the README shows no {name} command"
    for page, text in DOCS.items():
        used = _arguments_used(name, text)
        assert used <= set(declared), (page, used - set(declared))
    assert declared["rviz"].default == "false"
    for a in arguments:
        assert a.description.endswith(".") and (a.choices is None or a.default in a.choices), a.name
    for imp in (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)):
        assert imp.module.split(".")[0] in {"launch", "launch_ros", "ament_index_python", "seg_ros"}
    support = ast.parse((REPO / "seg_ros/ros/launch_support.py").read_text())
    modules = {a.name for n in ast.walk(support) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(support) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] in {"rclpy", "launch", "launch_ros"}}


def test_console_script_and_installed_files():
    tree = ast.parse((REPO / "setup.py").read_text())
    (setup,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"]
    eps = ast.literal_eval(next(k.value for k in setup.keywords if k.arg == "entry_points"))
    scripts = dict(re.match(r"\s*([\w-]+)\s*=\s*(.+?)\s*$", s).groups() for s in eps["console_scripts"])
    module, func = scripts[ls.EXECUTABLE].split(":")
    assert (module, func) == ("seg_ros.ros.node", "main")
    assert callable(getattr(importlib.import_module(module), func))
    setup_py = (REPO / "setup.py").read_text()
    assert 'glob("launch/*.launch.py")' in setup_py
    assert 'glob("config/*.yaml") + glob("config/*.rviz")' in setup_py
    assert (REPO / "config" / ls.DEFAULT_PARAMS).is_file() and (REPO / "config" / ls.RVIZ_CONFIG).is_file()


def test_rviz_layout_shows_input_overlay_and_colour():
    doc = yaml.safe_load((REPO / "config" / "seg_ros.rviz").read_text())
    displays = doc["Visualization Manager"]["Displays"]
    assert all(d["Class"] == "rviz_default_plugins/Image" and d["Enabled"] for d in displays)
    assert {d["Name"]: d["Topic"]["Value"] for d in displays} == {
        "Input": "/camera/image_raw", "Overlay": "/segmentation_node/overlay", "Colour": "/segmentation_node/color"}
    # Input matches sensor-data publishers; our outputs are reliable (compatible with either).
    assert displays[0]["Topic"]["Reliability Policy"] == "Best Effort"


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_parameter_files_validate(path):
    values = load_params_file(path)
    assert values["model"]
    if path.name == "default.yaml":
        raw = yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
        flat = {}
        for k, v in raw.items():
            if isinstance(v, dict):
                flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                flat[k] = v
        assert set(flat) == {p.name for p in PARAMS}, "default.yaml lists every parameter"
        assert values["model"] == "liteseg_mobilenetv2_synthetic" and values["resolution"] == "360x640"


def test_parameter_tables_are_generated_from_the_schema():
    node_doc = DOCS["node.md"]
    assert markdown_table() in node_doc, "regenerate the table of docs/node.md with: python -m seg_ros.config"
    rows = [ln for ln in node_doc.splitlines() if ln.startswith("| `")]
    documented = {re.match(r"\| `([^`]+)`", ln).group(1) for ln in rows}
    assert {p.name for p in PARAMS} <= documented
    # The README's table of the most used parameters is a selection of the generated rows, word for word.
    generated = set(markdown_table().splitlines())
    names = {p.name for p in PARAMS}
    readme_rows = [ln for ln in README.splitlines() if (m := re.match(r"\| `([^`]+)` \|", ln)) and m[1] in names]
    assert len(readme_rows) >= 5 and not [ln for ln in readme_rows if ln not in generated]
