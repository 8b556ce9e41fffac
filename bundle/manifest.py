"""The bundle format: what a published model directory holds, and the one reader that checks it.

A bundle is a directory::

    model.tflite     full-integer int8 model, batch 1, uint8 in/out (what phones and the server run)
    labels.txt       one human label per line, in output order
    manifest.json    everything a consumer needs (below); nothing downstream hard-codes any of it
    ...              any other files export adds (parity.json, REPORT.md, golden/...), each hashed

manifest.json (``schema_version`` 1)::

    model:    {name, version, created, git_revision, file: "model.tflite"}
    classes:  [{index, wnid, label}, ...]                  # model output order
    input:    {shape: [1, H, W, 3], dtype: "uint8", quantization: {scale, zero_point},
               preprocess: PreprocessSpec as a dict}        # see bundle.preprocess
    output:   {shape: [1, N], dtype: "uint8", quantization: {scale, zero_point},
               kind: "probabilities"}
    dataset:  {id, sha256, ...}                             # which dataset.json trained it
    metrics:  {...}   parity: {...}                         # figures export measured
    golden:   [{image, input, input_sha256, output, top1}]  # files under golden/, see export
    abstain:  optional {method, score, threshold, ...}      # "not an office object": see bundle.abstain
    files:    {relative path: {sha256, bytes, gzip_bytes}}  # every other file but SEAL

SEAL seals the manifest, and through its ``files`` hashes every other file: one line in
``sha256sum`` format, ``<sha256 of manifest.json>  manifest.json`` (so ``cd BUNDLE && sha256sum -c
SEAL`` checks it by hand). A manifest edited after export (a threshold, the preprocessing) no longer
matches its SEAL and every reader refuses it: ``load_bundle`` here (server, APK build, export's
own check before publishing) and ``android_demo/web/seal.js`` on the phone.

Use:
    from bundle.manifest import load_bundle, BundleError
    b = load_bundle("artifacts/bundle")        # raises BundleError naming what is wrong
    b.labels, b.preprocess, b.input_quant, b.model_path
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bundle.abstain import SCORES
from bundle.preprocess import PreprocessSpec

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SEAL = "SEAL"
REQUIRED = ("schema_version", "model", "classes", "input", "output", "files")


class BundleError(Exception):
    """The bundle is missing, incomplete, or does not match its manifest."""


@dataclass(frozen=True)
class Quantization:
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest["model"]["file"]

    @property
    def model_sha256(self) -> str:
        return self.manifest["files"][self.manifest["model"]["file"]]["sha256"]

    @property
    def labels(self) -> list[str]:
        return [c["label"] for c in self.manifest["classes"]]

    @property
    def wnids(self) -> list[str]:
        return [c["wnid"] for c in self.manifest["classes"]]

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.manifest["input"]["preprocess"])

    @property
    def input_dtype(self) -> str:
        return self.manifest["input"]["dtype"]

    @property
    def input_quant(self) -> Quantization:
        return Quantization(**self.manifest["input"]["quantization"])

    @property
    def output_quant(self) -> Quantization:
        return Quantization(**self.manifest["output"]["quantization"])

    @property
    def abstain(self) -> dict | None:
        return self.manifest.get("abstain")


def file_digest(path: Path) -> dict:
    """sha256, size and gzip size of one file: the ``files`` entry of the manifest."""
    return bytes_digest(Path(path).read_bytes())


def bytes_digest(data: bytes) -> dict:
    """``file_digest`` of content held in memory."""
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
    }


def seal_text(manifest_bytes: bytes) -> str:
    """The SEAL file's content for these exact manifest.json bytes."""
    return f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}\n"


def check_seal(path: Path, manifest_bytes: bytes) -> None:
    """Raise BundleError unless ``path``/SEAL is the seal of ``manifest_bytes``."""
    seal_file = path / SEAL
    if not seal_file.is_file():
        raise BundleError(
            f"bundle at {path} is not sealed: {SEAL} is missing (a bundle must be published by export; re-export it)"
        )
    want = seal_file.read_text(errors="replace")
    if want != seal_text(manifest_bytes):
        got = hashlib.sha256(manifest_bytes).hexdigest()
        raise BundleError(
            f"bundle at {path}: {MANIFEST} has sha256 {got[:12]}..., {SEAL} says "
            f"{want[:12]!r}... ({MANIFEST} was modified after export, or the bundle is corrupt)"
        )


