"""The one configuration schema: node parameters, command-line options and the docs table come from the same
dataclass fields."""

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from seg_ros.cli.options import add_options, apply_sets, option_flag, parse_set, select, values_from_args
from seg_ros.config import (
    PARAMS,
    SPECS,
    NodeSettings,
    ParamSpec,
    crf_config,
    defaults,
    group,
    markdown_table,
    param_specs,
    runtime_options,
)
from seg_ros.core.errors import ConfigError
from seg_ros.core.settings import setting
from seg_ros.crf import CRFConfig
from seg_ros.runtime import (
    AUTO_ORDER,
    BACKEND_CHOICES,
    BACKENDS,
    PRECISION_CHOICES,
    PRECISIONS,
    SHAPE_POLICIES,
    RuntimeOptions,
)

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ("model", "resolution", "keep_aspect", "device", "precision", "backend")


def _parser(*params: str, overrides: bool = False, schema=PARAMS) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_options(p, params, overrides=overrides, schema=schema)
    return p


# -- schema → parameters --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings,prefix", [(RuntimeOptions, "runtime."), (CRFConfig, "crf.")])
def test_each_dataclass_field_is_one_parameter_with_its_facts(settings, prefix):
    instance = settings()
    for f in fields(settings):
        spec = SPECS[f"{prefix}{f.name}"]
        assert spec.default == getattr(instance, f.name) and spec.type is type(getattr(instance, f.name))
        assert (spec.description, spec.choices, spec.range) == \
            (f.metadata["description"], f.metadata["choices"], f.metadata["range"])
    assert [p.name for p in PARAMS if p.name.startswith(prefix) and p.name != "crf.enabled"] == \
        [f"{prefix}{f.name}" for f in fields(settings)]


def test_parameters_keep_their_order_and_groups():
    names = [p.name for p in PARAMS]
    assert names[:6] == ["model", "backend", "device", "precision", "resolution", "keep_aspect"]
    runtime = [f"runtime.{f.name}" for f in fields(RuntimeOptions)]
    assert names[6:6 + len(runtime)] == runtime
    assert names[names.index("crf.enabled") + 1:] == [f"crf.{f.name}" for f in fields(CRFConfig)]
    assert names.index("publish.labels") < names.index("input_transport") < names.index("qos.reliability")
    assert len(names) == len(set(names))
    runtime_reload = {p.name: p.reload for p in PARAMS if p.name.startswith("runtime.")}
    assert all(runtime_reload.values()) and not any(p.reload for p in PARAMS if p.name.startswith("crf."))
    assert [p.name for p in PARAMS if p.read_only] == ["cameras", "input_transport"]


def test_shared_lists_are_the_runtimes():
    assert SPECS["precision"].choices == PRECISION_CHOICES == ("auto", *PRECISIONS)
    assert SPECS["runtime.on_new_shape"].choices == SHAPE_POLICIES
    assert SPECS["backend"].choices == BACKEND_CHOICES == ("auto", *BACKENDS)
    assert SPECS["backend"].description == ("Inference backend; auto = tensorrt, else openvino, else onnxruntime, "
                                            "else torch.")
    assert AUTO_ORDER == ("tensorrt", "openvino", "onnxruntime", "torch")


def test_the_dataclasses_check_the_schemas_facts():
    for name, spec in SPECS.items():
        group_name, _, field_name = name.partition(".")
        cls = {"runtime": RuntimeOptions, "crf": CRFConfig}.get(group_name)
        if cls is None or spec.range is None:
            continue
        with pytest.raises(ConfigError, match=rf"^{name.replace('.', '[.]')} must lie in"):
            cls(**{field_name: spec.range[1] + 1})
        cls(**{field_name: spec.range[1]})


def test_values_convert_to_the_dataclasses():
    values = {**defaults(), "runtime.threads": 3, "runtime.on_new_shape": "error", "crf.enabled": True,
              "crf.iterations": 4}
    assert runtime_options(values) == RuntimeOptions(threads=3, on_new_shape="error")
    assert crf_config(values) == CRFConfig(iterations=4)
    assert crf_config(defaults()) is None


