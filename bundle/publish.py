"""Writing bundles: seal a staging directory, then switch the bundle to it in one atomic step.

Export builds every file in a private staging directory next to the destination, calls
``seal`` (hashes every file into the manifest, writes manifest.json and its SEAL, and validates
the result with the same reader the consumers use), and only then ``publish``es.

The published ``BUNDLE`` is a symlink to a content-addressed sibling directory,
``.BUNDLE.<first 16 hex of the manifest's sha256>``. Publishing renames the sealed staging
directory to that name, then replaces the symlink with ``os.replace`` of a fresh one: a single
rename, so a reader (or a ``kill -9`` at any instant) sees the old bundle or the new one, never
none and never a mix. ``.BUNDLE.previous`` links to the bundle that was replaced; older content
directories are removed. A failure or crash before the switch leaves the published bundle as it
was (at worst a ``.staging-*`` or an unreferenced content directory, removed by the next publish).

    from bundle.publish import staging_dir, seal, publish
    with staging_dir("artifacts/bundle") as tmp:
        (tmp / "model.tflite").write_bytes(tflite)
        ...
        seal(tmp, manifest)                 # adds manifest["files"], writes manifest.json + SEAL
        publish(tmp, "artifacts/bundle")    # artifacts/bundle -> .bundle.<hash>; .bundle.previous
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.manifest import MANIFEST, SEAL, file_digest, load_bundle, seal_text

CONTENT_HEX = 16  # 64 bits of the manifest hash: unique among one bundle's versions


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


def seal(folder: Path, manifest: dict) -> dict:
    """Hash every file under ``folder`` into ``manifest['files']``, write it and its SEAL, validate."""
    folder = Path(folder)
    files = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        if rel not in (MANIFEST, SEAL):
            files[rel] = file_digest(f)
    manifest = {**manifest, "files": files}
    write_json_atomic(folder / MANIFEST, manifest)
    write_bytes_atomic(folder / SEAL, seal_text((folder / MANIFEST).read_bytes()).encode())
    load_bundle(folder)  # the consumers' reader must accept what we are about to publish
    return manifest


def previous_link(dest: str | Path) -> Path:
    """Where the bundle that ``dest`` replaced stays reachable: ``.NAME.previous``."""
    dest = Path(dest)
    return dest.parent / f".{dest.name}.previous"


def publish(staging: Path, dest: str | Path) -> Path:
    """Make ``dest`` (a symlink) point at the sealed ``staging`` directory, atomically."""
    staging, dest = Path(staging), Path(dest)
    parent = dest.parent
    _fsync_tree(staging)
    content = f".{dest.name}.{(staging / SEAL).read_text().split()[0][:CONTENT_HEX]}"
    if not (parent / content).is_dir():
        os.rename(staging, parent / content)
    old = _adopt(dest)
    _fsync_dir(parent)  # the content directory's name is on disk before any link points at it
    if old and old != content:
        _point(previous_link(dest), old)
    _point(dest, content)
    _fsync_dir(parent)
    keep = {content, old, _target(previous_link(dest))}
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.[0-9a-f]{{{CONTENT_HEX}}}")
    for d in parent.iterdir():
        if pattern.fullmatch(d.name) and d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)
    return dest


def _adopt(dest: Path) -> str | None:
    """The content directory ``dest`` points at now (None without a bundle).

    A bundle published by older code is a real directory: it is renamed into a content directory
    once. That single migration is the only moment with no ``dest``, as a directory cannot be
    swapped for a symlink in one rename.
    """
    if dest.is_symlink():
        return _target(dest)
    if not dest.is_dir():
        return None
    seal_file = dest / SEAL
    tag = seal_file.read_text().split()[0][:CONTENT_HEX] if seal_file.is_file() else os.urandom(8).hex()
    name = f".{dest.name}.{tag}"
    os.rename(dest, dest.parent / name)
    legacy_previous = previous_link(dest)
    if legacy_previous.is_dir() and not legacy_previous.is_symlink():
        shutil.rmtree(legacy_previous)
    return name


def _target(link: Path) -> str | None:
    return os.readlink(link) if link.is_symlink() else None


def _point(link: Path, target: str) -> None:
    """Replace ``link`` by a symlink to the sibling ``target``: build it aside, one rename."""
    tmp = link.parent / f".{link.name}.link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)  # relative: the artifacts folder can be moved or copied whole
    os.replace(tmp, link)


def _fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
