"""Writing bundles: seal a staging directory with its manifest, then swap it into place atomically.

Export builds every file in a private staging directory next to the destination, calls
``seal`` (hashes every file into the manifest and validates the result with the same reader the
consumers use), and only then ``publish``es. A failure at any step leaves the published bundle
untouched; a crash leaves at worst a ``.staging-*`` directory, never a half-written bundle.

    from bundle.publish import staging_dir, seal, publish
    with staging_dir("artifacts/bundle") as tmp:
        (tmp / "model.tflite").write_bytes(tflite)
        ...
        seal(tmp, manifest)                 # adds manifest["files"], writes manifest.json
        publish(tmp, "artifacts/bundle")    # previous bundle kept as artifacts/.bundle.previous
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from bundle.atomic import write_json_atomic
from bundle.manifest import MANIFEST, file_digest, load_bundle


@contextlib.contextmanager
def staging_dir(dest: str | Path):
    """A fresh directory on the same filesystem as ``dest`` (so rename is atomic), removed on exit."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would become the published bundle's mode
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def seal(staging: Path, manifest: dict) -> dict:
    """Hash every file under ``staging`` into ``manifest['files']``, write and validate it."""
    staging = Path(staging)
    files = {}
    for f in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = f.relative_to(staging).as_posix()
        if rel != MANIFEST:
            files[rel] = file_digest(f)
    manifest = {**manifest, "files": files}
    write_json_atomic(staging / MANIFEST, manifest)
    load_bundle(staging)  # the consumers' reader must accept what we are about to publish
    return manifest


def publish(staging: Path, dest: str | Path) -> Path:
    """Replace ``dest`` with the sealed ``staging`` directory; the old one becomes ``.NAME.previous``."""
    staging, dest = Path(staging), Path(dest)
    for root, dirs, names in os.walk(staging):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
    previous = dest.parent / f".{dest.name}.previous"
    if dest.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(dest, previous)
    try:
        os.rename(staging, dest)
    except BaseException:
        if previous.exists() and not dest.exists():
            os.rename(previous, dest)
        raise
    return dest
