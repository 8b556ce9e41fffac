"""The dataset seam: an image-folder tree plus ``dataset.json``, written here, read by every stage.

Layout: ``ROOT/<wnid>/<file>`` and ``ROOT/dataset.json``::

    {"format": "officenet-dataset", "version": 1, "id": "office20-3f2a9c1b7d0e",
     "catalog": "office20", "created": ISO time, "source": {"kind": "import", ...},
     "classes": [{"index": 0, "wnid": "n03085013", "label": "computer keyboard"}, ...],
     "splits": {"seed": 0, "fractions": {"train": 0.8, "val": 0.1, "test": 0.1}, "method": ...},
     "files": [{"path": "n03085013/x.JPEG", "class": 0, "split": "train", "sha256": ...}, ...],
     "counts": {"train": {"n03085013": 440, ...}, "val": {...}, "test": {...}},
     "stats": {"mean": [R, G, B], "std": [R, G, B], "images": n, "pixels": "RGB 0..255, train only"},
     "image_size": {"median_width": 64, "median_height": 64, "min_side": 64}}

Splits are assigned per file from ``sha256(seed:wnid/filename)``: deterministic, per class (so
stratified up to rounding), and stable when files are added (a new file never moves an old one).
Mean/std come from the train split only.

    from training.data.dataset import build_dataset, load_dataset
    ds = build_dataset("data/office20", classes, source={"kind": "import", "from": "..."})
    ds = load_dataset("data/office20")
    for path, label in ds.items("train"): ...
"""

from __future__ import annotations

import hashlib
import json
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bundle.atomic import write_json_atomic
from bundle.images import ImageError, decode_image
from training.data.catalog import ClassInfo

DATASET_JSON = "dataset.json"
FORMAT = "officenet-dataset"
VERSION = 1
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
SPLIT_METHOD = "sha256('{seed}:{wnid}/{filename}') as a fraction in [0, 1), cut at the split fractions"


