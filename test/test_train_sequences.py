"""Honest validation: frames grouped by sequence, held-out sequences and k-fold cross-validation by sequence."""

import json
import math
import resource
from collections import Counter

import cv2
import pytest

from seg_ros.cli import main
from seg_ros.core.errors import ConfigError, SegRosError
from seg_ros.models.modelfile import read_meta
from seg_ros.synthetic import generate_scene
from seg_ros.train import FoldScore, FoldsReport, TrainConfig, parse_folds, read_folds_report, validation_summary
from seg_ros.train.folds import cross_validate, fold_configs, fold_model_path, folds_report_path
from seg_ros.train.frames import folder_sources
from seg_ros.train.sequences import parse_grouping, prefix_group, sequence_folds, split_by_sequence

FRAMES = {"train": ["A_000", "A_001", "A_002", "A_003", "B_000", "B_001"], "val": ["B_002", "B_003"]}
"""Two sequences; B spreads over both splits, as CamVid's 0016E5 does."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A CamVid-layout folder of 8 synthetic 64x96 frames (JPEG images, PNG labels)."""
    root = tmp_path_factory.mktemp("seq") / "data"
    seed = 0
    for split, stems in FRAMES.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for stem in stems:
            scene = generate_scene(seed, (64, 96))
            seed += 1
            cv2.imwrite(str(root / split / "images" / f"{stem}.jpg"), scene.image[..., ::-1])
            cv2.imwrite(str(root / split / "labels" / f"{stem}.png"), scene.labels)
    return root


def _cfg(tmp_path, data, **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / "m.safetensors"), data=str(data), train_splits=("train", "val"), crop=(64, 96),
                epochs=1, batch_size=2, max_steps_per_epoch=2, pretrained=False, device="cpu", workers=0,
                command="pytest")
    base.update(kw)
    return TrainConfig(**base)


def test_prefix_grouping_takes_the_stem_before_the_last_underscore():
    assert prefix_group("0016E5_07959") == "0016E5"
    assert prefix_group("Seq05VD_f02370") == "Seq05VD"
    assert prefix_group("drive_2_000123") == "drive_2"
    assert parse_grouping("prefix").groups(["0001TP_006690", "0006R0_f01290"]) == ["0001TP", "0006R0"]
    for bad in ("frame0001", "_000"):
        with pytest.raises(ConfigError, match="has no '<sequence>_' prefix"):
            prefix_group(bad)
    with pytest.raises(ConfigError, match="--group-by must be prefix or list:FILE, not 'stem'"):
        parse_grouping("stem")


def test_a_group_list_file_assigns_frames_to_groups(tmp_path):
    lst = tmp_path / "groups.txt"
    lst.write_text("# frame group\nf001 north\n\nf002 north  # same drive\nf003 south\n")
    grouping = parse_grouping(f"list:{lst}")
    assert grouping.groups(["f003", "f001", "f002"]) == ["south", "north", "north"]
    with pytest.raises(ConfigError, match="frame 'f004' is not in the group list"):
        grouping.group_of("f004")
    for text, message in (("f001 north extra\n", "line 1 .* is not 'frame_stem group'"),
                          ("f001 a\nf001 b\n", "puts frame 'f001' in two groups"),
                          ("# nothing\n", "names no frame")):
        lst.write_text(text)
        with pytest.raises(ConfigError, match=message):
            parse_grouping(f"list:{lst}")
    with pytest.raises(ConfigError, match="group list .*missing.txt does not exist"):
        parse_grouping(f"list:{tmp_path / 'missing.txt'}")


def test_holding_out_sequences_and_dealing_folds():
    groups = ["a", "a", "b", "c", "c", "c", "b", "a"]
    train, val = split_by_sequence(groups, ["b"])
    assert val == [2, 6] and train == [0, 1, 3, 4, 5, 7]
    with pytest.raises(ConfigError, match="no frame belongs to sequence 'x'; the sequences are a, b, c"):
        split_by_sequence(groups, ["b", "x"])
    with pytest.raises(ConfigError, match="leaves no frame to train on"):
        split_by_sequence(groups, ["a", "b", "c"])
    assert sequence_folds(groups, None) == [["a"], ["c"], ["b"]]  # largest first; a and c tie on 3 frames
    assert sequence_folds(groups, 2) == [["a", "b"], ["c"]]
    with pytest.raises(ConfigError, match="4 folds need at least 4 sequences; the frames form 3"):
        sequence_folds(groups, 4)
    with pytest.raises(ConfigError, match="folds need at least 2 sequences; the frames form 1"):
        sequence_folds(["a", "a"], None)
    assert parse_folds("sequence") is None and parse_folds("3") == 3
    for bad in ("1", "two"):
        with pytest.raises(ConfigError, match="--folds must be"):
            parse_folds(bad)


