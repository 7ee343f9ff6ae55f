"""Caches that verify their content and their source: ONNX exports, int8 models, the complexity table, and
cache folders that cannot be used. Real files (the shipped model, ONNX Runtime on the CPU) in tmp_path."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from seg_ros.cli import main
from seg_ros.core.cache_entry import CacheDirError, CacheEntry, ensure_cache_dir, seal, sha256_json, unseal
from seg_ros.models.modelfile import file_sha256, resolve_model
from seg_ros.pipeline import Segmenter
from seg_ros.runtime import RuntimeOptions
from seg_ros.runtime.export import cached_export, load_cached_export
from seg_ros.runtime.onnx_model import SIDECAR_KEY, load_onnx_model
from seg_ros.synthetic import generate_scene

SHIPPED = "liteseg_mobilenetv2_synthetic"
SIZE = (64, 96)
"""Inference size of these tests: small, so every run is quick; the cached export is dynamic anyway."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A cache folder holding the shipped model's verified export (exported once for the module)."""
    root = tmp_path_factory.mktemp("pristine")
    cached_export(resolve_model(SHIPPED), root)
    return root


@pytest.fixture
def cache(pristine, tmp_path) -> Path:
    """A private copy of the pristine cache, free to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "cache"))


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return generate_scene(7, (120, 180)).image


def _segment(cache_dir: Path, frame: np.ndarray, **kw) -> np.ndarray:
    opts = RuntimeOptions(cache_dir=str(cache_dir), fallback=False, **kw.pop("runtime", {}))
    seg = Segmenter(SHIPPED, resolution=SIZE, keep_aspect=False, device="cpu", backend="onnxruntime",
                    runtime=opts, **kw)
    return seg.segment(frame).labels


def _only(folder: Path, pattern: str) -> Path:
    (p,) = folder.glob(pattern)
    return p


def _export(cache_dir: Path) -> Path:
    return _only(cache_dir / "onnx", "*[0-9a-f].onnx")


def _flip_weights(path: Path, count: int = 1024) -> None:
    """Flip ``count`` bytes inside the largest weight tensor; the file stays a valid ONNX model."""
    raw = max((t.raw_data for t in onnx.load(str(path)).graph.initializer), key=len)
    data = bytearray(path.read_bytes())
    at = data.find(raw[:256])
    assert at > 0 and len(raw) > count
    for i in range(at, at + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _runtime_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "seg_ros.runtime" and r.levelno >= logging.WARNING]


@pytest.mark.slow
def test_flipped_bytes_in_the_cached_export_are_rebuilt(cache, frame, caplog):
    clean = _segment(cache, frame)
    onnx_file = _export(cache)
    _flip_weights(onnx_file)
    assert load_onnx_model(onnx_file).meta.label_set.num_classes == 11  # still a readable ONNX: only the hash tells
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        labels = _segment(cache, frame)
    (line,) = _runtime_lines(caplog)
    assert line == (f"ONNX export cache entry {onnx_file} is unusable: its {onnx_file.name} does not match the "
                    "recorded SHA-256 (corrupt or replaced); rebuilding it.")
    np.testing.assert_array_equal(labels, clean)
    assert CacheEntry.beside(onnx_file, json.loads(onnx_file.with_name(onnx_file.stem + ".manifest.json")
                                                   .read_text())["source"]).verify() is True


def _other_model(path: Path, out: Path, model_sha256: str | None = None) -> Path:
    """A valid ONNX of another model: the same graph with other weights (and, optionally, provenance)."""
    proto = onnx.load(str(path))
    big = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    big.raw_data = (np.frombuffer(big.raw_data, np.float32) * -1.0).astype(np.float32).tobytes()
    if model_sha256 is not None:
        (meta,) = [p for p in proto.metadata_props if p.key == SIDECAR_KEY]
        desc = json.loads(meta.value)
        desc["provenance"]["model_sha256"] = model_sha256
        meta.value = json.dumps(desc)
    onnx.checker.check_model(proto)
    out.write_bytes(proto.SerializeToString())
    return out


@pytest.mark.slow
def test_another_models_onnx_under_the_key_is_rebuilt(cache, frame, tmp_path, caplog):
    clean = _segment(cache, frame)
    onnx_file = _export(cache)
    other = _other_model(onnx_file, tmp_path / "other.onnx")
    shutil.copyfile(other, onnx_file)
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        labels = _segment(cache, frame)
    assert "does not match the recorded SHA-256 (corrupt or replaced); rebuilding it." in caplog.text
    np.testing.assert_array_equal(labels, clean)
    assert file_sha256(onnx_file) != file_sha256(other)


@pytest.mark.slow
def test_a_substitute_with_a_forged_manifest_is_caught_by_its_embedded_source(cache, tmp_path, caplog):
    """Even a manifest rewritten to match the substitute does not make another model's export usable."""
    onnx_file = _export(cache)
    manifest = onnx_file.with_name(onnx_file.stem + ".manifest.json")
    rec = json.loads(manifest.read_text())
    _other_model(onnx_file, onnx_file, model_sha256="f" * 64)
    rec.update(content_bytes=onnx_file.stat().st_size, content_sha256=file_sha256(onnx_file))
    manifest.write_text(json.dumps(rec))
    entry = CacheEntry.beside(onnx_file, rec["source"], "ONNX export")
    assert entry.verify() is True  # the forged manifest vouches for the file ...
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        assert load_cached_export(entry, rec["source"]["model_sha256"]) is None  # ... its embedded source does not
    assert "it was exported from another model file (SHA-256 ffffffffffff…" in caplog.text
    assert not onnx_file.exists() and not manifest.exists()


