"""The seg-ros command, run in-process through its entry point and as a real subprocess."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seg_ros.cli import main
from seg_ros.io.datasets import read_image, read_labels


def _write_png(path, rng, h=48, w=64):
    cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_segment_images_and_folders(random_model_file, tmp_path, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _write_png(src / "a.png", rng)
    _write_png(src / "b.jpg", rng, 33, 57)
    single = _write_png(tmp_path / "c.png", rng)
    out = tmp_path / "out"
    rc = main(["segment", str(src), str(single), "--model", str(random_model_file), "--device", "cpu",
               "--out", str(out), "--quiet"])
    assert rc == 0
    names = _listing(out)
    assert names == sorted(f"{s}_{o}.png" for s in "abc" for o in ("labels", "color", "overlay"))
    labels = read_labels(out / "b_labels.png")
    assert labels.shape == (33, 57) and labels.max() < 11
    assert read_image(out / "b_overlay.png").shape == (33, 57, 3)
    assert "fps" in capsys.readouterr().out


def test_segment_video_writes_an_overlay_mp4(random_model_file, tmp_path, rng):
    video = tmp_path / "drive.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(5):
        w.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    w.release()
    out = tmp_path / "out"
    assert main(["segment", str(video), "--model", str(random_model_file), "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0
    cap = cv2.VideoCapture(str(out / "drive_overlay.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64


@pytest.mark.parametrize("case", ["unknown_model", "missing_input", "unreadable_input", "bad_resolution",
                                  "corrupt_model", "duplicate_names", "empty_folder", "bad_device"])
def test_segment_errors_exit_2_and_write_nothing(case, random_model_file, tmp_path, rng, capsys):
    good = _write_png(tmp_path / "good.png", rng)
    model = str(random_model_file)
    args = ["segment", str(good)]
    extra = []
    if case == "unknown_model":
        model = "no_such_model"
    elif case == "missing_input":
        args.append(str(tmp_path / "absent.png"))
    elif case == "unreadable_input":
        (tmp_path / "junk.png").write_bytes(b"this is not a png")
        args.append(str(tmp_path / "junk.png"))
    elif case == "bad_resolution":
        extra = ["--resolution", "abc"]
    elif case == "corrupt_model":
        data = bytearray(random_model_file.read_bytes())
        data[-100] ^= 1
        (tmp_path / "bad.safetensors").write_bytes(bytes(data))
        model = str(tmp_path / "bad.safetensors")
    elif case == "duplicate_names":
        (tmp_path / "sub").mkdir()
        _write_png(tmp_path / "sub" / "good.png", rng)
        args.append(str(tmp_path / "sub"))
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args.append(str(tmp_path / "empty"))
    elif case == "bad_device":
        extra = ["--device", "tpu"]
    out = tmp_path / "out"
    assert main([*args, "--model", model, "--out", str(out), "--quiet", *extra]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "error" in err[-1]


# -- options generated from the configuration schema ---------------------------------------------------------------

@pytest.fixture
def made(monkeypatch):
    """The keyword arguments of every Segmenter the command builds."""
    import seg_ros.pipeline

    calls = []

    class Recording(seg_ros.pipeline.Segmenter):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(seg_ros.pipeline, "Segmenter", Recording)
    return calls


def test_segment_set_takes_any_parameter_over_the_options(random_model_file, tmp_path, rng, made):
    from seg_ros.crf import CRFConfig
    from seg_ros.runtime import RuntimeOptions

    src = _write_png(tmp_path / "a.png", rng)
    base = ["segment", str(src), "--model", str(random_model_file), "--device", "cpu", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "o1"), "--threads", "3", "--set", "runtime.threads=2",
                 "--set", "resolution=32x48", "--alpha", "0.25"]) == 0
    assert made[-1]["runtime"] == RuntimeOptions(threads=2)
    assert (made[-1]["resolution"], made[-1]["overlay_alpha"], made[-1]["crf"]) == ("32x48", 0.25, None)
    assert main([*base, "--out", str(tmp_path / "o2"), "--crf", "--set", "crf.w1=5"]) == 0
    assert made[-1]["crf"] == CRFConfig(method="fast", w1=5.0)
    assert main([*base, "--out", str(tmp_path / "o3"), "--set", "crf.enabled=true", "--set", "crf.w1=5",
                 "--set", "max_pixels=4096", "--set", "overlay_alpha=0.75"]) == 0
    assert made[-1]["crf"] == CRFConfig(w1=5.0) and made[-1]["overlay_alpha"] == 0.75
    assert main([*base, "--out", str(tmp_path / "o4"), "--set", "max_pixels=1000"]) == 2  # 48x64 is over it
    assert not (tmp_path / "o4").exists()


@pytest.mark.parametrize("option, message", [
    ("runtime.threads=-1", "--set runtime.threads must lie in [0, 256], not -1."),
    ("crf.iterations=many", "--set crf.iterations must be an int, not str 'many'."),
    ("threads", "--set takes NAME=VALUE (e.g. crf.enabled=true), not 'threads'."),
])
def test_a_bad_set_exits_2_with_one_line_naming_the_command(option, message, tmp_path, capsys):
    out = tmp_path / "out"
    for argv in (["segment", str(tmp_path / "a.png"), "--out", str(out)], ["evaluate", "--bag", str(tmp_path)],
                 ["tune-crf", "--data", str(tmp_path), "--grid", "w1=1,2"]):
        assert main([*argv, "--set", option]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"seg-ros {argv[0]}: error: {message}"]
    assert not out.exists()


def test_evaluate_takes_the_file_then_set_then_its_own_options(random_model_file, tmp_path, monkeypatch):
    import seg_ros.evaluate
    from seg_ros.io.bags import write_dataset_bag
    from seg_ros.io.datasets import SyntheticDriveSource

    bag = tmp_path / "bag"
    write_dataset_bag(SyntheticDriveSource(3, 1, (48, 64)), bag, progress=False)
    params = tmp_path / "p.yaml"
    params.write_text("segmentation_node:\n  ros__parameters:\n"
                      f"    model: {random_model_file}\n    device: cpu\n    resolution: '32x48'\n"
                      "    keep_aspect: false\n    runtime: {threads: 3}\n    crf: {iterations: 4, w1: 2.0}\n")
    seen = []
    monkeypatch.setattr(seg_ros.evaluate, "evaluate_bag", lambda opts, seg, **kw: seen.append((opts, seg, kw)))
    assert main(["evaluate", "--bag", str(bag), "--params", str(params), "--set", "resolution=40x56",
                 "--set", "crf.iterations=6", "--set", "runtime.threads=1", "--resolution", "48x64",
                 "--max-pixels", "5000", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    opts, seg, kw = seen[0]
    values = kw["settings"]["values"]
    assert (values["resolution"], values["crf.iterations"], values["runtime.threads"]) == ("48x64", 6, 1)
    assert (values["keep_aspect"], values["crf.w1"], values["device"]) == (False, 2.0, "cpu")
    assert kw["settings"]["overrides"] == {"resolution": "48x64", "crf.iterations": 6, "runtime.threads": 1,
                                           "max_pixels": 5000}
    assert seg.resolution == (48, 64) and opts.max_pixels == 5000


def test_choices_come_from_the_schema_and_the_registries(capsys):
    from seg_ros.crf.config import METHODS
    from seg_ros.runtime import BACKENDS, PRECISIONS

    assert f"--precision {{{','.join(PRECISIONS)}}}" in _help(["export"], capsys)
    speed = _help(["bench", "speed"], capsys)
    assert f"--precision {{{','.join(PRECISIONS)}}}" in speed and f"--backend {{{','.join(BACKENDS)}}}" in speed
    assert f"--method {{{','.join(METHODS)}}}" in _help(["tune-crf"], capsys)
    for argv in (["segment", "x", "--out", "o", "--crf", "best"], ["export", "--precision", "fp8"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_failure_midway_leaves_an_existing_out_folder_as_it_was(random_model_file, tmp_path, rng):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    # Decodable header, broken body: passes the up-front check, fails when decoded.
    data = cv2.imencode(".png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))[1].tobytes()
    (tmp_path / "z_broken.png").write_bytes(data[:60])
    good = _write_png(tmp_path / "a_good.png", rng)
    rc = main(["segment", str(good), str(tmp_path / "z_broken.png"), "--model", str(random_model_file),
               "--device", "cpu", "--out", str(out), "--quiet"])
    assert rc == 2
    assert _listing(out) == ["keep.txt"]


def test_models_lists_architectures(capsys):
    assert main(["models", "--details"]) == 0
    out = capsys.readouterr().out
    assert "liteseg_mobilenetv2" in out and "3.10 M parameters" in out


def test_console_script_runs_as_a_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-m", "seg_ros.cli", "segment", str(tmp_path / "x.png"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"seg-ros segment: error: input {tmp_path / 'x.png'} does not exist."
    assert not (tmp_path / "o").exists()


def test_train_fine_tunes_with_class_weights_from_the_command_line(random_model_file, tmp_path, capsys):
    out = tmp_path / "ft.safetensors"
    common = ["train", "--synthetic", "--synthetic-train", "4", "--synthetic-val", "1", "--synthetic-size", "64x96",
              "--crop", "64x96", "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--workers", "0",
              "--quiet", "--class-weights", "median-frequency"]
    assert main([*common, "--init", str(random_model_file), "--out", str(out)]) == 0
    assert "class weights (median-frequency): Sky" in capsys.readouterr().out
    from seg_ros.models.modelfile import read_meta

    prov = read_meta(out).provenance
    assert prov["init"]["file"] == "random.safetensors" and prov["recipe"]["class_weights"] == "median-frequency"
    assert "--init" in prov["command"]
    bad = tmp_path / "bad.safetensors"
    assert main([*common, "--init", str(tmp_path / "absent.safetensors"), "--out", str(bad)]) == 2
    assert "absent.safetensors does not exist" in capsys.readouterr().err
    assert not bad.exists() and not bad.with_suffix(".ckpt.safetensors").exists()


# -- the parser's structure ---------------------------------------------------------------------------------------

def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal width


def _options(argv: list[str], capsys) -> set[str]:
    """The options the usage line of ``seg-ros ARGV --help`` lists."""
    import re

    usage = _help(argv, capsys).partition("options:")[0].partition("positional arguments:")[0]
    return set(re.findall(r"\[(--[\w-]+)", usage)) - {"--help"}


ACCEL = {"--threads", "--cuda-graphs", "--calibration", "--calibration-frames", "--calibration-topic", "--cache-dir",
         "--no-fallback", "--on-new-shape", "--max-batch", "--workspace-mib", "--no-fuse-pre-post"}
BENCH_OPTIONS = {
    "speed": {"--model", "--resolution", "--device", "--precision", "--backend", "--no-naive", "--accuracy-frames",
              "--quiet", "--frames", "--warmup", "--json", *ACCEL},
    "crf": {"--model", "--resolution", "--device", "--classes", "--iterations", "--gate", "--scenes", "--scene-size",
            "--downsample", "--camvid", "--camvid-model", "--camvid-params", "--frames", "--warmup", "--json"},
    "node": {"--model", "--resolution", "--device", "--frames", "--warmup", "--json"},
    "cameras": {"--cameras", "--model", "--resolution", "--rate", "--seconds", "--warmup", "--device", "--json"},
    "bag": {"--resolution", "--frames", "--json"},
    "evaluate": {"--model", "--resolution", "--device", "--frames", "--json"},
    "soak": {"--frames", "--model", "--size", "--interval-ms", "--change-every", "--device", "--json", "--flood"},
    "report": set(),
}


def test_each_benchmark_has_only_its_own_options(capsys):
    assert {name: _options(["bench", name], capsys) for name in BENCH_OPTIONS} == BENCH_OPTIONS
    listed = _help(["bench"], capsys).partition("BENCHMARK")[2]
    assert all(f" {name} " in listed for name in BENCH_OPTIONS)


@pytest.mark.parametrize("argv", [["bench", "--crf"], ["bench", "--node"], ["bench"], ["bench", "bag", "--model", "m"],
                                  ["bench", "node", "--precision", "fp16"], ["bench", "crf", "--crf-gate", "0"]])
def test_old_bench_forms_and_foreign_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seg-ros") and ": error: " in err[0]


@pytest.mark.parametrize("argv", [["segment"], ["train"], ["tune-crf"], ["export"], ["soak"], ["demo"],
                                  ["bench", "speed"], ["bench", "crf"], ["bench", "node"], ["bench", "evaluate"],
                                  ["bench", "soak"]])
def test_every_device_option_defaults_to_auto_and_says_what_auto_is(argv, capsys):
    import re

    text = _help(argv, capsys)
    device = re.search(r"--device DEVICE (.*?)(?= --[\w-]+ |$)", text)
    assert device and "default: auto = " in device[1] and "cuda:0 when CUDA is available" in device[1], text


def test_every_cli_module_stays_small():
    from pathlib import Path

    import seg_ros.cli

    for module in Path(seg_ros.cli.__file__).parent.glob("*.py"):
        assert len(module.read_text().splitlines()) <= 250, module.name


def test_bench_report_prints_the_table_of_a_speed_report(capsys):
    import json
    from pathlib import Path

    report = Path(__file__).resolve().parents[1] / "docs" / "bench" / "bench_cpu_360x640.json"
    assert main(["bench", "report", str(report)]) == 0
    out = capsys.readouterr().out
    (row,) = [r for r in json.loads(report.read_text())["rows"]
              if (r["mode"], r["backend"], r["precision"]) == ("e2e", "onnxruntime", "int8")]
    assert out.startswith("| mode | backend | precision | fps |")
    assert f"| e2e | onnxruntime | int8 | {row['fps']:.3g} |" in out
