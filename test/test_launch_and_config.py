"""Launch files, parameter files, the RViz layout and the README table, checked statically.

launch and launch_ros have no PyPI wheels, so the launch files are parsed, not run: their arguments,
the package and executable they start (against setup.py's console scripts), the files they refer to
(against config/ and setup.py's data_files), and the ros2 bag play command line.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

from seg_ros.ros.params import PARAMS, load_params_file, markdown_table

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"


def _tree(name: str) -> ast.Module:
    path = LAUNCH / name
    return ast.parse(path.read_text(), filename=str(path))


def _calls(tree: ast.AST, func: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == func or getattr(n.func, "attr", None) == func)]


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _constants(tree: ast.AST) -> dict[str, object]:
    """Module-level NAME = constant assignments."""
    out = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = n.value.value
    return out


def _arguments(tree: ast.AST) -> dict[str, object]:
    """DeclareLaunchArgument name → default (None when required)."""
    out = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        name = ast.literal_eval(call.args[0])
        default = _kw(call, "default_value")
        out[name] = None if default is None else ast.literal_eval(default)
        choices = _kw(call, "choices")
        if choices is not None:
            assert out[name] in ast.literal_eval(choices), name
        assert _kw(call, "description") is not None, f"argument {name} has no description"
    return out


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    (setup,) = _calls(tree, "setup")
    eps = ast.literal_eval(_kw(setup, "entry_points"))
    return dict(re.match(r"\s*([\w-]+)\s*=\s*(.+?)\s*$", s).groups() for s in eps["console_scripts"])


@pytest.mark.parametrize("name", ["segmentation.launch.py", "rosbag_replay.launch.py"])
def test_launch_files_compile_and_define_generate_launch_description(name):
    tree = _tree(name)
    compile(tree, name, "exec")
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"LaunchDescription", "DeclareLaunchArgument", "LaunchConfiguration"} <= imported


def test_segmentation_launch_arguments_and_node():
    tree = _tree("segmentation.launch.py")
    args = _arguments(tree)
    assert set(args) == {"image", "camera_info", "params_file", "namespace", "model", "input_transport",
                         "use_sim_time", "rviz"}
    assert args["use_sim_time"] == "false" and args["rviz"] == "false" and args["input_transport"] == "raw"
    consts = _constants(tree)
    nodes = [c for c in _calls(tree, "Node") if isinstance(_kw(c, "package"), ast.Name)]
    seg = [c for c in nodes if _kw(c, "package").id == "PACKAGE" and _kw(c, "executable").id == "EXECUTABLE"]
    assert len(seg) == 1
    assert consts["PACKAGE"] == "seg_ros" and consts["NODE_NAME"] == "segmentation_node"
    # The executable is a console script of setup.py, installed in lib/seg_ros (setup.cfg) for ros2 run.
    scripts = _console_scripts()
    module, func = scripts[consts["EXECUTABLE"]].split(":")
    assert (module, func) == ("seg_ros.ros.node", "main")
    assert callable(getattr(importlib.import_module(module), func))
    assert "script_dir=$base/lib/seg_ros" in (REPO / "setup.cfg").read_text()
    remaps = ast.unparse(_kw(seg[0], "remappings"))
    assert "('image', arg('image'))" in remaps and "('camera_info', arg('camera_info'))" in remaps
    params = ast.unparse(_kw(seg[0], "parameters"))
    assert params == "[params_file, overrides]"  # the file, then the launch arguments' overrides
    rviz = [c for c in _calls(tree, "Node") if isinstance(_kw(c, "package"), ast.Constant)
            and _kw(c, "package").value == "rviz2"]
    assert len(rviz) == 1 and "'-d'" in ast.unparse(_kw(rviz[0], "arguments"))


def test_launch_referenced_files_exist_and_are_installed():
    setup_py = (REPO / "setup.py").read_text()
    assert 'glob("launch/*.launch.py")' in setup_py
    assert 'glob("config/*.yaml") + glob("config/*.rviz")' in setup_py
    seg = _constants(_tree("segmentation.launch.py"))
    assert (REPO / "config" / seg["DEFAULT_PARAMS"]).is_file() and (REPO / "config" / seg["RVIZ_CONFIG"]).is_file()
    replay = _constants(_tree("rosbag_replay.launch.py"))
    assert (LAUNCH / replay["SEGMENTATION_LAUNCH"]).is_file() and replay["PACKAGE"] == "seg_ros"


def _load_function(name: str, func: str):
    """A pure helper function of a launch file, compiled on its own (it uses no launch API)."""
    tree = _tree(name)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func]
    ns: dict = {}
    consts = [n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)]
    module = ast.Module(body=[*ast.parse("import os\nimport tempfile").body, *consts, fn], type_ignores=[])
    exec(compile(ast.fix_missing_locations(module), name, "exec"), ns)
    return ns[func]


def test_rosbag_replay_arguments_and_bag_play_command():
    tree = _tree("rosbag_replay.launch.py")
    args = _arguments(tree)
    assert {"bag", "rate", "loop", "start_offset", "remap", "rviz", "image", "params_file", "model"} <= set(args)
    assert args["bag"] is None  # required
    assert args["loop"] == "false" and float(args["rate"]) == 1.0 and float(args["start_offset"]) == 0.0
    cmd = _load_function("rosbag_replay.launch.py", "bag_play_command")
    assert cmd("/bags/drive", "1.0", "0.0", False, "0", "") == [
        "ros2", "bag", "play", "/bags/drive", "--clock", "100", "--rate", "1.0", "--start-offset", "0.0"]
    full = cmd("/bags/d.mcap", "0.5", "12.5", True, "3.0", "/a:=/camera/image_raw /b:=/camera/camera_info")
    assert full[:4] == ["ros2", "bag", "play", "/bags/d.mcap"] and "--loop" in full
    assert full[full.index("--delay") + 1] == "3.0"
    assert full[-3:] == ["--remap", "/a:=/camera/image_raw", "/b:=/camera/camera_info"]  # nargs='+' stays last
    # The node runs on the bag's clock.
    text = (LAUNCH / "rosbag_replay.launch.py").read_text()
    assert '"use_sim_time": "true"' in text


def test_rviz_config_is_moved_to_the_launch_topics(tmp_path):
    rviz_for = _load_function("segmentation.launch.py", "rviz_config_for")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "seg_ros.rviz").write_text((REPO / "config" / "seg_ros.rviz").read_text())
    path = rviz_for(str(tmp_path), "/front/image_raw", "robot1")
    doc = yaml.safe_load(Path(path).read_text())
    Path(path).unlink()
    topics = {d["Name"]: d["Topic"]["Value"] for d in doc["Visualization Manager"]["Displays"]}
    assert topics == {"Input": "/front/image_raw", "Overlay": "/robot1/segmentation_node/overlay",
                      "Colour": "/robot1/segmentation_node/color"}


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


def test_readme_parameter_table_is_generated_from_the_schema():
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the README table with: python -m seg_ros.ros.params"
    rows = [ln for ln in readme.splitlines() if ln.startswith("| `")]
    documented = {re.match(r"\| `([^`]+)`", ln).group(1) for ln in rows}
    assert {p.name for p in PARAMS} <= documented