def _calibration_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(generate_scene(300 + i, SIZE).image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.slow
def test_truncated_flipped_or_unvouched_int8_model_is_rebuilt(cache, frame, tmp_path, caplog):
    calib = {"calibration": str(_calibration_folder(tmp_path)), "calibration_frames": 2}
    clean = _segment(cache, frame, precision="int8", runtime=calib)
    q = _only(cache / "int8", "*[0-9a-f].onnx")
    digest = file_sha256(q)
    manifest = q.with_name(f"{q.stem}.manifest.json")
    for damage, reason in ((lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                            f"its {q.name} does not match the recorded size"),
                           (_flip_weights, f"its {q.name} does not match the recorded SHA-256"),
                           (lambda p: manifest.unlink(), f"its manifest {manifest.name} is missing"),
                           (lambda p: manifest.write_text("{garbled"), f"its manifest {manifest.name} is unreadable")):
        damage(q)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
            labels = _segment(cache, frame, precision="int8", runtime=calib)
        (line,) = _runtime_lines(caplog)
        assert line.startswith(f"int8 model cache entry {q} is unusable: {reason}")
        assert line.endswith("; rebuilding it.")
        np.testing.assert_array_equal(labels, clean)
        assert file_sha256(q) == digest  # quantization is deterministic: the same model again


# -- the shared entry logic, on small files -------------------------------------------------------------------------

SRC = {"model_sha256": "a" * 64, "torch": "2.9.0", "shape": (1, 3, 8, 8)}


def _entry(tmp_path: Path, source=SRC) -> CacheEntry:
    return CacheEntry.beside(tmp_path / "entries" / "thing-1234.bin", source, "test")


def test_entry_round_trip_is_atomic_and_records_both_hashes(tmp_path):
    entry = _entry(tmp_path)
    path, built = entry.get_or_build(lambda tmp: tmp.write_bytes(b"x" * 100))
    assert built and path.read_bytes() == b"x" * 100
    assert entry.get_or_build(lambda tmp: pytest.fail("rebuilt a valid entry")) == (path, False)
    assert sorted(p.name for p in path.parent.iterdir()) == ["thing-1234.bin", "thing-1234.manifest.json"]
    rec = entry.record()
    assert rec["source"] == {**SRC, "shape": [1, 3, 8, 8]} and rec["source_sha256"] == sha256_json(rec["source"])
    assert (rec["content"], rec["content_bytes"], rec["what"]) == ("thing-1234.bin", 100, "test")
    assert rec["content_sha256"] == file_sha256(path) and rec["build_seconds"] >= 0
    assert entry.load_bytes() == b"x" * 100


def test_failed_build_leaves_no_entry(tmp_path):
    entry = _entry(tmp_path)

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("ran out of memory")

    with pytest.raises(RuntimeError):
        entry.get_or_build(boom)
    assert list((tmp_path / "entries").iterdir()) == []


def test_an_entry_of_another_source_is_stale(tmp_path, caplog):
    _entry(tmp_path).store_bytes(b"old")
    newer = _entry(tmp_path, {**SRC, "torch": "2.10.0"})
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        assert newer.get_or_build(lambda tmp: tmp.write_bytes(b"new"))[1]
    assert "it was made from another source (stale: torch differ)" in caplog.text
    assert newer.load_bytes() == b"new"


@pytest.mark.parametrize("damage,reason", [
    (lambda m: m.unlink(), "its manifest thing-1234.manifest.json is missing (an interrupted write)"),
    (lambda m: m.write_text('{"format": 1, "source": '), "its manifest thing-1234.manifest.json is unreadable"),
    (lambda m: m.write_text("[]"), "is not a seg_ros cache manifest"),
    (lambda m: m.write_text(m.read_text().replace('"2.9.0"', '"2.8.0"')), "does not match its own source hash"),
    (lambda m: m.with_name("thing-1234.bin").write_bytes(b"y" * 100), "does not match the recorded SHA-256"),
    (lambda m: m.with_name("thing-1234.bin").unlink(), "its thing-1234.bin cannot be read"),
])
def test_damaged_entries_are_rebuilt_with_one_line(tmp_path, caplog, damage, reason):
    entry = _entry(tmp_path)
    entry.store_bytes(b"x" * 100)
    damage(entry.manifest)
    with caplog.at_level(logging.WARNING, logger="seg_ros.runtime"):
        assert entry.get_or_build(lambda tmp: tmp.write_bytes(b"fresh")) == (entry.content, True)
    (line,) = _runtime_lines(caplog)
    assert line.startswith(f"test cache entry {entry.content} is unusable: ") and reason in line
    assert entry.load_bytes() == b"fresh"


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write in: read-only for a normal user; root ignores modes, so /sys then."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir(mode=0o500)
        return d / "cache"
    if not Path("/sys").is_dir():
        pytest.skip("needs /sys as a folder root cannot write in")
    return Path("/sys/seg_ros_cache")


def test_unusable_cache_folders_are_one_sentence(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheDirError) as e:
        ensure_cache_dir(tmp_path / "file" / "cache" / "onnx")
    assert str(e.value) == (f"cache folder {tmp_path / 'file' / 'cache' / 'onnx'} cannot be created because "
                            f"{tmp_path / 'file'} is a file; remove it or set runtime.cache_dir (--cache-dir) or "
                            "$SEG_ROS_CACHE_DIR to a writable folder.")
    with pytest.raises(CacheDirError, match=r"is not writable; set runtime.cache_dir \(--cache-dir\) or "
                                            r"\$SEG_ROS_CACHE_DIR to a writable folder\.$"):
        ensure_cache_dir(_unwritable(tmp_path))
    entry = _entry(tmp_path)
    entry.content.mkdir(parents=True)  # a folder where a file belongs
    with pytest.raises(CacheDirError, match="thing-1234.bin is a folder where seg_ros keeps a test cache file"):
        entry.get_or_build(lambda tmp: tmp.write_bytes(b"x"))


def test_segmenter_refuses_an_unusable_cache_before_exporting(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    import seg_ros.runtime.export as ex

    monkeypatch.setattr(ex, "export_onnx", lambda *a, **k: pytest.fail("exported into an unusable cache"))
    for runtime, env in (({"cache_dir": str(tmp_path / "file" / "cache")}, None),
                         ({}, str(tmp_path / "file" / "env-cache"))):
        if env:
            monkeypatch.setenv("SEG_ROS_CACHE_DIR", env)
        with pytest.raises(CacheDirError, match="is a file; remove it or set runtime.cache_dir"):
            Segmenter(SHIPPED, device="cpu", backend="onnxruntime", runtime=RuntimeOptions(fallback=False, **runtime))
    cache = tmp_path / "cache"
    (cache / "onnx").parent.mkdir()
    (cache / "onnx").write_text("a file where the export folder belongs")
    with pytest.raises(CacheDirError, match=f"because {cache / 'onnx'} is a file"):
        Segmenter(SHIPPED, device="cpu", backend="onnxruntime", runtime=RuntimeOptions(cache_dir=str(cache)))


def test_cli_with_an_unusable_cache_exits_2_with_one_line(tmp_path, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "file").write_text("x")
    out = tmp_path / "out"
    assert main(["segment", str(img), "--backend", "onnxruntime", "--device", "cpu", "--out", str(out),
                 "--cache-dir", str(tmp_path / "file" / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'file'} is a file" in err
    assert not out.exists()


# -- the complexity table --------------------------------------------------------------------------------------------

def test_sealed_records_verify_content_and_source():
    rec = json.loads(json.dumps(seal("t", SRC, entries={"a": 1})))
    assert unseal(rec, SRC) == {"entries": {"a": 1}}
    assert "stale: torch differ" in unseal(rec, {**SRC, "torch": "x"})
    assert "does not match the recorded SHA-256" in unseal({**rec, "entries": {"a": 2}}, SRC)
    assert "not a seg_ros cache manifest" in unseal(["no"], SRC)


def test_complexity_table_is_verified_and_never_fatal(tmp_path, monkeypatch, caplog):
    from seg_ros.models import complexity as cx

    args = ("liteseg_mobilenetv2", 11, ((32, 32),))
    monkeypatch.setenv("SEG_ROS_CACHE_DIR", str(tmp_path / "c"))
    cx.clear_memory_cache()
    c = cx.complexity(*args)
    path = tmp_path / "c" / cx.CACHE_FILE
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    entry["params"] = 1  # an edited table: its SHA-256 no longer matches, so it is measured again
    path.write_text(json.dumps(data))
    cx.clear_memory_cache()
    with caplog.at_level(logging.WARNING, logger="seg_ros.models"):
        assert cx.complexity(*args).params == c.params
    assert f"complexity cache {path} is unusable: its content does not match the recorded SHA-256" in caplog.text
    record = json.loads(path.read_text())
    assert unseal(record, record["source"])["entries"][next(iter(data["entries"]))] == \
        {"params": c.params, "macs": [c.macs[(32, 32)]]}
    cx.clear_memory_cache()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seg_ros.models"):
        assert cx.complexity(*args).params == c.params
    assert not caplog.records  # the rewritten table is made from this code and torch: read, not measured again
    # a folder where the file belongs, and a file where the folder belongs: one warning, the answer still right
    for where in ("folder", "file"):
        caplog.clear()
        d = tmp_path / where
        if where == "folder":
            (d / cx.CACHE_FILE).mkdir(parents=True)
        else:
            d.write_text("x")
        monkeypatch.setenv("SEG_ROS_CACHE_DIR", str(d))
        cx.clear_memory_cache()
        with caplog.at_level(logging.WARNING, logger="seg_ros.models"):
            assert cx.complexity(*args).params == c.params
        assert len(caplog.records) >= 1 and "measur" in caplog.records[-1].getMessage()
    cx.clear_memory_cache()
