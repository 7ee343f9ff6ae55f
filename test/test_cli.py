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
    argv = [*args, "--model", model, "--out", str(out), "--quiet", *extra]
    if case == "bad_resolution":
        with pytest.raises(SystemExit) as e:
            main(argv)
        rc = e.value.code
    else:
        rc = main(argv)
    assert rc == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "error" in err[-1]


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