class DatasetError(Exception):
    """The dataset folder is missing, not in the officenet format, or unusable for training."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the dataset root, posix
    label: int  # class index
    split: str
    sha256: str


@dataclass
class Dataset:
    root: Path
    meta: dict
    classes: list[ClassInfo]
    files: list[FileEntry] = field(repr=False)

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def mean(self) -> list[float]:
        return self.meta["stats"]["mean"]

    @property
    def std(self) -> list[float]:
        return self.meta["stats"]["std"]

    @property
    def sha256(self) -> str:
        """Hash of dataset.json: identifies exactly which data (and split) a model saw."""
        return hashlib.sha256((self.root / DATASET_JSON).read_bytes()).hexdigest()

    @property
    def others(self) -> dict | None:
        """The optional non-office photos (``import-others``), split by class; None if absent."""
        return self.meta.get("others")

    def others_items(self, split: str) -> list[tuple[Path, str]]:
        """(absolute path, wnid) of the non-office photos of one split: train and val come from
        train-side classes, test only from evaluation-only classes. Empty without others."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
        return [(self.root / f["path"], f["wnid"]) for f in (self.others or {}).get("files", []) if f["split"] == split]

    def items(self, split: str) -> list[tuple[Path, int]]:
        """(absolute path, class index) for every file of one split, in a stable order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
        return [(self.root / f.path, f.label) for f in self.files if f.split == split]


def assign_split(key: str, seed: int, fractions: dict[str, float] = DEFAULT_FRACTIONS) -> str:
    """The split of one file, from a hash of ``seed:key`` (key = ``wnid/filename``)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split in SPLITS:
        edge += fractions[split]
        if u < edge:
            return split
    return SPLITS[-1]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in blocks (teacher weights run to tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pixel_sums(path: Path) -> tuple[np.ndarray, np.ndarray, int, tuple[int, int]]:
    img = decode_image(path.read_bytes())
    arr = np.asarray(img, dtype=np.float64).reshape(-1, 3)
    return arr.sum(0), (arr * arr).sum(0), arr.shape[0], img.size


def build_dataset(
    root: str | Path,
    classes: list[ClassInfo],
    source: dict,
    catalog: str = "custom",
    seed: int = 0,
    fractions: dict[str, float] = DEFAULT_FRACTIONS,
    workers: int = 4,
) -> Dataset:
    """Scan ``root/<wnid>/*``, assign splits, compute train mean/std, write dataset.json."""
    root = Path(root)
    if abs(sum(fractions.values()) - 1) > 1e-9 or set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must cover {SPLITS} and sum to 1, got {fractions}")
    files: list[FileEntry] = []
    for index, cls in enumerate(classes):
        folder = root / cls.wnid
        paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not paths:
            raise DatasetError(f"class {cls.wnid} ({cls.label}) has no images in {folder}")
        for p in paths:
            key = f"{cls.wnid}/{p.name}"
            files.append(FileEntry(key, index, assign_split(key, seed, fractions), ""))
    with ThreadPoolExecutor(workers) as pool:
        hashes = list(pool.map(lambda f: file_sha256(root / f.path), files))
        files = [FileEntry(f.path, f.label, f.split, h) for f, h in zip(files, hashes)]
        train = [root / f.path for f in files if f.split == "train"]
        try:
            sums = list(pool.map(_pixel_sums, train))
        except ImageError as e:
            raise DatasetError(f"a train image can't be decoded ({e}); re-run the import or remove it") from e
    for index, cls in enumerate(classes):
        if not any(f.label == index and f.split == "train" for f in files):
            raise DatasetError(f"class {cls.wnid} ({cls.label}) has no train images: add more photos")
    total = sum(s[0] for s in sums)
    total_sq = sum(s[1] for s in sums)
    n = sum(s[2] for s in sums)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0))
    widths = [s[3][0] for s in sums]
    heights = [s[3][1] for s in sums]
    counts = {split: {c.wnid: 0 for c in classes} for split in SPLITS}
    for f in files:
        counts[f.split][classes[f.label].wnid] += 1
    content = hashlib.sha256("".join(f"{f.path}:{f.split}:{f.sha256}\n" for f in files).encode()).hexdigest()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "id": f"{catalog}-{content[:12]}",
        "catalog": catalog,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "classes": [{"index": i, "wnid": c.wnid, "label": c.label} for i, c in enumerate(classes)],
        "splits": {"seed": seed, "fractions": fractions, "method": SPLIT_METHOD},
        "files": [{"path": f.path, "class": f.label, "split": f.split, "sha256": f.sha256} for f in files],
        "counts": counts,
        "stats": {
            "mean": [round(float(x), 4) for x in mean],
            "std": [round(float(x), 4) for x in std],
            "images": len(train),
            "pixels": "RGB 0..255 of the decoded train images",
        },
        "image_size": {
            "median_width": int(statistics.median(widths)),
            "median_height": int(statistics.median(heights)),
            "min_side": int(min(min(widths), min(heights))),
        },
    }
    previous = _previous_meta(root)
    others = (previous or {}).get("others")
    if others and all((root / f["path"]).is_file() for f in others["files"]):
        meta["others"] = others  # re-importing the office photos keeps an earlier import-others
    # Runs, bundles and the teacher's cache record dataset.json's sha256: rebuilding the same photos
    # must leave its bytes alone, or a second `make data` would throw away the teacher targets cached for them.
    if previous != {**json.loads(json.dumps(meta)), "created": (previous or {}).get("created")}:
        write_json_atomic(root / DATASET_JSON, meta)
    return load_dataset(root)


def _previous_meta(root: Path) -> dict | None:
    try:
        return json.loads((root / DATASET_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_dataset(root: str | Path) -> Dataset:
    """Read and check ``root/dataset.json``; raises DatasetError naming the problem."""
    root = Path(root)
    path = root / DATASET_JSON
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder {root} does not exist (make one with `make data` "
            f"or `python -m training.data import --from DIR --out {root}`)"
        )
    if not path.is_file():
        raise DatasetError(
            f"{root} is not an officenet dataset: {DATASET_JSON} is missing "
            f"(make it with `python -m training.data import --from DIR --out {root}`)"
        )
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e}") from e
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DatasetError(f"{path} is not an {FORMAT} v{VERSION} manifest")
    for key in ("id", "classes", "files", "stats", "splits"):
        if key not in meta:
            raise DatasetError(f"{path} lacks {key!r}")
    classes = [ClassInfo(c["wnid"], c["label"]) for c in meta["classes"]]
    files = [FileEntry(f["path"], f["class"], f["split"], f["sha256"]) for f in meta["files"]]
    for index, cls in enumerate(classes):
        if not any(f.label == index and f.split == "train" for f in files):
            raise DatasetError(f"class {cls.wnid} ({cls.label}) has no train images in {path}")
    missing = [
        p
        for p in [f.path for f in files] + [f["path"] for f in meta.get("others", {}).get("files", [])]
        if not (root / p).is_file()
    ]
    if missing:
        raise DatasetError(f"{len(missing)} files listed in {path} are missing, e.g. {missing[0]}")
    return Dataset(root=root, meta=meta, classes=classes, files=files)