def validate_manifest(m: dict) -> None:
    """Structural checks; raises BundleError with the first problem found."""
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        raise BundleError(f"manifest lacks {', '.join(missing)}")
    if m["schema_version"] != SCHEMA_VERSION:
        raise BundleError(
            f"manifest schema_version {m['schema_version']} is not supported (this reader knows {SCHEMA_VERSION})"
        )
    classes = m["classes"]
    if not classes or [c.get("index") for c in classes] != list(range(len(classes))):
        raise BundleError("manifest classes must be a non-empty list indexed 0..N-1 in order")
    for c in classes:
        if not c.get("wnid") or not c.get("label"):
            raise BundleError(f"manifest class {c.get('index')} lacks a wnid or label")
    inp, out = m["input"], m["output"]
    for name, spec in (("input", inp), ("output", out)):
        for key in ("shape", "dtype", "quantization"):
            if key not in spec:
                raise BundleError(f"manifest {name} lacks {key}")
        if spec["dtype"] not in ("uint8", "int8", "float32"):
            raise BundleError(f"manifest {name} dtype {spec['dtype']!r} is not uint8, int8 or float32")
    if "preprocess" not in inp:
        raise BundleError("manifest input lacks preprocess")
    try:
        spec = PreprocessSpec.from_dict(inp["preprocess"])
    except (TypeError, ValueError) as e:
        raise BundleError(f"manifest input preprocess is invalid: {e}") from None
    if inp["shape"] != [1, spec.size, spec.size, 3]:
        raise BundleError(f"manifest input shape {inp['shape']} disagrees with preprocess size {spec.size}")
    if out["shape"] != [1, len(classes)]:
        raise BundleError(f"manifest output shape {out['shape']} disagrees with {len(classes)} classes")
    rule = m.get("abstain")
    if rule is not None:
        if not isinstance(rule, dict) or not isinstance(rule.get("threshold"), (int, float)):
            raise BundleError("manifest abstain must hold a numeric threshold")
        if rule.get("score", "max") not in SCORES:
            raise BundleError(f"manifest abstain score {rule.get('score')!r} is not one of {sorted(SCORES)}")
    if m["model"].get("file") not in m["files"]:
        raise BundleError("manifest model.file is not listed in files")


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Read, validate, seal-check and (by default) hash-check a bundle directory.

    A published bundle is a symlink to its content directory (bundle.publish); it is resolved
    once here, so every later read (model, labels) comes from the directory that was checked even
    if a new bundle is published meanwhile.
    """
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"no bundle at {path}: {MANIFEST} is missing")
    path = path.resolve()
    mpath = path / MANIFEST
    try:
        raw = mpath.read_bytes()  # the bytes checked against SEAL are the bytes parsed
        manifest = json.loads(raw)
    except (OSError, ValueError) as e:
        raise BundleError(f"{mpath} is not readable JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath} is not a JSON object")
    check_seal(path, raw)  # before the schema: an edited manifest is named as edited
    validate_manifest(manifest)
    for rel, want in manifest["files"].items():
        f = path / rel
        if not f.is_file():
            raise BundleError(f"bundle at {path} is incomplete: {rel} is missing")
        if verify_hashes:
            got = hashlib.sha256(f.read_bytes()).hexdigest()
            if got != want["sha256"]:
                raise BundleError(
                    f"bundle at {path}: {rel} has sha256 {got[:12]}..., "
                    f"manifest says {want['sha256'][:12]}... (modified or corrupt)"
                )
    labels_file = path / "labels.txt"
    if labels_file.is_file():
        labels = labels_file.read_text().splitlines()
        if labels != [c["label"] for c in manifest["classes"]]:
            raise BundleError(f"{labels_file} disagrees with the manifest's class labels")
    return Bundle(path=path, manifest=manifest)
