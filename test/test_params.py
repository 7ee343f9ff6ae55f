import pytest

from seg_ros.config import (
    PARAMS,
    defaults,
    load_params_file,
    reload_params,
    segmenter_kwargs,
    validate,
    validate_all,
)
from seg_ros.core.errors import ConfigError
from seg_ros.core.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT
from seg_ros.pipeline import Segmenter


def test_defaults_are_valid_and_documented():
    assert validate_all({}) == defaults()
    for p in PARAMS:
        assert p.description.endswith(".")
        assert validate(p.name, p.default) == p.default
    assert {"model", "backend", "device", "precision", "resolution", "keep_aspect"} <= reload_params()


@pytest.mark.parametrize("name,value,message", [
    ("resolution", "abc", "not of the form HxW"),
    ("resolution", "0x0", "out of range"),
    ("resolution", "100000x100000", "out of range"),
    ("backend", "caffe", "must be one of"),
    ("overlay_alpha", 1.5, r"must lie in \[0, 1\]"),
    ("overlay_alpha", float("nan"), "finite"),
    ("qos.depth", 0, "must lie in"),
    ("keep_aspect", "yes", "must be a bool"),
    ("qos.depth", 2.0, "must be an int"),
    ("model", " ", "empty"),
    ("colour", 1, "unknown parameter"),
    ("resolution", "8192x8192", "67,108,864 pixels, more than the 8,847,360 a network runs at"),
    ("max_pixels", 0, r"must lie in \[1, 268435456\]"),
    ("max_pixels", 16385 * 16384, "must lie in"),
    ("max_pixels", 4e6, "must be an int"),
])
def test_bad_values_are_rejected_with_a_reason(name, value, message):
    with pytest.raises(ConfigError, match=message):
        validate(name, value)


def test_max_pixels_is_a_cheap_parameter_with_the_default_budget():
    assert defaults()["max_pixels"] == DEFAULT_MAX_PIXELS == 4096 * 2160
    assert validate("max_pixels", MAX_PIXELS_LIMIT) == MAX_PIXELS_LIMIT
    assert "max_pixels" not in reload_params()


def test_normalisation():
    assert validate("resolution", " 360 x 640 ") == "360x640"
    assert validate("resolution", "") == ""
    assert validate("overlay_alpha", 1) == 1.0


def test_params_file_round_trip(tmp_path, random_model_file):
    path = tmp_path / "p.yaml"
    path.write_text(f"""
/**:
  ros__parameters:
    use_sim_time: true
    overlay_alpha: 0.25
    qos:
      depth: 5
/robot/segmentation_node:
  ros__parameters:
    model: {random_model_file}
    resolution: 64x96
    device: cpu
    publish:
      color: false
other_node:
  ros__parameters:
    model: ignored
""")
    values = load_params_file(path)
    assert values["overlay_alpha"] == 0.25 and values["qos.depth"] == 5 and values["publish.color"] is False
    assert values["model"] == str(random_model_file) and values["keep_aspect"] is True
    seg = Segmenter(**segmenter_kwargs(values))
    assert seg.resolution == (64, 96) and seg.overlay_alpha == 0.25


@pytest.mark.parametrize("text,message", [
    ("segmentation_node: [1, 2", "not valid YAML"),
    ("- a\n- b", "must map node names"),
    ("other:\n  ros__parameters: {}", "no section for segmentation_node"),
    ("segmentation_node:\n  params: {}", "no ros__parameters"),
    ("segmentation_node:\n  ros__parameters:\n    resolution: abc", "parameter file .*resolution 'abc'"),
])
def test_bad_params_files(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_params_file(path)
    with pytest.raises(ConfigError, match="missing.yaml does not exist"):
        load_params_file(tmp_path / "missing.yaml")
