"""Training on real (small) inputs: synthetic scenes and a CamVid-layout folder written to tmp_path."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_ros.core.errors import InputError, SegRosError
from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.io.datasets import FolderDataset
from seg_ros.models.modelfile import load_model, read_meta
from seg_ros.pipeline import Segmenter
from seg_ros.synthetic import generate_scene
from seg_ros.train import Augment, TrainConfig, segmentation_loss, train, validate


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / "m.safetensors"), synthetic_train=16, synthetic_val=2, synthetic_size=(96, 128),
                crop=(64, 96), scale=(0.75, 1.25), epochs=2, batch_size=4, optimizer="adamw", lr=2e-3,
                device="cpu", workers=0, half=False, command="pytest")
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_training_lowers_the_loss_and_writes_a_model_with_provenance(tmp_path):
    res = train(_cfg(tmp_path, epochs=3), progress=False, log=lambda s: None)
    losses = [h.loss for h in res.history]
    assert len(losses) == 3
    assert losses[-1] < 0.8 * losses[0], losses
    meta = read_meta(res.model_path)
    prov = meta.provenance
    assert meta.architecture == "liteseg_mobilenetv2" and meta.label_set.name == "camvid"
    assert meta.input_size == (96, 128)
    assert prov["val_miou"] == pytest.approx(res.best_miou, abs=1e-4)
    assert prov["epochs"] == res.best_epoch and prov["pretrained"] == "imagenet"
    assert prov["dataset"].startswith("synthetic") and prov["command"] == "pytest" and prov["date"]
    assert set(prov["val_iou"]) == set(meta.label_set.names)
    model, _ = load_model(res.model_path)
    assert isinstance(model, torch.nn.Module)


@pytest.mark.slow
def test_resume_continues_after_the_last_epoch(tmp_path):
    first = train(_cfg(tmp_path, epochs=1), progress=False, log=lambda s: None)
    assert len(first.history) == 1
    logs = []
    second = train(_cfg(tmp_path, epochs=2), progress=False, log=logs.append)
    assert any("resumed" in line and "after epoch 1" in line for line in logs)
    assert [h.epoch for h in second.history] == [1, 2]
    assert second.history[0] == first.history[0]
    with pytest.raises(SegRosError, match="different run.*lr"):
        train(_cfg(tmp_path, epochs=3, lr=0.5), progress=False, log=lambda s: None)


@pytest.mark.slow
def test_sgd_nesterov_recipe_runs_on_a_camvid_layout_folder(tmp_path):
    root = tmp_path / "data"
    for split, seeds in (("train", range(8)), ("val", range(100, 102))):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for s in seeds:
            scene = generate_scene(s, (72, 96))
            labels = scene.labels.copy()
            labels[:4] = 11  # a void band, ignored in the loss and in the metrics
            cv2.imwrite(str(root / split / "images" / f"f{s:03d}.jpg"), scene.image[..., ::-1])
            cv2.imwrite(str(root / split / "labels" / f"f{s:03d}.png"), labels)
    res = train(_cfg(tmp_path, data=str(root), optimizer="sgd", lr=0.01, epochs=1, crop=(64, 64)),
                progress=False, log=lambda s: None)
    meta = read_meta(res.model_path)
    assert meta.input_size == (72, 96)
    assert meta.provenance["dataset"] == "data/train"
    assert 0.0 <= res.best_miou <= 1.0


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        FolderDataset(tmp_path, "train")
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "train" / "images" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="have no label PNG"):
        FolderDataset(tmp_path, "train")
    cv2.imwrite(str(tmp_path / "train" / "labels" / "a.png"), np.zeros((5, 4), np.uint8))
    with pytest.raises(InputError, match="label a.png is 4x5 but image is 4x4"):
        FolderDataset(tmp_path, "train")[0]


def test_augment_keeps_labels_aligned_and_pads_with_ignore():
    img = np.zeros((40, 60, 3), np.uint8)
    lab = np.zeros((40, 60), np.uint8)
    img[:, 30:] = 200
    lab[:, 30:] = 1
    aug = Augment(crop=(64, 64), scale=(1.0, 1.0), flip=True, ignore_id=255)
    for seed in range(6):
        im, lb = aug(img, lab, np.random.default_rng(seed))
        assert im.shape == (64, 64, 3) and lb.shape == (64, 64)
        assert (lb[40:] == 255).all()  # padding at the bottom; flips move the right-hand padding left
        valid = lb != 255
        assert ((im[..., 0] == 200) == (lb == 1))[valid].all()
        assert (lb == 255).sum() == 64 * 64 - 40 * 60


def test_ohem_averages_only_the_hard_pixels():
    target = torch.zeros(1, 4, 8, dtype=torch.long)
    logits = torch.zeros(1, 3, 4, 8)
    logits[:, 0] = 10.0  # every pixel confidently class 0 ...
    logits[0, 0, 0, :4] = -10.0  # ... except four hard ones
    target[0, 3, 7] = 255  # one ignored pixel
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    hard = per_pixel[0, 0, :4]
    assert segmentation_loss(logits, target, 255, "ohem") == pytest.approx(hard.mean().item())
    assert segmentation_loss(logits, target, 255, "ce") == pytest.approx(per_pixel.sum().item() / 31)
    # Too few hard pixels: the hardest 1/16 of the valid ones are kept instead (here 1 of 31 -> just 1).
    easy = torch.zeros(1, 3, 4, 8)
    easy[:, 0] = 10.0
    easy[0, 0, 2, 2] = 2.0
    assert segmentation_loss(easy, target, 255, "ohem").item() == pytest.approx(
        F.cross_entropy(easy, target, ignore_index=255, reduction="none").max().item())
    with pytest.raises(SegRosError, match="loss must be ce or ohem"):
        segmentation_loss(logits, target, 255, "focal")


def test_weighted_losses_are_weighted_means_over_the_counted_pixels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 7, generator=g)
    target = torch.randint(0, 3, (2, 5, 7), generator=g)
    target[0, 0, :3] = 255
    weight = torch.tensor([0.5, 2.0, 4.0])
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    w = torch.where(target == 255, torch.tensor(0.0), weight[target.clamp(max=2)])
    assert segmentation_loss(logits, target, 255, "ce", weight).item() == pytest.approx(
        ((per_pixel * w).sum() / w.sum()).item(), rel=1e-5)
    hard = per_pixel > -np.log(0.7)
    assert segmentation_loss(logits, target, 255, "ohem", weight).item() == pytest.approx(
        ((per_pixel * w)[hard].sum() / w[hard].sum()).item(), rel=1e-5)
    ones = torch.ones(3)
    for kind in ("ce", "ohem"):
        assert segmentation_loss(logits, target, 255, kind, ones).item() == pytest.approx(
            segmentation_loss(logits, target, 255, kind).item(), rel=1e-5)


def test_median_frequency_weights_match_the_definition():
    from seg_ros.train.class_balance import class_pixel_counts, class_weights, median_frequency_weights

    a = np.zeros((4, 5), np.uint8)  # 20 px: 12 of class 0, 6 of class 1, 2 ignored
    a[3] = 1
    a[2, :1] = 1
    a[2, 1:3] = 255
    b = np.full((2, 5), 2, np.uint8)  # 10 px, all class 2
    b[0, 0] = 0
    pixels, frame_pixels = class_pixel_counts([a, b], 2, 4)
    assert pixels.tolist() == [13, 6, 9, 0]
    assert frame_pixels.tolist() == [28, 18, 10, 0]  # the ignored pixels count in no frame total
    freq = np.array([13 / 28, 6 / 18, 9 / 10])
    expected = np.median(freq) / freq
    w = median_frequency_weights(pixels, frame_pixels)
    np.testing.assert_allclose(w[:3], expected, rtol=1e-6)
    assert w[3] == 1.0 and w.dtype == np.float32
    assert class_weights("none", [a, b], 2, 4) is None
    np.testing.assert_allclose(class_weights("median-frequency", lambda i: [a, b][i], 2, 4), w)
    with pytest.raises(SegRosError, match="class weights must be one of none, median-frequency"):
        class_weights("inverse", [a], 1, 4)
    with pytest.raises(SegRosError, match="no pixel of any class"):
        class_weights("median-frequency", [np.full((2, 2), 255, np.uint8)], 1, 4)


@pytest.mark.slow
def test_init_fine_tunes_from_a_model_file_and_records_its_parent(tmp_path):
    import hashlib

    parent = train(_cfg(tmp_path / "p", epochs=1), progress=False, log=lambda s: None).model_path
    logs = []
    # lr 0 keeps the learned weights (only BatchNorm statistics move in training mode), so the child's
    # parameters must equal the parent's.
    child = train(_cfg(tmp_path / "c", epochs=1, lr=0.0, init=str(parent), class_weights="median-frequency"),
                  progress=False, log=logs.append)
    assert any(line.startswith(f"initialised every weight from {parent}") for line in logs)
    assert any(line.startswith("class weights (median-frequency): Sky ") for line in logs)
    prov = read_meta(child.model_path).provenance
    assert prov["pretrained"] == "fine-tuned"
    assert prov["init"]["file"] == parent.name
    assert prov["init"]["sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert prov["init"]["val_miou"] == read_meta(parent).provenance["val_miou"]
    assert prov["recipe"]["class_weights"] == "median-frequency"
    pm, _ = load_model(parent)
    cm, _ = load_model(child.model_path)
    p_state, c_state = pm.state_dict(), cm.state_dict()
    for k, v in p_state.items():
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(v, c_state[k]), k


def test_init_refuses_a_model_of_another_architecture_or_label_set(tmp_path):
    parent = train(_cfg(tmp_path / "p", epochs=1), progress=False, log=lambda s: None).model_path
    with pytest.raises(SegRosError, match="is liteseg_mobilenetv2 .*not liteseg_shufflenet"):
        train(_cfg(tmp_path / "a", architecture="liteseg_shufflenet", init=str(parent)),
              progress=False, log=lambda s: None)
    with pytest.raises(SegRosError, match="predicts the camvid classes, not those of voc"):
        train(_cfg(tmp_path / "b", label_set="voc", init=str(parent)), progress=False, log=lambda s: None)
    with pytest.raises(SegRosError, match="does not exist"):
        train(_cfg(tmp_path / "c", init=str(tmp_path / "missing.safetensors")), progress=False, log=lambda s: None)


def test_ema_model_is_validated_written_and_resumed(tmp_path):
    from safetensors import safe_open

    cfg = _cfg(tmp_path, epochs=1, ema=0.5, max_steps_per_epoch=3)
    res = train(cfg, progress=False, log=lambda s: None)
    with safe_open(str(cfg.checkpoint), "pt") as f:
        raw = {k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
        ema = {k[11:]: f.get_tensor(k) for k in f.keys() if k.startswith("ema.module.")}
        n_averaged = f.get_tensor("ema.n_averaged")
    assert int(n_averaged) == 3 and set(ema) == set(raw)
    written, _ = load_model(res.model_path)
    state = written.state_dict()
    assert all(torch.equal(state[k], ema[k]) for k in state)
    assert any(not torch.equal(state[k], raw[k]) for k in state if state[k].is_floating_point())
    # Resuming restores the average: one more epoch continues from 3 averaged steps to 6.
    train(replace(cfg, epochs=2), progress=False, log=lambda s: None)
    with safe_open(str(cfg.checkpoint), "pt") as f:
        assert int(f.get_tensor("ema.n_averaged")) == 6
    with pytest.raises(SegRosError, match="EMA decay must lie in"):
        train(_cfg(tmp_path / "bad", ema=1.0), progress=False, log=lambda s: None)


def _channels_last_model(path):
    """The model file's network as the Segmenter's torch backend holds it (channels-last weights)."""
    model, meta = load_model(path)
    return model.to(memory_format=torch.channels_last), meta


@pytest.mark.parametrize("keep_aspect", [True, False])
def test_validation_scores_exactly_the_segmenters_labels(random_model_file, keep_aspect):
    """Ground truth = the Segmenter's own labels, so validation's confusion matrix is diagonal only if its
    labels equal them pixel for pixel: frames of non-multiple sizes, shrunk and enlarged, other aspect ratios."""
    model, meta = _channels_last_model(random_model_file)
    images = [generate_scene(s, size).image for s, size in ((1, (72, 97)), (2, (50, 131)), (3, (130, 61)))]
    for input_size in ((64, 96), (45, 70)):
        seg = Segmenter(random_model_file, resolution=input_size, keep_aspect=keep_aspect, device="cpu")
        source = [(image, seg.segment(image, ["labels"]).labels) for image in images]
        cm = validate(model, replace(meta, input_size=input_size), source, torch.device("cpu"),
                      keep_aspect=keep_aspect)
        assert cm.total == sum(image.shape[0] * image.shape[1] for image in images)
        assert cm.matrix.trace() == cm.total, (input_size, keep_aspect)
        assert len(np.unique(np.concatenate([lab.ravel() for _, lab in source]))) > 1  # not a constant network


def test_validation_scores_against_the_ground_truth_as_the_segmenter_is_scored(random_model_file):
    model, meta = _channels_last_model(random_model_file)
    images = [generate_scene(s, (50, 131)) for s in (7, 8)]
    source = [(scene.image, scene.labels) for scene in images]
    seg = Segmenter(random_model_file, device="cpu")  # the model file's own input size and keep-aspect default
    expected = ConfusionMatrix(meta.label_set.num_classes, meta.label_set.ignore_id)
    for image, labels in source:
        expected.update(seg.segment(image, ["labels"]).labels, labels)
    model.train()
    got = validate(model, meta, source, torch.device("cpu"))
    assert model.training  # left in the mode it was in
    assert (got.matrix == expected.matrix).all() and got.total == expected.total


@pytest.mark.slow
def test_the_recorded_val_miou_is_what_the_segmenter_scores_with_the_written_model(tmp_path):
    """val_size 48x80 on 96x128 frames: the Segmenter keeps the aspect ratio (48x64), and so does validation."""
    from seg_ros.io.datasets import SyntheticDataset
    from seg_ros.train.config import SYNTHETIC_VAL_SEED

    cfg = _cfg(tmp_path, epochs=1, val_size=(48, 80))
    res = train(cfg, progress=False, log=lambda s: None)
    meta = read_meta(res.model_path)
    assert meta.input_size == (48, 80)
    seg = Segmenter(res.model_path, device="cpu")
    cm = ConfusionMatrix(meta.label_set.num_classes, meta.label_set.ignore_id)
    val = SyntheticDataset(SYNTHETIC_VAL_SEED, cfg.synthetic_val, cfg.synthetic_size)
    for i in range(len(val)):
        image, labels = val[i]
        cm.update(seg.segment(image, ["labels"]).labels, labels)
    assert meta.provenance["val_miou"] == round(cm.miou(), 5)


@pytest.mark.slow
def test_resuming_a_checkpoint_without_the_newer_settings_takes_their_defaults(tmp_path):
    import json as _json

    from safetensors import safe_open
    from safetensors.torch import save_file

    cfg = _cfg(tmp_path, epochs=1)
    train(cfg, progress=False, log=lambda s: None)
    with safe_open(str(cfg.checkpoint), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state = _json.loads(meta["seg_ros_checkpoint"])
    for newer in ("ema", "init", "class_weights", "val_size"):  # as written before these settings existed
        del state["config"][newer]
    save_file(tensors, str(cfg.checkpoint), metadata={"seg_ros_checkpoint": _json.dumps(state)})
    logs = []
    train(replace(cfg, epochs=2), progress=False, log=logs.append)
    assert any("after epoch 1" in line for line in logs)
    with pytest.raises(SegRosError, match="different run.*ema"):
        train(replace(cfg, epochs=3, ema=0.9), progress=False, log=lambda s: None)


def test_mixed_precision_is_fp16_on_cuda_and_bf16_only_on_a_cpu_that_has_it(monkeypatch):
    from seg_ros.train import loop
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    assert loop.mixed_precision(True, cpu) == torch.bfloat16 and loop.mixed_precision(True, cuda) == torch.float16
    assert loop.mixed_precision(False, cpu) is None and loop.mixed_precision(False, cuda) is None
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    assert loop.mixed_precision(True, cpu) is None  # emulated bf16 is slower than fp32
    assert [loop.precision_name(d) for d in (None, torch.float16, torch.bfloat16)] == \
        ["fp32", "fp16 mixed", "bf16 mixed"]


def test_cpu_bf16_flag_follows_the_cpus_feature_flags(monkeypatch):
    from seg_ros.core import machine
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert machine.cpu_has_native_bf16()
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "amx_tile"}))
    assert machine.cpu_has_native_bf16()
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not machine.cpu_has_native_bf16()


@pytest.mark.slow
def test_bf16_training_learns_and_records_its_precision(tmp_path, monkeypatch):
    from seg_ros.train import loop
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)  # torch runs bf16 on any CPU, if slowly
    mixed = train(_cfg(tmp_path / "bf16", epochs=3), progress=False, log=lambda s: None)
    plain = train(_cfg(tmp_path / "fp32", epochs=3, amp=False), progress=False, log=lambda s: None)
    for res, precision in ((mixed, "bf16 mixed"), (plain, "fp32")):
        losses = [h.loss for h in res.history]
        assert losses[-1] < 0.8 * losses[0], (precision, losses)
        assert read_meta(res.model_path).provenance["precision"] == precision
    # Same seed and data: the runs differ only by the steps' precision, and the weights stay fp32.
    assert mixed.history[0].loss != plain.history[0].loss
    assert abs(mixed.history[0].loss - plain.history[0].loss) < 0.05 * plain.history[0].loss
    model, _ = load_model(mixed.model_path)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
def test_keep_last_writes_the_schedules_last_epoch_whatever_it_scores(tmp_path):
    logs = []
    res = train(_cfg(tmp_path, epochs=3, keep="last"), progress=False, log=logs.append)
    last = res.history[-1]
    prov = read_meta(res.model_path).provenance
    assert (res.best_epoch, res.best_miou) == (3, last.val_miou)
    assert prov["epochs"] == 3 and prov["val_miou"] == round(last.val_miou, 5)
    assert not any("new best" in line for line in logs)
    with pytest.raises(SegRosError, match="kept epoch must be best or last"):
        train(_cfg(tmp_path, keep="first"), progress=False, log=lambda s: None)
