"""The seg-ros command under careless and hostile input: one sentence, exit status 2, nothing written.

Every case runs the real command (in-process through ``main``, or as a process where signals and imports
matter) on real files: unwritable and wrong-kind paths for every output option, FIFOs and device files
where files are read, non-finite and out-of-range numbers, a truncated JPEG, an image over the pixel
budget, a checkpoint whose pickle would run a shell command, and Ctrl-C at any moment.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_ros.cli import main

ROOT = Path(__file__).resolve().parents[1]


class _Shell:
    """Unpickling this object would run a shell command (it never is: weights_only refuses it)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def ground(tmp_path):
    """A working folder with an image, a regular file, a FIFO, a fake bag folder and a malicious checkpoint."""
    g = tmp_path
    rng = np.random.default_rng(0)
    cv2.imwrite(str(g / "img.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    assert ok
    (g / "truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (g / "file").write_text("a regular file\n")
    os.mkfifo(g / "fifo")
    (g / "bag").mkdir()
    (g / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")  # only its path is checked
    (g / "evil.pth").write_bytes(pickle.dumps({"weight": _Shell(g / "pwned")}, protocol=2))
    (g / "data").mkdir()
    (g / "params_bytes.yaml").write_bytes(b"\xff\xfe\x00 not text")
    (g / "hugebag").mkdir()
    for huge in (g / "huge", g / "hugebag" / "metadata.yaml"):  # 2 GiB of zeros, sparse: a mistaken disk image
        with open(huge, "wb") as f:
            f.truncate(2 << 30)
    (g / "crf_report.json").write_text('{"kind": "bench_crf", "rows": []}\n')
    levels = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    for name, value in (("list_bomb", "*l8"), ("map_bomb", "{a: *l8}"), ("long_int", "9" * 5000)):
        (g / f"params_{name}.yaml").write_text(f"l0: &l0 [x, x, x, x, x, x, x, x, x]\n{levels}"
                                               f"segmentation_node:\n  ros__parameters:\n    model: {value}\n")
    return g


def _train(*extra: str) -> list[str]:
    return ["train", "--synthetic", "--synthetic-train", "4", "--synthetic-val", "1", "--synthetic-size", "64x96",
            "--crop", "64x96", "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--workers", "0",
            "--no-pretrained", "--quiet", *extra]


# name: (argv with {g} for the ground folder, a phrase the one sentence holds, the path that must not appear)
CASES: dict[str, tuple[list[str], str, str | None]] = {
    # output paths of the wrong kind or in places that cannot be written
    "segment --out is a file": (["segment", "{g}/img.png", "--out", "{g}/file"], "is a file, not a folder", None),
    "segment --out under a file": (["segment", "{g}/img.png", "--out", "{g}/file/out"], "cannot be written",
                                   "{g}/file/out"),
    "segment --cache-dir is a file": (["segment", "{g}/img.png", "--out", "{g}/out", "--cache-dir", "{g}/file"],
                                      "--cache-dir", "{g}/out"),
    "export --onnx is a folder": (["export", "--onnx", "{g}/data", "--no-check"], "is a folder", None),
    "export --onnx under a file": (["export", "--onnx", "{g}/file/m.onnx", "--no-check"], "cannot be written",
                                   "{g}/file/m.onnx"),
    "export --cache-dir is a file": (["export", "--tensorrt", "--cache-dir", "{g}/file"], "--cache-dir", None),
    "bench speed --json is a folder": (["bench", "speed", "--json", "{g}/data"], "is a folder", None),
    "bench speed --json under a file": (["bench", "speed", "--json", "{g}/file/b.json"], "cannot be written",
                                        "{g}/file/b.json"),
    "bench crf --json is a folder": (["bench", "crf", "--json", "{g}/data"], "is a folder", None),
    "bench node --json is a folder": (["bench", "node", "--json", "{g}/data"], "is a folder", None),
    "bench bag --json under a file": (["bench", "bag", "--json", "{g}/file/b.json"], "cannot be written",
                                      "{g}/file/b.json"),
    "bench evaluate --json is a folder": (["bench", "evaluate", "--json", "{g}/data"], "is a folder", None),
    "soak --json is a folder": (["soak", "--json", "{g}/data"], "is a folder", None),
    "tune-crf --preset is a folder": (["tune-crf", "--data", "{g}/data", "--grid", "w1=1,2", "--preset", "{g}/data"],
                                      "is a folder", None),
    "tune-crf --json under a file": (["tune-crf", "--data", "{g}/data", "--grid", "w1=1,2", "--json",
                                      "{g}/file/t.json"], "cannot be written", "{g}/file/t.json"),
    "train --out is a folder": (_train("--out", "{g}/data"), "is a folder", None),
    "train --out under a file": (_train("--out", "{g}/file/m.safetensors"), "cannot be written",
                                 "{g}/file/m.safetensors"),
    "import-checkpoint --out is a folder": (["import-checkpoint", "{g}/evil.pth", "--out", "{g}/data"],
                                            "is a folder", None),
    "evaluate --out is a file": (["evaluate", "--bag", "{g}/bag", "--out", "{g}/file"], "is a file, not a folder",
                                 None),
    "evaluate --out-bag under a file": (["evaluate", "--bag", "{g}/bag", "--out", "{g}/report", "--out-bag",
                                         "{g}/file/b"], "cannot be written", "{g}/report"),
    "bag-from-dataset --out under a file": (["bag-from-dataset", "--synthetic", "2", "--size", "64x64", "--out",
                                             "{g}/file/b", "--quiet"], "cannot be written", "{g}/file/b"),
    "demo --out is a file": (["demo", "--out", "{g}/file"], "is a file, not a folder", None),
    # FIFOs and devices are refused by their type, never opened (reading them blocks or never ends)
    "segment a FIFO": (["segment", "{g}/fifo", "--out", "{g}/out"], "is a FIFO", "{g}/out"),
    "segment /dev/zero": (["segment", "/dev/zero", "--out", "{g}/out"], "is a character device", "{g}/out"),
    "evaluate --bag FIFO": (["evaluate", "--bag", "{g}/fifo", "--out", "{g}/report"], "is a FIFO", "{g}/report"),
    "evaluate --params FIFO": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/fifo", "--out", "{g}/report"],
                               "parameter file", "{g}/report"),
    "evaluate --params /dev/zero": (["evaluate", "--bag", "{g}/bag", "--params", "/dev/zero", "--out",
                                     "{g}/report"], "not a regular file", "{g}/report"),
    "evaluate --compare FIFO": (["evaluate", "--compare", "{g}/fifo", "{g}/fifo"], "is a FIFO", None),
    "evaluate --gt-dir is a file": (["evaluate", "--bag", "{g}/bag", "--gt-dir", "{g}/file", "--out", "{g}/report"],
                                    "not a folder", "{g}/report"),
    "segment --calibration FIFO": (["segment", "{g}/img.png", "--out", "{g}/out", "--calibration", "{g}/fifo"],
                                   "is a FIFO", "{g}/out"),
    "bench crf --camvid-params FIFO": (["bench", "crf", "--camvid", "{g}/data", "--camvid-params", "{g}/fifo",
                                        "--json", "{g}/b.json"], "is a FIFO", "{g}/b.json"),
    "bench report FIFO": (["bench", "report", "{g}/fifo"], "is a FIFO", None),
    # text inputs far larger than any real one are refused by their size, before a byte is read
    "evaluate --params 2 GiB": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/huge", "--out", "{g}/report"],
                                "parameter file {g}/huge is larger than 4,194,304 bytes", "{g}/report"),
    "evaluate --bag with 2 GiB of metadata": (["evaluate", "--bag", "{g}/hugebag", "--out", "{g}/report"],
                                              "bag metadata {g}/hugebag/metadata.yaml is larger than", "{g}/report"),
    "evaluate --compare 2 GiB": (["evaluate", "--compare", "{g}/huge", "{g}/huge"], "report {g}/huge is larger than",
                                 None),
    "bench report 2 GiB": (["bench", "report", "{g}/huge"], "report {g}/huge is larger than", None),
    # a report of another kind, or no report at all
    "bench report not JSON": (["bench", "report", "{g}/file"], "report {g}/file is not JSON", None),
    "bench report of another benchmark": (["bench", "report", "{g}/crf_report.json"],
                                          "is not a report of seg-ros bench speed", None),
    "import-checkpoint a FIFO": (["import-checkpoint", "{g}/fifo", "--out", "{g}/m.safetensors"], "is a FIFO",
                                 "{g}/m.safetensors"),
    # numbers that are not finite or out of range
    "bag-from-dataset --start-time nan": (["bag-from-dataset", "--synthetic", "2", "--out", "{g}/b",
                                           "--start-time", "nan"], "--start-time", "{g}/b"),
    "bag-from-dataset --start-time inf": (["bag-from-dataset", "--synthetic", "2", "--out", "{g}/b",
                                           "--start-time", "inf"], "--start-time", "{g}/b"),
    "bag-from-dataset --start-time 1e30": (["bag-from-dataset", "--synthetic", "2", "--size", "64x64", "--out",
                                            "{g}/b", "--start-time", "1e30", "--quiet"], "start time", "{g}/b"),
    "bag-from-dataset --max-pixels below the frame": (["bag-from-dataset", "--synthetic", "2", "--size", "64x64",
                                                       "--max-pixels", "1000", "--out", "{g}/b", "--quiet"],
                                                      "pixel budget", "{g}/b"),
    "train --lr nan": (_train("--lr", "nan", "--out", "{g}/m.safetensors"), "learning rate", "{g}/m.safetensors"),
    "train --lr inf": (_train("--lr", "inf", "--out", "{g}/m.safetensors"), "learning rate", "{g}/m.safetensors"),
    "train --lr -1": (_train("--lr", "-1", "--out", "{g}/m.safetensors"), "learning rate", "{g}/m.safetensors"),
    "train --weight-decay nan": (_train("--weight-decay", "nan", "--out", "{g}/m.safetensors"), "weight decay",
                                 "{g}/m.safetensors"),
    "train --scale-min 2 --scale-max 1": (_train("--scale-min", "2", "--scale-max", "1", "--out",
                                                 "{g}/m.safetensors"), "swap them", "{g}/m.safetensors"),
    "train --workers -1": (_train("--workers", "-1", "--out", "{g}/m.safetensors"), "workers", "{g}/m.safetensors"),
    "train --ema nan": (_train("--ema", "nan", "--out", "{g}/m.safetensors"), "EMA", "{g}/m.safetensors"),
    "segment --max-pixels 0": (["segment", "{g}/img.png", "--out", "{g}/out", "--max-pixels", "0"], "--max-pixels",
                               "{g}/out"),
    # files that lie
    "segment a truncated JPEG": (["segment", "{g}/truncated.jpg", "--out", "{g}/out"], "truncated", "{g}/out"),
    "segment an image over the pixel budget": (["segment", "{g}/img.png", "--out", "{g}/out", "--max-pixels",
                                                "1000"], "48x64 = 3,072 pixels", "{g}/out"),
    "import-checkpoint a malicious pickle": (["import-checkpoint", "{g}/evil.pth", "--out", "{g}/m.safetensors"],
                                             "(posix.system)", "{g}/m.safetensors"),
    # parameter files that are not text, or YAML that expands to billions of values when printed or walked
    "evaluate --params not UTF-8": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/params_bytes.yaml", "--out",
                                     "{g}/report"], "is not UTF-8 text", "{g}/report"),
    "evaluate --params alias bomb list": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/params_list_bomb.yaml",
                                           "--out", "{g}/report"], "model must be a str, not a list.", "{g}/report"),
    "evaluate --params alias bomb mapping": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/params_map_bomb.yaml",
                                              "--out", "{g}/report"], "unknown parameter group 'model'",
                                             "{g}/report"),
    "evaluate --params 5000-digit number": (["evaluate", "--bag", "{g}/bag", "--params", "{g}/params_long_int.yaml",
                                             "--out", "{g}/report"], "a number too long", "{g}/report"),
    # numbers past what the libraries take
    "train --seed 10^23": (_train("--seed", "9" * 23, "--out", "{g}/m.safetensors"), "the seed must be at most",
                           "{g}/m.safetensors"),
    "train --synthetic-val 10^23": (_train("--synthetic-val", "9" * 23, "--out", "{g}/m.safetensors"),
                                    "synthetic validation scenes must be at most", "{g}/m.safetensors"),
    "train --weight-decay 1e300": (_train("--weight-decay", "1e300", "--out", "{g}/m.safetensors"),
                                   "at most 3.40282e+38", "{g}/m.safetensors"),
    "train --lr 1e38 (weights overflow in the last step)": (_train("--lr", "1e38", "--max-steps-per-epoch", "1",
                                                                  "--out", "{g}/m.safetensors"),
                                                           "became NaN or infinite in epoch 1", "{g}/m.safetensors"),
    "bag-from-dataset --fps 1e-300": (["bag-from-dataset", "--synthetic", "2", "--size", "64x64", "--fps", "1e-300",
                                       "--out", "{g}/b", "--quiet"], "or a higher frame rate", "{g}/b"),
    "bag-from-dataset --synthetic 10^20": (["bag-from-dataset", "--synthetic", "9" * 20, "--out", "{g}/b"],
                                           "a synthetic drive has 1 to 1,000,000 frames", "{g}/b"),
    "bag-from-dataset --images FIFO": (["bag-from-dataset", "--images", "{g}/fifo", "--out", "{g}/b"],
                                       "image folder {g}/fifo is a FIFO", "{g}/b"),
    "segment --model a megabyte name": (["segment", "{g}/img.png", "--out", "{g}/out", "--model", "m" * 1_000_000],
                                        "… (1,000,002 characters): not a file", "{g}/out"),
}


