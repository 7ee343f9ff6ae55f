"""Packaging: package.xml declares what the code imports and launches; colcon installs where `ros2 run` looks."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import seg_ros

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg_ros"
EXECUTABLES = ("segmentation_node", "seg-ros")

# Every third-party module that seg_ros/ and launch/ import, and where it comes from on a robot:
# a rosdep key (package.xml) or a pip distribution (requirements.txt or an extra of setup.py).
ROSDEP_KEY_OF_MODULE = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "vision_msgs": "vision_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "ament_index_python": "ament_index_python",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "PIL": "python3-pil",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "yaml": "python3-yaml",
}
PIP_DISTRIBUTION_OF_MODULE = {
    "torch": "torch",
    "safetensors": "safetensors",
    "rosbags": "rosbags",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
    "pydensecrf": "pydensecrf2",
}
# Declared for what a used package needs at run time: `ros2 bag play` of the MCAP bags the README promises.
IMPLIED_KEYS = {"ros2bag": {"rosbag2_storage_mcap"}}
# Functions whose first string argument names a ROS package that must be installed.
PACKAGE_LOOKUPS = {"get_package_share_directory", "get_package_prefix", "get_package_share_path"}


def _exec_depends() -> set[str]:
    """The <exec_depend> (and <depend>) keys of package.xml."""
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in ("exec_depend", "depend") for e in root.iter(tag)}


def _sources() -> list[Path]:
    """The package's Python files and the launch files."""
    return sorted((ROOT / PACKAGE).rglob("*.py")) + sorted((ROOT / "launch").glob("*.py"))


def _third_party_imports(tree: ast.AST) -> set[str]:
    """Top-level names of the absolute imports in ``tree`` that are neither stdlib nor seg_ros."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in (PACKAGE, "__future__")}


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments, to resolve names used where a package is named."""
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def _launched_packages(tree: ast.Module) -> set[str]:
    """ROS packages started or looked up: Node(package=...) or {"package": ...}, `ros2 <verb>` commands, share
    lookups; a package may be named by a string or by a module-level string constant."""
    constants = _string_constants(tree)

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.update(text(kw.value) for kw in node.keywords if kw.arg == "package")
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if func in PACKAGE_LOOKUPS and node.args:
                found.add(text(node.args[0]))
        elif isinstance(node, ast.Dict):
            found.update(text(v) for k, v in zip(node.keys, node.values) if k is not None and text(k) == "package")
        elif isinstance(node, ast.List) and len(node.elts) >= 2 and text(node.elts[0]) == "ros2":
            verb = text(node.elts[1])
            found.add(verb and f"ros2{verb}")  # the ros2cli verb `ros2 bag` lives in package ros2bag
    return {p for p in found if p and p != PACKAGE}


def _used() -> tuple[set[str], set[str]]:
    """(third-party modules imported, ROS packages launched or looked up) over seg_ros/ and launch/."""
    modules: set[str] = set()
    launched: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        modules |= _third_party_imports(tree)
        launched |= _launched_packages(tree)
    return modules, launched


def test_every_import_has_a_known_source():
    modules, _ = _used()
    unknown = modules - ROSDEP_KEY_OF_MODULE.keys() - PIP_DISTRIBUTION_OF_MODULE.keys()
    assert not unknown, f"imported but not mapped to a rosdep key or pip distribution here: {sorted(unknown)}"
    assert {"rclpy", "launch", "cv2", "torch"} <= modules  # the scan sees the imports at all


def test_package_xml_declares_what_is_imported_and_launched():
    modules, launched = _used()
    needed = {ROSDEP_KEY_OF_MODULE[m] for m in modules if m in ROSDEP_KEY_OF_MODULE} | launched
    needed |= {key for pkg in launched for key in IMPLIED_KEYS.get(pkg, ())}
    assert {"rviz2", "ros2bag"} <= launched  # RViz on request, `ros2 bag play` for replay
    declared = _exec_depends()
    assert not needed - declared, f"package.xml lacks <exec_depend> for {sorted(needed - declared)}"
    assert not declared - needed, f"package.xml declares {sorted(declared - needed)}, which nothing uses"


def test_pip_only_modules_are_requirements_of_the_distribution():
    modules, _ = _used()
    requires = importlib.metadata.requires(PACKAGE) or []
    names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requires}
    missing = {PIP_DISTRIBUTION_OF_MODULE[m] for m in modules if m in PIP_DISTRIBUTION_OF_MODULE} - names
    assert not missing, f"imported but not in requirements.txt or an extra of setup.py: {sorted(missing)}"
    assert "pillow" in names


def test_launch_files_import_nothing_pip_installed():
    """`ros2 launch` runs the launch files in the system interpreter (its own shebang), outside the venv
    that holds the pip-installed dependencies, so the seg_ros modules they import must not need those."""
    own = sorted({node.module for path in (ROOT / "launch").glob("*.launch.py")
                  for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE)})
    code = (f"import sys\nfor m in {own!r}: __import__(m)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(PIP_DISTRIBUTION_OF_MODULE)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{own} import pip-only modules: {result.stdout.strip()}"


def test_version_is_package_xml_version():
    version = ET.parse(ROOT / "package.xml").getroot().findtext("version").strip()
    assert seg_ros.__version__ == version
    assert importlib.metadata.version(PACKAGE) == version


def _copy_package(dst: Path) -> None:
    """What colcon needs of the source tree (no .venv, no build output)."""
    dst.mkdir(parents=True)
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "package.xml", "requirements.txt"):
        shutil.copy2(ROOT / name, dst / name)
    for name in ("resource", "launch", "config", PACKAGE):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("symlink", [False, True], ids=["install", "symlink-install"])
def test_colcon_build_installs_executables_where_ros2_run_looks(tmp_path, symlink):
    """colcon, run by this interpreter, puts both entry points in lib/seg_ros with this interpreter's shebang."""
    pytest.importorskip("colcon_ros", reason="colcon-ros is not installed (requirements-ros-test.txt)")
    _copy_package(tmp_path / "src" / PACKAGE)
    cmd = [sys.executable, "-m", "colcon", "build", "--event-handlers", "console_direct-"]
    result = subprocess.run(cmd + (["--symlink-install"] if symlink else []), cwd=tmp_path,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests_require" not in result.stderr

    install = tmp_path / "install" / PACKAGE
    assert not (install / "bin").exists()  # console scripts only under lib/<package>
    for name in EXECUTABLES:
        script = install / "lib" / PACKAGE / name
        assert script.is_file() and os.access(script, os.X_OK), script
        first, second = script.read_text().splitlines()[:2]
        # A very long interpreter path gets the `#!/bin/sh` + `exec` form instead of a plain shebang.
        assert first == f"#!{sys.executable}" or (first == "#!/bin/sh" and sys.executable in second), first
    share = install / "share" / PACKAGE
    assert (share / "package.xml").is_file()
    assert {p.name for p in (share / "launch").iterdir()} == {p.name for p in (ROOT / "launch").glob("*.launch.py")}
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()

    # The workspace's setup script makes the built package (not this checkout) the one imported.
    run = subprocess.run(
        ["sh", "-c", '. install/setup.sh && "$0" -c "import seg_ros; print(seg_ros.__file__)" '
         "&& install/seg_ros/lib/seg_ros/seg-ros --help", sys.executable],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    imported_from = Path(run.stdout.splitlines()[0]).resolve()  # --symlink-install: links back into src/
    assert tmp_path.resolve() in imported_from.parents, imported_from
    assert "usage: seg-ros" in run.stdout
