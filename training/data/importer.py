"""The ``import`` source: pick a catalog's classes out of a local photo folder into a dataset.

Three layouts are recognised, in this order:

- Tiny ImageNet, extracted: ``DIR/train/<wnid>/images/*.JPEG`` plus ``DIR/val/images/*`` labelled
  by ``DIR/val/val_annotations.txt``; both train and val files are used (val files keep their
  ``val_<n>.JPEG`` names, so every file's origin stays visible, and the counts go in the source).
- An ImageNet train tree: ``DIR/<wnid>/*.JPEG``.
- Any ``DIR/<class>/<images>`` folder, a class folder named by wnid or by label
  (``computer keyboard``, ``computer_keyboard`` and ``Computer-Keyboard`` all match).

Every photo is fully decoded (``bundle.images.decode_image``) before it is kept; rejects are
counted by reason. ``ROOT/<wnid>/`` ends up holding exactly the selected photos (re-running is a
no-op, and stale files from an earlier import are removed), then ``dataset.json`` is rebuilt.

    from training.data.importer import ImportConfig, import_images
    ds = import_images(ImportConfig(source="../shared/datasets/tiny-imagenet-office20",
                                    out="data/office20", per_class=60))
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bundle.atomic import write_bytes_atomic
from bundle.flags import REQUIRED, positive, setting
from bundle.images import ImageError, decode_image
from training.data.catalog import WNID, ClassInfo, classes_setting, load_catalog
from training.data.dataset import IMAGE_SUFFIXES, Dataset, build_dataset
from training.data.errors import SourceError

SUBSETS = ("hash", "first")  # how the --per-class N are picked (subset_order)
SUBSET_HELP = (
    "which N: 'hash' a seeded sample of the class; 'first' the first N by Tiny ImageNet index, the "
    "same photos however many the class holds (for fixtures)"
)


@dataclass
class ImportConfig:
    source: str = setting(REQUIRED, "folder to read", flag="--from", metavar="DIR")
    out: str = setting(REQUIRED, "dataset folder to write", metavar="ROOT")
    classes: str = classes_setting()
    per_class: int | None = setting(
        None, "keep a deterministic subset of N decodable photos per class (default: all)", type=positive, metavar="N"
    )
    subset: str = setting("hash", SUBSET_HELP, SUBSETS)
    seed: int = setting(0, "seed of the subset and of the train/val/test split")
    link: bool = setting(False, "hard-link the photos (symlink across filesystems) instead of copying")
    workers: int = setting(4, "decoding threads", type=positive)


@dataclass(frozen=True)
class Candidate:
    src: Path
    name: str  # file name inside ROOT/<wnid>/
    origin: str  # "train" / "val" for Tiny ImageNet, "folder" otherwise


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_tiny_imagenet(root: Path) -> bool:
    train = root / "train"
    return train.is_dir() and any((d / "images").is_dir() for d in train.iterdir())


def find_candidates(root: Path, classes: list[ClassInfo]) -> tuple[str, dict[str, list[Candidate]], dict]:
    """(layout, {wnid: candidates}, layout details); raises SourceError if a class is missing."""
    if not root.is_dir():
        raise SourceError(f"--from {root}: no such folder")
    found: dict[str, list[Candidate]] = {}
    details: dict = {}
    if is_tiny_imagenet(root):
        layout = "tiny-imagenet"
        for c in classes:
            images = root / "train" / c.wnid / "images"
            if images.is_dir():
                found[c.wnid] = [Candidate(p, p.name, "train") for p in _images_in(images)]
        annotations = root / "val" / "val_annotations.txt"
        if annotations.is_file():
            for line in annotations.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1] in found:
                    p = root / "val" / "images" / parts[0]
                    if p.is_file():
                        found[parts[1]].append(Candidate(p, p.name, "val"))
        details["val_annotations"] = annotations.is_file()
    else:
        folders = {d.name: d for d in root.iterdir() if d.is_dir()}
        by_label = {_norm(name): d for name, d in folders.items()}
        matched: dict[str, str] = {}
        for c in classes:
            d = folders.get(c.wnid) or by_label.get(_norm(c.label))
            if d is not None:
                matched[c.wnid] = d.name
                found[c.wnid] = [Candidate(p, p.name, "folder") for p in _images_in(d)]
        layout = "imagenet" if matched and all(WNID.match(n) for n in matched.values()) else "folders"
        details["folders"] = matched
    missing = [c for c in classes if not found.get(c.wnid)]
    if missing:
        names = ", ".join(f"{c.wnid} ({c.label})" for c in missing)
        hint = "train/<wnid>/images/" if layout == "tiny-imagenet" else "<wnid>/ or <label>/ folders with images"
        raise SourceError(
            f"{len(missing)} of {len(classes)} classes are missing in {root} "
            f"(read as {layout}, looking for {hint}): {names}. "
            f"Pick the classes this folder has with --classes (a catalog name or a "
            f"wnid<TAB>label file), or add the missing photos."
        )
    return layout, found, details


def subset_order(wnid: str, candidates: list[Candidate], seed: int, subset: str = "hash") -> list[Candidate]:
    """A stable order whose first N are the --per-class N subset.

    ``hash``: seeded, a spread sample of the whole class (but which N depends on every file there).
    ``first``: Tiny ImageNet index order (train ``<wnid>_<n>`` by n, then ``val_<n>``, then other
    names): the same N however many photos a class holds, as long as it grows by appending, as
    Tiny ImageNet's own subsets do (so a test fixture keeps its photos when a shared set grows).
    """
    if subset not in SUBSETS:
        raise SourceError(f"--subset {subset!r}: expected one of {', '.join(SUBSETS)}")
    if subset == "first":

        def index(c: Candidate) -> tuple:
            number = re.search(r"_(\d+)\.\w+$", c.name)
            return (c.origin != "train", int(number.group(1)) if number else float("inf"), c.name)

        return sorted(candidates, key=index)

    def key(c: Candidate) -> bytes:
        # Salted apart from the split hash (dataset.assign_split): ordering by that same hash would
        # put only the lowest hashes in the subset, i.e. only train files.
        return hashlib.sha256(f"subset:{seed}:{wnid}/{c.name}".encode()).digest()

    return sorted(candidates, key=key)


def _place(c: Candidate, dest: Path, link: bool) -> str | None:
    """Validate one photo and put it at ``dest``; returns the reject reason, or None if kept."""
    if dest.exists() and dest.stat().st_size == c.src.stat().st_size:
        return None  # only validated photos are ever written here, so an equal-sized one is done
    data = c.src.read_bytes()
    try:
        decode_image(data)
    except ImageError as e:
        return e.code
    if not link:
        write_bytes_atomic(dest, data)
        return None
    tmp = dest.with_name(f".{dest.name}.link.part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(c.src, tmp)
    except OSError:  # another filesystem, or links not allowed: a symlink still saves the space
        os.symlink(c.src.resolve(), tmp)
    os.replace(tmp, dest)
    return None


def place_classes(
    classes: list[ClassInfo], found: dict[str, list[Candidate]], out: Path, cfg: ImportConfig
) -> tuple[dict[str, list[Candidate]], Counter]:
    """Validate and place each class's selected photos in ``out/<wnid>/`` (exactly those).

    Returns the kept candidates per wnid and the reject counts by reason.
    """
    kept_by_class: dict[str, list[Candidate]] = {}
    rejected: Counter = Counter()
    with ThreadPoolExecutor(cfg.workers) as pool:
        for c in classes:
            folder = out / c.wnid
            folder.mkdir(parents=True, exist_ok=True)
            order = subset_order(c.wnid, found[c.wnid], cfg.seed, cfg.subset) if cfg.per_class else found[c.wnid]
            want = cfg.per_class or len(order)
            kept: list[Candidate] = []
            pos = 0
            while len(kept) < want and pos < len(order):
                # Validate in batches just big enough to fill the quota: rejects pull in the next ones.
                batch = order[pos : pos + want - len(kept)]
                pos += len(batch)
                for cand, reason in zip(
                    batch, pool.map(lambda x, folder=folder: _place(x, folder / x.name, cfg.link), batch)
                ):
                    if reason is None:
                        kept.append(cand)
                    else:
                        rejected[reason] += 1
            if not kept:
                raise SourceError(
                    f"class {c.wnid} ({c.label}): none of the {len(order)} photos in {cfg.source} could be decoded"
                )
            kept_by_class[c.wnid] = kept
            names = {k.name for k in kept}
            for stale in folder.iterdir():  # earlier imports, killed runs' temp files
                if stale.name not in names and (stale.is_file() or stale.is_symlink()):
                    stale.unlink()
    return kept_by_class, rejected


def import_images(cfg: ImportConfig, source_extra: dict | None = None) -> Dataset:
    """Run one import (see the module docstring); returns the written dataset."""
    src, out = Path(cfg.source).expanduser(), Path(cfg.out).expanduser()
    if cfg.per_class is not None and cfg.per_class < 1:
        raise SourceError(f"--per-class must be at least 1, got {cfg.per_class}")
    if out.resolve() == src.resolve():
        raise SourceError(f"--out must be a different folder from --from ({src})")
    try:
        classes = load_catalog(cfg.classes)
    except ValueError as e:
        raise SourceError(str(e)) from e
    layout, found, details = find_candidates(src, classes)
    out.mkdir(parents=True, exist_ok=True)
    kept, rejected = place_classes(classes, found, out, cfg)
    origins = Counter(k.origin for files in kept.values() for k in files)
    source = {
        "kind": "import",
        "from": str(src.resolve()),
        "layout": layout,
        **details,
        "origins": dict(sorted(origins.items())),
        "rejected": dict(sorted(rejected.items())),
        "config": asdict(cfg),
        **(source_extra or {}),
    }
    if layout == "tiny-imagenet":
        source["origin_rule"] = (
            "val_*.JPEG files come from Tiny ImageNet's val/images "
            "(labels from val_annotations.txt), the others from train/<wnid>/images"
        )
    catalog = Path(cfg.classes).stem if Path(cfg.classes).is_file() else cfg.classes
    return build_dataset(out, classes, source, catalog=catalog, seed=cfg.seed, workers=cfg.workers)