# -- command-line options -------------------------------------------------------------------------------------------

def test_runtime_options_keep_their_names():
    flags = {a.option_strings[0] for a in _parser("runtime")._actions if a.option_strings[0] != "-h"}
    assert flags == {"--threads", "--cuda-graphs", "--calibration", "--calibration-frames", "--calibration-topic",
                     "--cache-dir", "--no-fallback", "--on-new-shape", "--max-batch", "--workspace-mib",
                     "--no-fuse-pre-post"}
    flags = {a.option_strings[0] for a in _parser(*PIPELINE)._actions if a.option_strings[0] != "-h"}
    assert flags == {"--model", "--resolution", "--no-keep-aspect", "--device", "--precision", "--backend"}
    help_text = " ".join(_parser("runtime").format_help().split())
    assert "--threads THREADS CPU threads of ONNX Runtime and OpenVINO; 0 = one per core. Default: 0." in help_text
    assert "--no-fallback A backend that cannot run here falls back (logged) instead of failing. Default: on; " \
           "this option turns it off." in help_text


def test_options_round_trip_to_the_dataclass():
    args = _parser(*PIPELINE, "runtime").parse_args(
        ["--threads", "2", "--cuda-graphs", "--calibration-frames", "16", "--no-fallback", "--on-new-shape", "error",
         "--max-batch", "4", "--cache-dir", "/tmp/c", "--resolution", " 64 x 96 ", "--no-keep-aspect",
         "--precision", "fp16", "--backend", "auto"])
    values = values_from_args(args, [*PIPELINE, "runtime"])
    assert runtime_options(values) == RuntimeOptions(threads=2, cuda_graphs=True, calibration_frames=16,
                                                     fallback=False, on_new_shape="error", max_batch=4,
                                                     cache_dir="/tmp/c")
    assert (values["resolution"], values["keep_aspect"], values["precision"], values["backend"]) == \
        ("64x96", False, "fp16", "auto")
    assert values_from_args(_parser(*PIPELINE, "runtime").parse_args([]), [*PIPELINE, "runtime"]) == defaults()


def test_option_values_are_checked_by_the_schema_and_named_by_the_option():
    args = _parser("runtime").parse_args(["--threads", "300"])
    with pytest.raises(ConfigError, match=r"^--threads must lie in \[0, 256\], not 300\.$"):
        values_from_args(args, "runtime")
    with pytest.raises(argparse.ArgumentError):
        _parser("runtime").parse_args(["--on-new-shape", "maybe"])
    with pytest.raises(ConfigError, match="resolution 'abc' is not of the form HxW"):
        values_from_args(_parser("resolution").parse_args(["--resolution", "abc"]), "resolution")


def test_override_options_keep_the_other_values():
    base = {**defaults(), "keep_aspect": False, "device": "cpu", "runtime.threads": 5}
    parser = _parser(*PIPELINE, "runtime.threads", overrides=True)
    assert values_from_args(parser.parse_args([]), [*PIPELINE, "runtime.threads"], base) == base
    args = parser.parse_args(["--keep-aspect", "--device", "cuda:0", "--threads", "1"])
    out = values_from_args(args, [*PIPELINE, "runtime.threads"], base)
    assert (out["keep_aspect"], out["device"], out["runtime.threads"]) == (True, "cuda:0", 1)
    assert base["device"] == "cpu"  # not modified
    assert option_flag(SPECS["keep_aspect"], overrides=True) == "--keep-aspect"


def test_a_commands_own_help_replaces_only_the_help():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_options(parser, ["device", "precision", "keep_aspect"], helps={"precision": "mine (default: auto)",
                                                                       "keep_aspect": "stretch"})
    help_text = " ".join(parser.format_help().split())
    assert "mine (default: auto)" in help_text and "Network precision" not in help_text
    assert "--no-keep-aspect stretch" in help_text and "auto, cpu or cuda:N. Default: auto." in help_text
    args = parser.parse_args(["--no-keep-aspect"])
    assert (args.precision, args.keep_aspect) == ("auto", False)
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--precision", "fp8"])


