"""bundle.manifest + bundle.publish: a sealed bundle loads; every kind of damage is named."""

import json
import os
import shutil
import subprocess

import pytest

from bundle.manifest import BundleError, load_bundle, seal_text
from bundle.preprocess import PreprocessSpec
from bundle.publish import publish, seal, staging_dir

LABELS = ["computer keyboard", "remote control", "iPod"]


def manifest(size=32):
    return {
        "schema_version": 1,
        "model": {"name": "test", "version": "1", "file": "model.tflite"},
        "classes": [{"index": i, "wnid": f"n0000000{i}", "label": label} for i, label in enumerate(LABELS)],
        "input": {
            "shape": [1, size, size, 3],
            "dtype": "uint8",
            "quantization": {"scale": 1.0, "zero_point": 0},
            "preprocess": PreprocessSpec(size=size).to_dict(),
        },
        "output": {
            "shape": [1, 3],
            "dtype": "uint8",
            "quantization": {"scale": 1 / 256, "zero_point": 0},
            "kind": "probabilities",
        },
    }


def build(dest, model=b"model-bytes", m=None):
    with staging_dir(dest) as tmp:
        (tmp / "model.tflite").write_bytes(model)
        (tmp / "labels.txt").write_text("\n".join(LABELS) + "\n")
        (tmp / "golden").mkdir()
        (tmp / "golden" / "a.bin").write_bytes(b"\x00\x01")
        seal(tmp, m or manifest())
        publish(tmp, dest)
    return dest


def snapshot(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_sealed_bundle_loads(tmp_path):
    b = load_bundle(build(tmp_path / "bundle"))
    assert b.labels == LABELS and b.wnids[0] == "n00000000"
    assert b.preprocess == PreprocessSpec(size=32)
    assert b.input_quant.scale == 1.0 and b.output_quant.zero_point == 0
    assert set(b.manifest["files"]) == {"model.tflite", "labels.txt", "golden/a.bin"}
    assert b.model_path.read_bytes() == b"model-bytes" and b.abstain is None
    assert not list(tmp_path.glob(".bundle.staging-*"))


def test_missing_bundle_is_named(tmp_path):
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(tmp_path / "nowhere")


def test_modified_file_fails_the_hash_check(tmp_path):
    dest = build(tmp_path / "bundle")
    (dest / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="model.tflite has sha256"):
        load_bundle(dest)


def test_missing_file_is_incomplete(tmp_path):
    dest = build(tmp_path / "bundle")
    os.unlink(dest / "golden" / "a.bin")
    with pytest.raises(BundleError, match="incomplete: golden/a.bin"):
        load_bundle(dest)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda m: m.pop("classes"), "lacks classes"),
        (lambda m: m.update(schema_version=99), "schema_version 99"),
        (lambda m: m["input"].update(shape=[1, 64, 64, 3]), "disagrees with preprocess size"),
        (lambda m: m["output"].update(shape=[1, 5]), "disagrees with 3 classes"),
        (lambda m: m["output"].update(dtype="float16"), "dtype"),
        (lambda m: m["classes"][1].update(index=7), "indexed 0..N-1"),
    ],
)
def test_invalid_manifest_is_refused_before_publishing(tmp_path, damage, message):
    m = manifest()
    damage(m)
    with pytest.raises(BundleError, match=message):
        build(tmp_path / "bundle", m=m)
    assert not (tmp_path / "bundle").exists()


def test_labels_file_must_agree(tmp_path):
    dest = build(tmp_path / "bundle")
    m = json.loads((dest / "manifest.json").read_text())
    (dest / "labels.txt").write_text("a\nb\nc\n")
    m["files"].pop("labels.txt")
    (dest / "manifest.json").write_text(json.dumps(m))
    (dest / "SEAL").write_text(seal_text((dest / "manifest.json").read_bytes()))  # resealed by hand
    with pytest.raises(BundleError, match="disagrees"):
        load_bundle(dest)


def test_edited_manifest_is_refused(tmp_path):
    """An edited threshold or preprocessing no longer matches the SEAL, even with valid JSON."""
    dest = build(tmp_path / "bundle")
    m = json.loads((dest / "manifest.json").read_text())
    m["abstain"] = {"method": "max_softmax", "threshold": 0.0}
    (dest / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="manifest.json was modified after export"):
        load_bundle(dest, verify_hashes=False)


def test_unsealed_bundle_is_refused(tmp_path):
    dest = build(tmp_path / "bundle")
    os.unlink(dest / "SEAL")
    with pytest.raises(BundleError, match="not sealed: SEAL is missing"):
        load_bundle(dest)


@pytest.mark.skipif(not shutil.which("sha256sum"), reason="no sha256sum")
def test_seal_is_sha256sum_format(tmp_path):
    dest = build(tmp_path / "bundle")
    assert "SEAL" not in json.loads((dest / "manifest.json").read_text())["files"]
    ok = subprocess.run(["sha256sum", "-c", "SEAL"], cwd=dest, capture_output=True, text=True)
    assert ok.returncode == 0 and "manifest.json: OK" in ok.stdout


def content_dirs(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.is_symlink())


def test_publish_replaces_and_keeps_the_previous(tmp_path):
    dest = build(tmp_path / "bundle", model=b"v1")
    build(dest, model=b"v2")
    assert load_bundle(dest).model_path.read_bytes() == b"v2"
    assert load_bundle(tmp_path / ".bundle.previous").model_path.read_bytes() == b"v1"
    # the switch is a symlink to a content-addressed sibling; only current + previous are kept
    build(dest, model=b"v3")
    assert dest.is_symlink() and os.readlink(dest).startswith(".bundle.")
    seal_hash = (dest / "SEAL").read_text().split()[0]
    assert os.readlink(dest) == f".bundle.{seal_hash[:16]}"
    assert load_bundle(tmp_path / ".bundle.previous").model_path.read_bytes() == b"v2"
    assert content_dirs(tmp_path) == sorted([os.readlink(dest), os.readlink(tmp_path / ".bundle.previous")])
    assert load_bundle(dest).path == (tmp_path / os.readlink(dest)).resolve()


def test_publish_over_a_bundle_of_the_old_layout(tmp_path):
    """A bundle published as a plain directory (older code) becomes the previous one."""
    dest = build(tmp_path / "bundle", model=b"v1")
    real = tmp_path / os.readlink(dest)
    os.unlink(dest)
    real.rename(dest)
    (tmp_path / ".bundle.previous").mkdir()  # the old layout's previous bundle, a directory
    build(dest, model=b"v2")
    assert load_bundle(dest).model_path.read_bytes() == b"v2"
    assert load_bundle(tmp_path / ".bundle.previous").model_path.read_bytes() == b"v1"


def test_crash_while_publishing_leaves_the_old_bundle(tmp_path, monkeypatch):
    dest = build(tmp_path / "bundle", model=b"v1")
    before = snapshot(dest)
    real_rename = os.rename

    def crash_on_rename(src, dst):
        if str(src).startswith(str(tmp_path / ".bundle.staging-")):
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_rename)
    with pytest.raises(OSError, match="disk full"):
        build(dest, model=b"v2")
    assert snapshot(dest) == before
    assert not list(tmp_path.glob(".bundle.staging-*"))


def test_published_bundle_is_readable_by_other_users(tmp_path):
    dest = build(tmp_path / "bundle")
    assert dest.stat().st_mode & 0o777 == 0o755
    assert (dest / "manifest.json").stat().st_mode & 0o777 == 0o644
