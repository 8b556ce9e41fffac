"""The optional ``import-others`` source: non-office photos, for learning and measuring "not an office object".

Reads a Tiny ImageNet folder of non-office classes, copies them (after a full decode) into
``ROOT/others/<wnid>/`` of an existing office dataset, and
records them in ``ROOT/dataset.json`` under ``"others"``, split BY CLASS so that evaluation never
sees a kind of thing that training or calibration saw:

- ``group: "train"`` classes: their files get ``split`` ``train`` (to learn an "other" output) or
  ``val`` (calibration, early stopping), from a per-file hash like the office split;
- ``group: "eval"`` classes: every file gets ``split: "test"`` (evaluation only).

Where from (``source``, ``--from``): a folder; ``archive``: every class of the public Tiny ImageNet
archive that the dataset lacks (downloaded, verified and cached as ``fetch`` does, so after an
archive ``fetch`` nothing is downloaded again); ``auto`` (the default, what ``make data`` runs):
local first, i.e. ``$OFFICENET_TINY_IMAGENET_OTHERS``, else ``$OFFICENET_SHARED/datasets/
tiny-imagenet-others`` when present, else the archive; ``none``: add nothing. When none are added
(``none``, or ``auto`` offline with no local folder) ``NoOthers`` says why; the dataset is unchanged.

The class groups come from ranking ``sha256("others-class:{seed}:{wnid}")``: deterministic, and
both groups are never empty. Office classes of the dataset are never taken as others.

    "others": {"source": {...}, "class_split": {"seed": 0, "eval_fraction": 0.5, ...},
               "classes": [{"wnid": "n01443537", "label": "goldfish", "group": "train"}, ...],
               "files": [{"path": "others/n01443537/n01443537_0.JPEG", "wnid": "n01443537",
                          "split": "train", "sha256": ...}, ...],
               "counts": {"classes": {"train": 90, "eval": 90}, "files": {"train": 7200, ...}}}

    from training.data.others import OthersConfig, import_others
    import_others(OthersConfig(out="data/office20"))                     # auto
    import_others(OthersConfig(out="data/office20", source="../shared/datasets/tiny-imagenet-others"))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bundle.atomic import write_json_atomic
from bundle.flags import REQUIRED, positive, setting
from training.data.catalog import WNID, ClassInfo
from training.data.dataset import DATASET_JSON, SPLITS, Dataset, assign_split, load_dataset
from training.data.errors import SourceError
from training.data.fetch import ArchiveConfig, ArchiveUnreachable, archive_classes, shared_folder
from training.data.importer import SUBSET_HELP, SUBSETS, ImportConfig, find_candidates, is_tiny_imagenet, place_classes

OTHERS_DIR = "others"
LOCAL_ENV = "OFFICENET_TINY_IMAGENET_OTHERS"
SHARED_FOLDER = "tiny-imagenet-others"
AUTO, ARCHIVE, NONE = "auto", "archive", "none"
CLASS_SPLIT_METHOD = (
    "classes ranked by sha256('others-class:{seed}:{wnid}'); the first "
    "round(n * eval_fraction) are evaluation-only (all files split 'test'); the rest "
    "are train-side, their files split train/val by sha256('{seed}:others/{wnid}/{filename}')"
)


class NoOthers(Exception):
    """No non-office photos were added, and why (the dataset is left as it was)."""


@dataclass(kw_only=True)
class OthersConfig(ArchiveConfig):
    source: str = setting(
        AUTO,
        "a Tiny ImageNet layout folder; 'archive': every class of the Tiny ImageNet zip "
        f"that the dataset lacks (the zip fetch downloads, same cache); 'auto': ${LOCAL_ENV}, "
        f"else the shared {SHARED_FOLDER} folder if present, else the archive; 'none': add "
        "nothing",
        flag="--from",
        metavar="DIR|auto|archive|none",
    )
    out: str = setting(REQUIRED, "an existing dataset (made by fetch/import/download)", metavar="ROOT")
    per_class: int | None = setting(
        None, "keep a deterministic subset of N photos per class (default: all)", type=positive, metavar="N"
    )
    subset: str = setting("hash", SUBSET_HELP, SUBSETS)
    eval_fraction: float = setting(0.5, "share of the classes kept for evaluation only", metavar="F")
    val_fraction: float = setting(0.2, "share of a train-side class's photos held out for calibration", metavar="F")
    seed: int = setting(0, "seed of the class split and the subset")
    link: bool = setting(False, "hard-link (or symlink) instead of copying")
    workers: int = setting(4, "decoding threads", type=positive)


def read_classes(root: Path, exclude: set[str]) -> list[ClassInfo]:
    """The folder's classes (wnids.txt, else train/ folders), labelled from words.txt, minus ``exclude``."""
    wnids_file = root / "wnids.txt"
    if wnids_file.is_file():
        wnids = [w.strip() for w in wnids_file.read_text().split() if WNID.match(w.strip())]
    else:
        wnids = sorted(d.name for d in (root / "train").iterdir() if WNID.match(d.name))
    words = {}
    if (root / "words.txt").is_file():
        for line in (root / "words.txt").read_text().splitlines():
            wnid, _, label = line.partition("\t")
            words[wnid] = label.split(",")[0].strip()
    return [ClassInfo(w, words.get(w) or w) for w in sorted(set(wnids) - exclude)]


