import hashlib
import json
import os
import struct

import pytest
import torch
from safetensors.torch import save, save_file

from seg_ros.core.labels import CAMVID, CITYSCAPES
from seg_ros.models import build
from seg_ros.models.modelfile import (
    CHECKSUM_KEY,
    METADATA_KEY,
    ModelFileError,
    ModelMeta,
    load_model,
    read_meta,
    resolve_model,
    save_model,
    shipped_models,
)


def _file_sha256(meta_json: str, blob: bytes) -> str:
    """The format's checksum: SHA-256 of the metadata JSON text followed by the tensor bytes (after the header)."""
    (header_len,) = struct.unpack("<Q", blob[:8])
    return hashlib.sha256(meta_json.encode() + blob[8 + header_len:]).hexdigest()


def _meta(**kw) -> ModelMeta:
    base = dict(architecture="liteseg_mobilenetv2", label_set=CAMVID, input_size=(360, 480),
                provenance={"dataset": "unit", "epochs": 3, "val_miou": 0.5, "date": "2026-01-01", "command": "x"})
    base.update(kw)
    return ModelMeta(**base)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("liteseg_mobilenetv2", 11).eval()


@pytest.mark.slow
def test_round_trip_gives_identical_outputs(model, tmp_path):
    path = save_model(tmp_path / "m.safetensors", model, _meta())
    loaded, meta = load_model(path)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert meta.architecture == "liteseg_mobilenetv2" and meta.label_set == CAMVID
    assert meta.input_size == (360, 480) and meta.provenance["val_miou"] == 0.5
    assert meta.provenance["seg_ros_version"]
    assert read_meta(path) == meta
    assert not list(tmp_path.glob(".*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.slow
def test_fp16_file_is_half_the_size_and_close(model, tmp_path):
    full = save_model(tmp_path / "full.safetensors", model, _meta())
    half = save_model(tmp_path / "half.safetensors", model, _meta(), half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert half.stat().st_size < 10 * 2**20
    loaded, _ = load_model(half)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        a, b = model(x), loaded(x)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.99


def test_metadata_is_plain_json_in_the_header(model, tmp_path):
    path = save_model(tmp_path / "m.safetensors", model, _meta())
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    d = json.loads(header["__metadata__"][METADATA_KEY])
    assert d["label_set"]["names"][0] == "Sky"
    assert d["normalization"]["mean"] == [0.485, 0.456, 0.406]


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 7, 100, 4000, -1000])
def test_truncated_file(model, tmp_path, keep):
    data = save_model(tmp_path / "m.safetensors", model, _meta()).read_bytes()
    bad = tmp_path / "t.safetensors"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(bad)


def test_corrupt_tensor_bytes_are_detected(model, tmp_path):
    data = bytearray(save_model(tmp_path / "m.safetensors", model, _meta()).read_bytes())
    data[-5000] ^= 0x40
    bad = tmp_path / "c.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="is corrupt: its content does not match the stored SHA-256"):
        load_model(bad)


@pytest.mark.parametrize("where,message", [
    (slice(3, 6), "truncated or corrupt"),  # header length
    (slice(9, 12), "truncated or corrupt"),  # header JSON syntax
    ("date", "is corrupt: its content does not match"),  # a value inside the seg_ros description
])
def test_corrupt_header_is_detected(model, tmp_path, where, message):
    data = bytearray(save_model(tmp_path / "m.safetensors", model, _meta()).read_bytes())
    if where == "date":  # still valid JSON, so only the checksum can notice
        at = data.index(b"2026-01-01")
        where = slice(at, at + 10)
        data[where] = b"2026-01-02"
    else:
        data[where] = b"#" * (where.stop - where.start)
    bad = tmp_path / "c.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


def test_plain_safetensors_without_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(ModelFileError, match="not a seg_ros model file"):
        load_model(path)


def test_wrong_class_count(tmp_path):
    # Tensors of a 19-class model described as an 11-class CamVid model.
    path = save_model(tmp_path / "m.safetensors", build("liteseg_mobilenetv2", 19), _meta())
    with pytest.raises(ModelFileError, match=r"last_conv\.6\.weight has shape \(19, 96, 1, 1\).*wrong class count"):
        load_model(path)
    path = save_model(tmp_path / "c.safetensors", build("liteseg_mobilenetv2", 11), _meta(label_set=CITYSCAPES))
    with pytest.raises(ModelFileError, match="expects"):
        load_model(path)


def test_wrong_architecture(model, tmp_path):
    path = save_model(tmp_path / "m.safetensors", model, _meta(architecture="deeplabv9"))
    with pytest.raises(ModelFileError, match="cannot build.*unknown model architecture 'deeplabv9'"):
        load_model(path)
    backbone_only = torch.nn.Sequential()
    backbone_only.add_module("backbone", model.backbone)
    path = save_model(tmp_path / "b.safetensors", backbone_only, _meta())
    with pytest.raises(ModelFileError, match="does not match architecture 'liteseg_mobilenetv2'.*missing"):
        load_model(path)


def test_malformed_metadata(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={METADATA_KEY: "{not json"})
    with pytest.raises(ModelFileError, match="no seg_ros_sha256 entry"):
        read_meta(path)
    for text, message in (("{not json", "malformed seg_ros metadata"), (json.dumps({"format": 99}), "format 99")):
        blob = save({"w": torch.zeros(3)}, metadata={METADATA_KEY: text})
        save_file({"w": torch.zeros(3)}, str(path),
                  metadata={METADATA_KEY: text, CHECKSUM_KEY: _file_sha256(text, blob)})
        with pytest.raises(ModelFileError, match=message):
            read_meta(path)


def test_resolve_model(model, tmp_path):
    path = save_model(tmp_path / "m.safetensors", model, _meta())
    assert resolve_model(str(path)) == path
    for name, p in shipped_models().items():
        assert resolve_model(name) == p
    with pytest.raises(ModelFileError, match="unknown model 'nonesuch'"):
        resolve_model("nonesuch")
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_model(tmp_path / "missing.safetensors")
