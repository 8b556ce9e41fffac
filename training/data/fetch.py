"""The ``fetch`` source, behind ``make data``: Tiny ImageNet's office classes, from a local copy or the web.

1. A local Tiny ImageNet folder (``--local DIR``, else ``$OFFICENET_TINY_IMAGENET``, else
   ``$OFFICENET_SHARED/datasets/tiny-imagenet-office20``, ``$OFFICENET_SHARED`` defaulting to
   ``<repo>/../shared``) is imported as it is.
2. Otherwise the public archive (``--url``, Stanford's ``tiny-imagenet-200.zip``, 237 MB) is
   downloaded into the cache (``--cache``), checked against ``--checksum`` (the md5 published with
   the archive), and only the catalog's classes are extracted, then imported. The archive and the
   extracted classes stay in the cache, so a re-run costs nothing. A bad checksum leaves nothing.

``import-others`` takes the non-office classes from the same archive (``archive_classes``), with
the same download, cache and checksum (``ArchiveConfig``).

    from training.data.fetch import FetchConfig, fetch
    ds = fetch(FetchConfig(out="data/office20"))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from bundle.flags import REQUIRED, positive, setting
from training.data.catalog import WNID, classes_setting, load_catalog
from training.data.dataset import Dataset
from training.data.errors import SourceError
from training.data.importer import ImportConfig, import_images
from training.data.web import FetchFailure, RetryPolicy, download_to

REPO = Path(__file__).resolve().parents[2]
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
# The md5 that dataset loaders have long checked this archive against (e.g. torchvision-based
# TinyImageNet loaders: 90528d7c...); a sha256 has not been published alongside it.
TINY_IMAGENET_CHECKSUM = "md5:90528d7ca1a48142e341f4ef8d21d0de"
LOCAL_ENV = "OFFICENET_TINY_IMAGENET"
OFFICE_FOLDER = "tiny-imagenet-office20"


def shared_folder(name: str) -> Path:
    """A folder of the shared datasets: the one the test fixtures read (tests/conftest.py honours
    OFFICENET_SHARED too); read at call time, so the variable can be set in-process."""
    return Path(os.environ.get("OFFICENET_SHARED", REPO.parent / "shared")) / "datasets" / name


DEFAULT_LOCAL = shared_folder(OFFICE_FOLDER)  # as shown in --help
OFFLINE_HINT = (
    "To build the dataset from photos you already have, point DATA at them: "
    "make data DATA=data/office20 DATA_SOURCE=import DATA_ARGS='--from /path/to/tiny-imagenet-200' "
    "(or an ImageNet train folder, or <class>/<images> folders)."
)


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(os.environ.get("OFFICENET_CACHE") or Path(base) / "officenet")


ARCHIVE_FLAGS = "the Tiny ImageNet archive (when no local folder is used)"  # --help heading of its flags


class ArchiveUnreachable(SourceError):
    """The archive could not be downloaded (offline, refused, timed out): nothing was kept."""


@dataclass(kw_only=True)
class ArchiveConfig:
    """Where the Tiny ImageNet archive comes from and is kept (shared by fetch and import-others)."""

    url: str = setting(TINY_IMAGENET_URL, "the archive to download", metavar="URL", section=ARCHIVE_FLAGS)
    checksum: str = setting(
        TINY_IMAGENET_CHECKSUM,
        "expected md5:... or sha256:... of the archive",
        metavar="ALGO:HEX",
        section=ARCHIVE_FLAGS,
    )
    cache: str = setting(
        default_cache,
        "where the archive and the extracted classes are kept ($OFFICENET_CACHE)",
        metavar="DIR",
        section=ARCHIVE_FLAGS,
    )
    timeout: float = setting(
        60.0, "how long a stalled download may wait for data", metavar="SECONDS", section=ARCHIVE_FLAGS
    )
    retries: int = setting(3, "download retries", metavar="N", section=ARCHIVE_FLAGS)


@dataclass(kw_only=True)
class FetchConfig(ArchiveConfig):
    out: str = setting(REQUIRED, "dataset folder to write", metavar="ROOT")
    classes: str = classes_setting()
    local: str | None = setting(
        None, f"a local Tiny ImageNet folder (default: ${LOCAL_ENV}, else the shared copy if present)", metavar="DIR"
    )
    use_local: bool = setting(True, "ignore local copies: always use the archive", flag="--no-local")
    per_class: int | None = setting(
        None, "keep a deterministic subset of N photos per class (default: all)", type=positive, metavar="N"
    )
    seed: int = setting(0, "seed of the subset and of the split")


def find_local(cfg: FetchConfig) -> Path | None:
    if not cfg.use_local:
        return None
    if cfg.local:
        if not Path(cfg.local).expanduser().is_dir():
            raise SourceError(f"--local {cfg.local}: no such folder")
        return Path(cfg.local).expanduser()
    for candidate in (os.environ.get(LOCAL_ENV), shared_folder(OFFICE_FOLDER)):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def parse_checksum(text: str) -> tuple[str, str]:
    algo, _, digest = text.partition(":")
    if algo not in ("md5", "sha1", "sha256") or not digest or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise SourceError(f"--checksum {text!r}: expected md5:HEX or sha256:HEX")
    return algo, digest.lower()


def file_digest(path: Path, algo: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


def download_archive(cfg: ArchiveConfig) -> Path:
    """The verified archive in the cache, downloading it if needed; never leaves a bad file."""
    algo, want = parse_checksum(cfg.checksum)
    cache = Path(cfg.cache).expanduser()
    target = cache / Path(cfg.url.split("?")[0]).name
    if target.is_file() and file_digest(target, algo) == want:
        return target
    target.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    part = cache / f".{target.name}.{os.getpid()}.part"
    print(f"downloading {cfg.url} into {cache}", file=sys.stderr)
    try:
        with open(part, "wb") as out, tqdm(unit="B", unit_scale=True, disable=not sys.stderr.isatty()) as bar:

            def progress(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)

            download_to(cfg.url, out, RetryPolicy(cfg.timeout, cfg.retries, 1.0), progress)
        got = file_digest(part, algo)
        if got != want:
            raise SourceError(
                f"checksum mismatch for {cfg.url}: got {algo}:{got}, expected {algo}:{want}. "
                f"The download is corrupt or the file changed upstream; nothing was kept. "
                f"Re-run, or pass --checksum if you trust a new archive."
            )
        os.replace(part, target)
    except FetchFailure as e:
        raise ArchiveUnreachable(f"cannot download {cfg.url}: {e.detail}") from e
    finally:
        part.unlink(missing_ok=True)
    return target


def archive_wnids(archive: Path) -> list[str]:
    """The classes the archive holds, from its wnids.txt."""
    try:
        with zipfile.ZipFile(archive) as zf:
            listed = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "wnids.txt"), None)
            if listed is None:
                raise SourceError(f"{archive} is not Tiny ImageNet: no wnids.txt inside")
            return sorted({w for w in zf.read(listed).decode().split() if WNID.match(w)})
    except zipfile.BadZipFile as e:
        raise SourceError(f"{archive} is not a zip archive: {e}") from e


def archive_classes(
    cfg: ArchiveConfig, wnids: list[str] | None = None, exclude: frozenset[str] = frozenset()
) -> tuple[Path, dict]:
    """The archive's ``wnids`` (default: all it holds) minus ``exclude``, downloaded and verified if
    needed and extracted once into the cache: (folder, provenance)."""
    archive = download_archive(cfg)
    algo, digest = parse_checksum(cfg.checksum)
    wnids = sorted(set(archive_wnids(archive) if wnids is None else wnids) - exclude)
    # One extraction per (archive, class set): another catalog never reuses a folder missing its classes.
    tag = hashlib.sha256(f"{digest}:{','.join(sorted(wnids))}".encode()).hexdigest()[:10]
    extracted = extract_classes(archive, wnids, archive.parent / f"{archive.stem}-{len(wnids)}classes-{tag}")
    return extracted, {"url": cfg.url, "checksum": f"{algo}:{digest}", "extracted": str(extracted)}


def extract_classes(archive: Path, wnids: list[str], dest: Path) -> Path:
    """Extract the Tiny ImageNet layout of only ``wnids`` into ``dest`` (atomically, as a folder)."""
    if dest.is_dir():
        return dest
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise SourceError(f"{archive} is not a zip archive: {e}") from e
    with zf:
        names = zf.namelist()
        marker = next((n for n in names if n.endswith("val/val_annotations.txt")), None)
        if marker is None:
            raise SourceError(f"{archive} is not Tiny ImageNet: no val/val_annotations.txt inside")
        prefix = marker[: -len("val/val_annotations.txt")]
        wanted = set(wnids)
        val_files = set()
        for line in zf.read(marker).decode().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1] in wanted:
                val_files.add(f"{prefix}val/images/{parts[0]}")
        train_prefixes = tuple(f"{prefix}train/{w}/" for w in wnids)
        keep = [
            n
            for n in names
            if not n.endswith("/")
            and (
                n.startswith(train_prefixes)
                or n in val_files
                or n == marker
                or n in (f"{prefix}wnids.txt", f"{prefix}words.txt")
            )
        ]
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for name in keep:
                # Paths are rebuilt from checked parts, so a hostile member name can't escape ``tmp``.
                rel = Path(name[len(prefix) :])
                if ".." in rel.parts or rel.is_absolute():
                    continue
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(tmp / rel, "wb") as out:
                    shutil.copyfileobj(src, out)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch(cfg: FetchConfig) -> Dataset:
    """Build the default dataset (see the module docstring)."""
    try:
        classes = load_catalog(cfg.classes)
    except ValueError as e:
        raise SourceError(str(e)) from e
    local = find_local(cfg)
    icfg = ImportConfig(source="", out=cfg.out, classes=cfg.classes, per_class=cfg.per_class, seed=cfg.seed)
    if local is not None:
        print(f"using the local Tiny ImageNet copy at {local}", file=sys.stderr)
        icfg.source = str(local)
        return import_images(icfg, {"kind": "fetch", "local_copy": str(local.resolve()), "fetch_config": asdict(cfg)})
    try:
        extracted, provenance = archive_classes(cfg, [c.wnid for c in classes])
    except ArchiveUnreachable as e:
        raise SourceError(f"{e}. {OFFLINE_HINT}") from e
    icfg.source = str(extracted)
    return import_images(icfg, {"kind": "fetch", "archive": provenance, "fetch_config": asdict(cfg)})