def class_groups(wnids: list[str], seed: int, eval_fraction: float) -> dict[str, str]:
    ranked = sorted(wnids, key=lambda w: hashlib.sha256(f"others-class:{seed}:{w}".encode()).digest())
    n_eval = max(1, min(len(ranked) - 1, round(len(ranked) * eval_fraction)))
    return {w: ("eval" if i < n_eval else "train") for i, w in enumerate(ranked)}


def find_local() -> Path | None:
    """The local non-office folder that ``auto`` prefers, if there is one."""
    for candidate in (os.environ.get(LOCAL_ENV), shared_folder(SHARED_FOLDER)):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def resolve_source(cfg: OthersConfig, office: set[str]) -> tuple[Path, dict]:
    """The folder to import from and how it was found; raises NoOthers when there is none to use."""
    if cfg.source == NONE:
        raise NoOthers("--from none (make data: OTHERS is empty)")
    if cfg.source not in (AUTO, ARCHIVE):
        return Path(cfg.source).expanduser(), {}
    local = find_local() if cfg.source == AUTO else None
    if local is not None:
        return local, {}
    try:
        extracted, provenance = archive_classes(cfg, exclude=frozenset(office))
    except ArchiveUnreachable as e:
        if cfg.source == ARCHIVE:
            raise
        raise NoOthers(f"no local folder (neither ${LOCAL_ENV} nor {shared_folder(SHARED_FOLDER)}), and {e}") from e
    return extracted, {"archive": provenance}


def import_others(cfg: OthersConfig) -> Dataset:
    """Add (or replace) the others of an existing dataset; returns the reloaded dataset.

    Raises NoOthers (the dataset untouched) when ``cfg.source`` leads to no photos to add."""
    root = Path(cfg.out).expanduser()
    if not 0 < cfg.eval_fraction < 1 or not 0 <= cfg.val_fraction < 1:
        raise SourceError("--eval-fraction must be in (0, 1) and --val-fraction in [0, 1)")
    ds = load_dataset(root)  # the office dataset must exist first: others only make sense beside it
    src, provenance = resolve_source(cfg, {c.wnid for c in ds.classes})
    print(f"adding the non-office photos of {src}", file=sys.stderr)
    if not src.is_dir() or not is_tiny_imagenet(src):
        raise SourceError(
            f"--from {src}: expected a Tiny ImageNet layout folder "
            f"(train/<wnid>/images/, val/val_annotations.txt), e.g. ../shared/datasets/tiny-imagenet-others"
        )
    classes = read_classes(src, exclude={c.wnid for c in ds.classes})
    if len(classes) < 2:
        raise SourceError(f"--from {src}: need at least 2 non-office classes to split by class, found {len(classes)}")
    layout, found, _ = find_candidates(src, classes)
    folder = root / OTHERS_DIR
    icfg = ImportConfig(
        source=str(src),
        out=str(folder),
        per_class=cfg.per_class,
        subset=cfg.subset,
        seed=cfg.seed,
        link=cfg.link,
        workers=cfg.workers,
    )
    kept, rejected = place_classes(classes, found, folder, icfg)
    for stale in folder.iterdir():  # classes of an earlier, different others import
        if stale.name in kept:
            continue
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    groups = class_groups([c.wnid for c in classes], cfg.seed, cfg.eval_fraction)
    fractions = {"train": 1 - cfg.val_fraction, "val": cfg.val_fraction, "test": 0.0}
    rel = [f"{OTHERS_DIR}/{c.wnid}/{name}" for c in classes for name in sorted(k.name for k in kept[c.wnid])]
    with ThreadPoolExecutor(cfg.workers) as pool:
        hashes = list(pool.map(lambda p: hashlib.sha256((root / p).read_bytes()).hexdigest(), rel))
    files = []
    for path, sha in zip(rel, hashes):
        wnid = path.split("/")[1]
        split = "test" if groups[wnid] == "eval" else assign_split(path, cfg.seed, fractions)
        files.append({"path": path, "wnid": wnid, "split": split, "sha256": sha})
    origins = Counter(k.origin for ks in kept.values() for k in ks)
    meta = json.loads((root / DATASET_JSON).read_text())
    meta["others"] = {
        "source": {
            "kind": "import-others",
            "from": str(src.resolve()),
            "layout": layout,
            **provenance,
            "origins": dict(sorted(origins.items())),
            "rejected": dict(sorted(rejected.items())),
            "config": asdict(cfg),
        },
        "class_split": {
            "seed": cfg.seed,
            "eval_fraction": cfg.eval_fraction,
            "val_fraction": cfg.val_fraction,
            "method": CLASS_SPLIT_METHOD,
        },
        "classes": [{"wnid": c.wnid, "label": c.label, "group": groups[c.wnid]} for c in classes],
        "files": files,
        "counts": {
            "classes": dict(sorted(Counter(groups.values()).items())),
            "files": {s: sum(f["split"] == s for f in files) for s in SPLITS},
        },
    }
    write_json_atomic(root / DATASET_JSON, meta)
    return load_dataset(root)