def test_select_takes_names_and_groups():
    assert [p.name for p in select(["qos", "model"])] == ["qos.reliability", "qos.depth", "model"]
    with pytest.raises(ConfigError, match="unknown parameter or group 'nope'"):
        select("nope")


# -- --set ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("crf.enabled=true", ("crf.enabled", True)),
    ("publish.color=false", ("publish.color", False)),
    ("crf.iterations=5", ("crf.iterations", 5)),
    ("crf.w1=4", ("crf.w1", 4.0)),
    ("crf.w1=2.5", ("crf.w1", 2.5)),
    ("resolution= 360 x 640", ("resolution", "360x640")),
    ("model=123", ("model", "123")),
    ("runtime.calibration_topic=/cam/image", ("runtime.calibration_topic", "/cam/image")),
    ("backend=onnxruntime", ("backend", "onnxruntime")),
    (" qos.depth =3", ("qos.depth", 3)),
])
def test_set_parses_every_type(text, expected):
    name, value = parse_set(text)
    assert (name, value) == expected and type(value) is type(expected[1])


@pytest.mark.parametrize("text,message", [
    ("crf.iterations", "takes NAME=VALUE"),
    ("=3", "takes NAME=VALUE"),
    ("colour=1", "unknown parameter 'colour'"),
    ("crf.enabled=maybe", "--set crf.enabled must be a bool"),
    ("crf.iterations=2.5", "--set crf.iterations must be an int"),
    ("crf.iterations=0", r"--set crf.iterations must lie in \[1, 100\]"),
    ("backend=caffe", "--set backend must be one of auto, torch, onnxruntime, openvino, tensorrt"),
    ("crf.reference_size=10", "crf.reference_size must be 0"),
])
def test_set_refuses_with_a_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_set(text)


def test_sets_apply_in_order_without_touching_the_input():
    base = defaults()
    out = apply_sets(base, [parse_set("crf.iterations=3"), parse_set("crf.iterations=7"),
                            parse_set("crf.enabled=true")])
    assert out["crf.iterations"] == 7 and crf_config(out) == CRFConfig(iterations=7)
    assert base == defaults() and apply_sets(base, None) == base
    with pytest.raises(ConfigError, match="--set runtime.threads"):
        apply_sets(base, [("runtime.threads", -1)])
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", type=parse_set)
    assert parser.parse_args(["--set", "qos.depth=2"]).set == [("qos.depth", 2)]


# -- one fact, written once -----------------------------------------------------------------------------------------

def test_a_changed_field_shows_up_in_parameters_options_and_table():
    @dataclass(frozen=True)
    class Runtime(RuntimeOptions):
        calibration_frames: int = setting(32, "int8: at most this many frames.", range=(1, 500))

    @dataclass(frozen=True)
    class Node(NodeSettings):
        runtime: Runtime = group(Runtime, reload=True)

    schema = tuple(param_specs(Node))
    assert [p.name for p in schema] == [p.name for p in PARAMS]
    (spec,) = [p for p in schema if p.name == "runtime.calibration_frames"]
    assert spec == ParamSpec("runtime.calibration_frames", 32, "int8: at most this many frames.", range=(1, 500),
                             reload=True)
    assert _parser("runtime", schema=schema).parse_args([]).calibration_frames == 32
    assert "int8: at most this many frames. Default: 32." in " ".join(
        _parser("runtime", schema=schema).format_help().split())
    row = ("| `runtime.calibration_frames` | int | `32` | 1 … 500 | rebuilds the pipeline "
           "| int8: at most this many frames. |")
    assert row in markdown_table(schema).splitlines() and row not in markdown_table().splitlines()
    with pytest.raises(ConfigError, match=r"runtime\.calibration_frames must lie in \[1, 500\]"):
        Runtime(calibration_frames=501)


def test_the_docs_table_is_the_generated_one():
    assert markdown_table() in (ROOT / "docs" / "node.md").read_text()