def _fill(text: str, g: Path) -> str:
    return text.replace("{g}", str(g))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(name, ground, capsys):
    argv, phrase, absent = CASES[name]
    before = sorted(p.name for p in ground.iterdir())
    try:
        rc = main([_fill(a, ground) for a in argv])
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    assert rc == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("seg-ros ") and ": error: " in err[0] and "Traceback" not in err[0], err[0]
    assert _fill(phrase, ground) in err[0], err[0]
    if absent is not None:
        assert not os.path.lexists(_fill(absent, ground))
    assert sorted(p.name for p in ground.iterdir()) == before  # no probe, staging or partial file left
    assert not (ground / "pwned").exists()


def test_the_malicious_pickle_message_never_suggests_unsafe_loading(ground, capsys):
    assert main(["import-checkpoint", str(ground / "evil.pth"), "--out", str(ground / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "posix.system" in err and "weights_only" not in err and "trusted" not in err
    assert not (ground / "pwned").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through folder permissions")
def test_an_output_folder_without_write_permission(ground, capsys):
    locked = ground / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert main(["segment", str(ground / "img.png"), "--out", str(locked / "out")]) == 2
        assert "Permission denied" in capsys.readouterr().err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.slow
def test_a_diverging_training_stops_with_one_sentence_and_writes_no_model(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_train("--lr", "1e30", "--synthetic-train", "6", "--out", str(out))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged: the loss became nan" in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error, phrase", [
    (MemoryError(), "ran out of memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: not enough memory: you tried to "
                  "allocate 4831838208 bytes."), "ran out of memory"),
    (RecursionError("maximum recursion depth exceeded while decoding a JSON array"), "nested too deeply"),
    (cv2.error("OpenCV(4.10.0) imgcodecs/src/loadsave.cpp:77: error: (-215:Assertion failed) pixels <= "
               "CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize'\n"), "OpenCV cannot process"),
])
def test_machine_errors_while_working_are_one_sentence(error, phrase, ground, monkeypatch, capsys):
    """What the allocator, the JSON parser or OpenCV raise deep inside a job reaches the user as one sentence."""
    import seg_ros.tools.segment

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(seg_ros.tools.segment, "segment_files", fail)
    out = ground / "out"
    assert main(["segment", str(ground / "img.png"), "--out", str(out), "--device", "cpu"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and phrase in err[0], err
    assert not out.exists()


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, seg_ros.cli; print(sorted(m for m in ('torch', 'cv2', 'rosbags') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _interrupted(argv: list[str], *, after_s: float | None = None, after_line: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m seg_ros.cli argv``; send SIGINT after ``after_s`` or once stdout shows ``after_line``."""
    proc = subprocess.Popen([sys.executable, "-m", "seg_ros.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if after_line is not None:
        for line in proc.stdout:
            if line.startswith(after_line):
                break
    else:
        time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def long_video(tmp_path):
    """300 frames of 240x320: several seconds of segmenting on a CPU."""
    path = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for i in range(300):
        writer.write(np.roll(frame, i, axis=1))
    writer.release()
    return path


@pytest.mark.parametrize("when", ["0.3 s", "2 s", "mid-segmentation"])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(when, long_video, tmp_path):
    out = tmp_path / "out"
    argv = ["segment", str(long_video), "--out", str(out), "--device", "cpu", "--quiet"]
    if when == "mid-segmentation":
        res = _interrupted(argv, after_line="model: ")
    else:
        res = _interrupted(argv, after_s=float(when.split()[0]))
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 130, res.stderr
    assert len(err) == 1 and err[0] in ("seg-ros: interrupted", "seg-ros segment: interrupted"), err
    assert not out.exists()


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    """A real two-frame 64x64 synthetic bag with ground truth."""
    bag = tmp_path_factory.mktemp("bags") / "drive"
    assert main(["bag-from-dataset", "--synthetic", "2", "--size", "64x64", "--out", str(bag), "--quiet"]) == 0
    return bag


@pytest.mark.parametrize("where", ["--max-pixels", "parameter file"])
def test_evaluate_holds_bag_frames_to_the_pixel_budget(where, small_bag, random_model_file, tmp_path, capsys):
    argv = ["evaluate", "--bag", str(small_bag), "--model", str(random_model_file), "--device", "cpu",
            "--out", str(tmp_path / "report"), "--no-charts", "--quiet"]
    if where == "--max-pixels":
        argv += ["--max-pixels", "4000"]
    else:
        params = tmp_path / "params.yaml"
        params.write_text("/**:\n  ros__parameters:\n    max_pixels: 4000\n")
        argv += ["--params", str(params)]
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "64x64 = 4,096 pixels, more than the pixel budget of 4,000" in err[0], err
    assert not (tmp_path / "report").exists()
    # the command line overrides the file: a budget that fits lets the same run through
    assert main([*argv, "--max-pixels", "4096"]) == 0
    assert (tmp_path / "report" / "report.json").exists()


def test_an_unexpected_error_is_one_line_exit_1_and_a_traceback_on_request(ground, monkeypatch, capsys):
    import seg_ros.tools.segment

    def fail(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(seg_ros.tools.segment, "segment_files", fail)
    argv = ["segment", str(ground / "img.png"), "--out", str(ground / "out"), "--device", "cpu"]
    assert main(argv) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "internal error: ValueError: an internal inconsistency" in err[0], err
    monkeypatch.setenv("SEG_ROS_DEBUG", "1")
    with pytest.raises(ValueError, match="an internal inconsistency"):
        main(argv)


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8],
                         ids=["empty", "garbage"])
def test_an_undecodable_video_is_one_line_on_stderr(tmp_path, capfd, content):
    """FFmpeg logs its own complaint ("moov atom not found") to fd 1 or 2 unless told not to."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(content)
    assert main(["segment", str(video), "--out", str(tmp_path / "out")]) == 2
    out, err = capfd.readouterr()
    assert out == "" and [ln for ln in err.splitlines() if ln.strip()] == [
        f"seg-ros segment: error: cannot read video {video}: not a video OpenCV can decode."]
    assert not (tmp_path / "out").exists()
