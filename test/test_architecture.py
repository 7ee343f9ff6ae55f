"""The package's shape: imports point one way, only ros/ talks to rclpy, the CLI stays thin.

Reads every module's imports (module level and inside functions) with ``ast``; nothing is imported.
``python test/test_architecture.py`` prints the package-level import graph.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seg_ros"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("seg_ros", "core"),
    ("synthetic", "models", "crf"),
    ("io",),
    ("runtime",),
    ("pipeline", "config"),
    ("train", "evaluate"),
    ("ros",),
    ("tools", "ros.tools"),
    ("cli",),
)
"""Bottom to top. A module may import its own layer and the layers below it, never one above."""

RCLPY_PACKAGES = {"rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "builtin_interfaces", "diagnostic_msgs",
                  "lifecycle_msgs", "launch", "launch_ros"}
"""Modules that exist only in a ROS install: imported only under seg_ros/ros/."""

CLI_MODULE_MAX_LINES = 250


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(imported module, names imported from it) for every import statement in the file, at any depth."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, tuple(a.name for a in node.names)))
    return out


def package_of(module: str) -> str:
    """The layer entry of a module: ``seg_ros.ros.tools.flood`` → ``ros.tools``, ``seg_ros.io.bags`` → ``io``."""
    parts = module.split(".")[1:]
    if not parts:
        return "seg_ros"
    if parts[:2] == ["ros", "tools"]:
        return "ros.tools"
    return parts[0]


def layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package!r} is in no layer of test_architecture.LAYERS; add it where it belongs")


def internal_edges() -> dict[str, set[str]]:
    """module → the seg_ros modules it imports (``from pkg import module`` counts as importing the module)."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for target, names in imports(path):
            if not target.startswith("seg_ros"):
                continue
            found = {f"{target}.{n}" for n in names if f"{target}.{n}" in mods}
            if target in mods and (not found or len(found) < len(names)):
                found.add(target)
            edges[m] |= {t for t in found if t != m}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        pa = package_of(a)
        out.setdefault(pa, set())
        out[pa] |= {package_of(t) for t in targets if package_of(t) != pa}
    return out


def test_no_module_imports_in_a_cycle():
    assert cycles(internal_edges()) == []


def test_no_package_imports_in_a_cycle():
    assert cycles(package_edges(internal_edges())) == []


def test_imports_point_down_the_layers():
    upward = []
    for a, targets in internal_edges().items():
        for t in targets:
            if layer_of(package_of(t)) > layer_of(package_of(a)):
                upward.append(f"{a} -> {t}")
    assert upward == []


def test_only_ros_imports_rclpy_and_ros_message_packages():
    outside = []
    for m, path in modules().items():
        if package_of(m) in ("ros", "ros.tools"):
            continue
        for target, _ in imports(path):
            if target.split(".")[0] in RCLPY_PACKAGES:
                outside.append(f"{m} imports {target}")
    assert outside == []


@pytest.mark.parametrize("tree", ["seg_ros", "test"])
def test_no_private_names_imported_across_modules(tree):
    found = []
    for path in sorted((ROOT / tree).rglob("*.py")):
        for target, names in imports(path):
            if target.startswith("seg_ros"):
                found += [f"{path.relative_to(ROOT)}: from {target} import {n}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert found == []


def test_cli_modules_are_thin():
    big = {str(p.relative_to(ROOT)): n for p in sorted((PACKAGE / "cli").glob("*.py"))
           if (n := len(p.read_text().splitlines())) > CLI_MODULE_MAX_LINES}
    assert big == {}


def test_nothing_below_the_cli_imports_it():
    assert [f"{a} -> {t}" for a, targets in internal_edges().items() for t in targets
            if package_of(t) == "cli" and package_of(a) != "cli"] == []


def test_every_package_folder_is_installed():
    """find_packages (setup.py, colcon) installs only folders with an __init__.py: a folder without one would work
    from the source tree and be missing from an install."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: a layer violation and a cycle written into a scratch package are reported."""
    edges = {"seg_ros.core.a": {"seg_ros.cli.b"}, "seg_ros.cli.b": {"seg_ros.core.a"}}
    assert cycles(edges) == [["seg_ros.cli.b", "seg_ros.core.a"]]
    assert layer_of(package_of("seg_ros.cli.b")) > layer_of(package_of("seg_ros.core.a"))
    assert package_of("seg_ros.ros.tools.flood") == "ros.tools"


if __name__ == "__main__":
    for pkg, targets in sorted(package_edges(internal_edges()).items(), key=lambda kv: layer_of(kv[0])):
        print(f"{pkg:10} (layer {layer_of(pkg)}) -> {', '.join(sorted(targets, key=layer_of)) or '-'}")