def test_held_out_sequences_never_train_and_every_pooled_frame_is_used(tmp_path, dataset):
    every = sorted(s for stems in FRAMES.values() for s in stems)
    train, val, scheme = folder_sources(_cfg(tmp_path, dataset, val_sequences=("B",)))
    assert sorted(val.stems) == ["B_000", "B_001", "B_002", "B_003"]  # from both pooled splits
    assert {prefix_group(s) for s in train.stems} == {"A"}
    assert sorted(train.stems + val.stems) == every
    assert scheme == {"scheme": "held-out sequences", "group_by": "prefix", "held_out": ["B"],
                      "train_sequences": ["A"], "frames": {"train": 4, "val": 4}}
    image, labels = val[0]
    assert image.shape == (64, 96, 3) and labels.shape == (64, 96) and val.labels(0).shape == (64, 96)
    # With folds every pooled frame is validated exactly once, and never trained on in its own fold.
    validated = Counter()
    for fcfg in fold_configs(_cfg(tmp_path, dataset), None):
        train, val, _ = folder_sources(fcfg)
        assert not {prefix_group(s) for s in train.stems} & {prefix_group(s) for s in val.stems}
        validated.update(val.stems)
    assert sorted(validated) == every and set(validated.values()) == {1}


def test_pooled_splits_without_held_out_sequences_record_that_validation_was_trained_on(tmp_path, dataset):
    train, val, scheme = folder_sources(_cfg(tmp_path, dataset))
    assert len(train) == 8 and train.name == "data/train+val" and val.name == "data/val"
    assert scheme == {"scheme": "split", "train_splits": ["train", "val"], "val_split": "val", "held_out": False}
    train, val, scheme = folder_sources(_cfg(tmp_path, dataset, train_splits=("train",)))
    assert (len(train), len(val), scheme) == (6, 2, None)  # the plain split, as before


def _train_args(dataset, out, *extra):
    return ["train", "--data", str(dataset), "--splits", "train,val", "--out", str(out), "--epochs", "1",
            "--max-steps-per-epoch", "2", "--batch-size", "2", "--crop", "64x96", "--no-pretrained",
            "--workers", "0", "--device", "cpu", "--quiet", *extra]


@pytest.mark.slow
def test_two_fold_cross_validation_writes_fold_models_and_a_report(tmp_path, dataset, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_train_args(dataset, out, "--folds", "2")) == 0
    printed = capsys.readouterr().out
    report = read_folds_report(folds_report_path(out))
    assert [f.held_out for f in report.folds] == [["A"], ["B"]]
    assert [(f.train_frames, f.val_frames) for f in report.folds] == [(4, 4), (4, 4)]
    for f in report.folds:
        assert math.isfinite(f.miou) and 0.0 <= f.miou <= 1.0
        assert f.model == fold_model_path(out, f.fold).name
        meta = read_meta(tmp_path / f.model)
        scheme = meta.provenance["validation"]
        assert scheme["scheme"] == "held-out sequences" and scheme["held_out"] == f.held_out
        assert scheme["train_sequences"] == [s for s in ("A", "B") if s not in f.held_out]
        assert meta.provenance["val_miou"] == f.miou
        assert set(f.iou) == set(meta.label_set.names)
    assert report.mean_miou == pytest.approx(sum(f.miou for f in report.folds) / 2)
    assert json.loads(folds_report_path(out).read_text())["mean_miou"] == report.mean_miou
    assert f"{report.mean_miou:.4f}" in printed.splitlines()[-1] and not out.exists()
    # Run again: both folds have finished, so nothing trains and the report is the same.
    logs = []
    again = cross_validate(_cfg(tmp_path, dataset, batch_size=2), 2, progress=False, log=logs.append)
    assert sum("exists, skipped" in line for line in logs) == 2
    assert again.folds == report.folds and again.mean_miou == report.mean_miou
    with pytest.raises(ConfigError, match=r"fold model .*fold1.safetensors was trained with other settings \(lr\)"):
        cross_validate(_cfg(tmp_path, dataset, lr=0.5), 2, progress=False, log=logs.append)
    # More epochs: the folds are unfinished, and their checkpoints continue only when asked to.
    with pytest.raises(SegRosError, match="checkpoint .*fold1.ckpt.safetensors of fold 1 exists; pass --resume"):
        cross_validate(_cfg(tmp_path, dataset, epochs=2), 2, progress=False, log=logs.append)
    # A model trained on every frame records the cross-validation and says how honest its own score is.
    final = tmp_path / "final.safetensors"
    assert main(_train_args(dataset, final, "--cross-validation", str(folds_report_path(out)))) == 0
    prov = read_meta(final).provenance
    cv = prov["validation"]["cross_validation"]
    assert cv["fold_mious"] == [f.miou for f in report.folds] and cv["held_out"] == [["A"], ["B"]]
    on_disk = read_folds_report(folds_report_path(out))  # rewritten by the re-run above, with its command
    assert cv["fold_frames"] == [[4, 4], [4, 4]] and cv["command"] == on_disk.command == "pytest"
    assert cv["fold_epochs"] == [f.best_epoch for f in report.folds]
    summary = validation_summary(prov)
    assert "validation split val was also trained on" in summary
    assert f"2-fold cross-validation by sequence: mean mIoU {report.mean_miou:.4f}" in summary


@pytest.mark.slow
def test_val_sequences_train_once_and_record_the_held_out_sequences(tmp_path, dataset):
    out = tmp_path / "held.safetensors"
    assert main(_train_args(dataset, out, "--val-sequences", "A")) == 0
    prov = read_meta(out).provenance
    assert prov["validation"]["held_out"] == ["A"] and prov["val_dataset"] == "data/train+val[A]"
    assert prov["dataset"] == "data/train+val[B]"
    assert validation_summary(prov) == f"held-out sequences A: val mIoU {prov['val_miou']:.4f}"


def test_folds_report_round_trips_through_json():
    folds = [FoldScore(1, ["A"], 4, 4, 0.25, {"Sky": 0.5, "Pole": None}, 1, "m.fold1.safetensors"),
             FoldScore(2, ["B", "C"], 4, 4, 0.75, {"Sky": 1.0, "Pole": 0.5}, 2, "m.fold2.safetensors")]
    report = FoldsReport("data/train+val", ["train", "val"], "prefix", folds, "seg-ros train")
    assert report.mean_miou == 0.5
    back = FoldsReport.from_json(report.to_json())
    assert back == report
    assert back.table().splitlines()[-1].split() == ["mean", "0.5000"]
    with pytest.raises(ConfigError, match="not a cross-validation report"):
        FoldsReport.from_json('{"format": 1, "folds": []}')


@pytest.mark.parametrize("extra, message", [
    (["--val-sequences", "Z"], "no frame belongs to sequence 'Z'; the sequences are A, B."),
    (["--folds", "3"], "3 folds need at least 3 sequences; the frames form 2 (A, B)."),
    (["--folds", "1"], "--folds must be at least 2, not 1."),
    (["--folds", "2", "--val-sequences", "A"], "give either --folds or --val-sequences, not both."),
    (["--group-by", "list:/nonexistent/groups.txt", "--val-sequences", "A"],
     "group list /nonexistent/groups.txt does not exist"),
    (["--cross-validation", "/dev/zero"],
     "cross-validation report /dev/zero is a character device, not a regular file; give a file."),
    (["--cross-validation", "/"], "cross-validation report / is a folder, not a regular file; give a file."),
])
def test_bad_sequence_options_exit_2_with_one_sentence(tmp_path, dataset, capsys, extra, message):
    out = tmp_path / "m.safetensors"
    assert main(_train_args(dataset, out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--cross-validation", "--group-by"])
def test_a_2_gib_text_input_is_refused_by_its_size_before_it_is_read(tmp_path_factory, dataset, capsys, option):
    huge = tmp_path_factory.mktemp("huge") / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(2 << 30)  # sparse: costs no disk, and 2 GiB of memory if it were read
    extra = [option, str(huge)] if option == "--cross-validation" else [option, f"list:{huge}", "--val-sequences", "A"]
    out_dir = tmp_path_factory.mktemp("out")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert main(_train_args(dataset, out_dir / "m.safetensors", *extra)) == 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 512 << 10
    err = capsys.readouterr().err.strip()
    assert f"{huge} is larger than 4,194,304 bytes" in err and len(err.splitlines()) == 1, err
    assert list(out_dir.iterdir()) == []


def test_a_fold_model_recorded_before_a_newer_setting_counts_as_trained_with_its_default(tmp_path, dataset,
                                                                                         monkeypatch):
    from dataclasses import asdict, replace
    from pathlib import Path
    from types import SimpleNamespace

    import seg_ros.train.folds as folds

    cfg = _cfg(tmp_path, dataset)
    Path(cfg.out).write_bytes(b"a finished fold model")
    older = {k: v for k, v in asdict(cfg).items() if k not in ("out", "command", "data", "photometric")}
    monkeypatch.setattr(folds, "read_meta", lambda path: SimpleNamespace(provenance={"recipe": older}))
    assert folds.fold_finished(cfg)  # photometric off is what the older model was trained with
    with pytest.raises(ConfigError, match=r"trained with other settings \(photometric\)"):
        folds.fold_finished(replace(cfg, photometric=True))
