"""Soft targets: the teacher's log-probabilities for the photos of a dataset, computed once, cached.

    from training.teacher import soft_targets
    t = soft_targets(ds, "efficientnet-lite0")        # head="auto": the head that measures better
    t.log_probs(paths)     # float32 [N, 2, K]: view 0 as the trainer sees the photo, view 1 flipped
    t.head, t.meta         # which head, and its val figures (and the other head's, if compared)

K = len(ds.classes) + 1: the dataset's classes in ``ds.classes`` order, then "other". Every file
of the splits asked for has targets, office photos and non-office photos (``ds.others_items``)
alike. Training asks for ``TRAINING_SPLITS`` (train, val): 57 % of the office20 photos, since the
27,000 non-office test photos only serve ``bench.teacher``, which asks for every split
(``splits=SPLITS``). A cache of every split serves a request for fewer without a second pass.

Heads (``heads.py``): ``imagenet`` (the teacher's own softmax at the dataset's wnids, only when
all are ImageNet-1k classes) and ``fitted`` (a linear head fitted on the frozen features of the
train split). ``head="auto"`` computes every head that applies and keeps the lower val log-loss
(office val + non-office val as "other", view 0); both are recorded in the meta.

Cache, beside the dataset (``<root>/teacher/``), one per (dataset id, teacher hash, head, splits):
``<teacher>-<head>[-train+val]-<ds.id>-<hash[:12]>.npz`` (``log_probs`` [N, 2, K], ``paths``) and ``.json``
(dataset id and sha256, teacher hash, head, crop, shape, file-list hash, the npz's sha256, val
figures), plus the pooled features ``<teacher>-features[-train+val]-<ds.id>-<hash[:12]>.npz`` so another
head costs no second pass. Each file is written to a temporary name and renamed
(``bundle.atomic``), the npz before its meta, so a kill leaves no torn file. On load everything is
checked; a truncated file or one made for another dataset, teacher or crop prints a one-line
note and is recomputed, never used.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.atomic import write_bytes_atomic, write_json_atomic
from training.data.dataset import SPLITS, Dataset
from training.teacher.heads import fit_linear_head, imagenet_log_probs, log_loss, top1
from training.teacher.registry import IMAGENET_WNIDS, Teacher, TeacherError, load_teacher
from training.teacher.views import VIEWS, photo_views

HEADS = ("imagenet", "fitted")
CACHE_FORMAT = "officenet-teacher-cache"
CHUNK = 128  # photos per extraction step (256 views through the teacher)
PART = 4096  # photos per resumable piece of an extraction
TRAINING_SPLITS = ("train", "val")  # what the trainer and the export's fine-tune read; val picks the head


@dataclass(frozen=True)
class DatasetFiles:
    """The photos of some splits of a dataset in a fixed order: office files, then non-office files."""

    paths: list[str]  # relative to the dataset root, posix
    labels: np.ndarray  # class index, or C for a non-office photo ("other")
    splits: np.ndarray

    @classmethod
    def of(cls, ds: Dataset, splits: tuple[str, ...] = TRAINING_SPLITS) -> DatasetFiles:
        office = [(f.path, f.label, f.split) for f in ds.files]
        others = [(f["path"], len(ds.classes), f["split"]) for f in (ds.others or {}).get("files", [])]
        rows = [r for r in office + others if r[2] in splits]
        return cls([r[0] for r in rows], np.array([r[1] for r in rows], np.int64), np.array([r[2] for r in rows]))

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.paths).encode()).hexdigest()


@dataclass
class SoftTargets:
    teacher: str
    head: str
    root: Path
    array: np.ndarray  # [N, 2, K] log-probabilities, rows in DatasetFiles order
    index: dict[str, int]
    meta: dict

    def log_probs(self, paths) -> np.ndarray:
        """float32 [len(paths), 2, K] for the absolute paths ``ds.items``/``ds.others_items`` give."""
        rows = []
        for p in paths:
            row = self.index.get(_relative(self.root, p))
            if row is None:
                raise TeacherError(f"no teacher targets for {p}: not a file of the dataset at {self.root}")
            rows.append(row)
        return self.array[np.array(rows, np.int64)]


def _relative(root: Path, path) -> str:
    path = Path(path)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(path)


def cache_path(ds: Dataset, teacher: Teacher, kind: str, splits: tuple[str, ...] = TRAINING_SPLITS) -> Path:
    """``<root>/teacher/<teacher>-<kind>[-<splits>]-<ds.id>-<hash[:12]>.npz``; kind is a head or
    "features"; a cache of every split carries no splits tag (the name caches had before the tag)."""
    tag = "" if tuple(splits) == SPLITS else "-" + "+".join(splits)
    return ds.root / "teacher" / f"{teacher.name}-{kind}{tag}-{ds.id}-{teacher.hash[:12]}.npz"


def heads_for(ds: Dataset, teacher: Teacher) -> list[str]:
    """The heads that apply: ``imagenet`` needs an ImageNet teacher and ImageNet classes."""
    imagenet = teacher.knows_imagenet and all(c.wnid in IMAGENET_WNIDS for c in ds.classes)
    return list(HEADS) if imagenet else ["fitted"]


def soft_targets(
    ds: Dataset,
    teacher: str | Path | Teacher = "efficientnet-lite0",
    head: str = "auto",
    input_size: int | None = None,
    crop_fraction: float = 1.0,
    progress=print,
    splits: tuple[str, ...] = TRAINING_SPLITS,
) -> SoftTargets:
    """The cached targets of the ``splits`` of ``ds`` (computed and cached when missing or invalid)."""
    splits = tuple(splits)
    if not {"train", "val"} <= set(splits) <= set(SPLITS):
        raise ValueError(f"splits {splits} must include train (to fit the head) and val (to pick it)")
    t = teacher if isinstance(teacher, Teacher) else load_teacher(teacher, input_size)
    candidates = heads_for(ds, t)
    if head != "auto" and head not in candidates:
        why = "" if head not in HEADS else " (it needs an ImageNet teacher and ImageNet-1k classes)"
        raise TeacherError(
            f"head {head!r} does not apply to teacher {t.name} on {ds.id}{why}; "
            f"heads that do: {', '.join(candidates)} or auto"
        )
    wanted = candidates if head == "auto" else [head]
    files = DatasetFiles.of(ds, splits)
    found = _cached(ds, t, files, wanted, splits, crop_fraction, progress)
    if any(v is None for v in found.values()) and splits != SPLITS:
        every = DatasetFiles.of(ds, SPLITS)
        in_every = _cached(ds, t, every, wanted, SPLITS, crop_fraction, lambda _: None)
        if all(v is not None for v in in_every.values()):
            found, files = in_every, every  # a superset of the rows asked for: nothing to compute
    if any(v is None for v in found.values()):
        found = _compute(ds, t, files, wanted, splits, crop_fraction, progress)
    chosen = min(wanted, key=lambda h: found[h][1]["val"]["log_loss"])
    array, meta = found[chosen]
    if head == "auto" and len(wanted) > 1:
        meta = {**meta, "chosen_by": {"rule": "lower val log-loss", **{h: found[h][1]["val"] for h in wanted}}}
    return SoftTargets(t.name, chosen, ds.root, array, {p: i for i, p in enumerate(files.paths)}, meta)


def _expected(ds: Dataset, t: Teacher, files: DatasetFiles, crop_fraction: float) -> dict:
    """What a cache's meta must record to serve these files of this dataset and teacher."""
    return {
        "dataset": {"id": ds.id, "sha256": ds.sha256},
        "teacher": {"name": t.name, "hash": t.hash},
        "crop_fraction": crop_fraction,
        "files": {"count": len(files.paths), "sha256": files.digest},
    }


def _cached(
    ds: Dataset, t: Teacher, files: DatasetFiles, heads: list[str], splits, crop_fraction: float, progress
) -> dict[str, tuple[np.ndarray, dict] | None]:
    expect = _expected(ds, t, files, crop_fraction)
    shape = (len(files.paths), 2, len(ds.classes) + 1)
    return {h: _read(cache_path(ds, t, h, splits), {**expect, "head": h}, shape, progress) for h in heads}


def _read(path: Path, expect: dict, shape: tuple, progress) -> tuple[np.ndarray, dict] | None:
    """A cache that passes every check, or None (with a one-line note if one was there)."""
    meta_path = path.with_suffix(".json")
    if not path.exists() and not meta_path.exists():
        return None

    def stale(why: str):
        progress(f"teacher cache {path.name}: {why}; recomputing")
        return None

    try:
        meta = json.loads(meta_path.read_text())
        data = path.read_bytes()
    except (OSError, json.JSONDecodeError) as e:
        return stale(f"unreadable ({e.__class__.__name__})")
    if meta.get("format") != CACHE_FORMAT:
        return stale("not a teacher cache")
    for key, value in expect.items():
        if meta.get(key) != value:
            return stale(
                {"dataset": "made for another dataset", "teacher": "made by another teacher"}.get(
                    key, f"{key} differs ({meta.get(key)} != {value})"
                )
            )
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return stale("truncated or corrupt (checksum mismatch)")
    try:
        with np.load(io.BytesIO(data)) as npz:
            array, paths = npz[meta["array"]], list(npz["paths"])
    except (ValueError, KeyError, OSError) as e:
        return stale(f"unreadable arrays ({e})")
    if array.shape[0] != shape[0] or array.shape[1] != 2 or (meta["array"] == "log_probs" and array.shape != shape):
        return stale(f"array shape {array.shape}, expected {shape}")
    if hashlib.sha256("\n".join(paths).encode()).hexdigest() != expect["files"]["sha256"]:
        return stale("file list differs")
    return array, meta


def _write(path: Path, array_name: str, array: np.ndarray, paths: list[str], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **{array_name: array, "paths": np.array(paths)})
    data = buf.getvalue()
    write_bytes_atomic(path, data)  # the data first: a meta always describes a complete file
    write_json_atomic(
        path.with_suffix(".json"),
        {
            **meta,
            "format": CACHE_FORMAT,
            "array": array_name,
            "shape": list(array.shape),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )


def extract_features(
    teacher: Teacher,
    root: Path,
    paths: list[str],
    crop_fraction: float,
    progress=print,
    parts: Path | None = None,
    key: str = "",
) -> np.ndarray:
    """float16 [N, 2, D] pooled features of both views of every photo, with progress lines.

    With ``parts``, every PART photos are also saved there (``00000.npz``, ..., atomically, tagged
    with ``key``), and pieces already there with the same key and paths are reused: an hour-long
    extraction on a busy 2-core machine survives a kill and resumes where it stopped."""
    pieces = [paths[i : i + PART] for i in range(0, len(paths), PART)]
    out, done, computed, start, last = [], 0, 0, time.monotonic(), 0.0
    for j, piece in enumerate(pieces):
        part = parts / f"{j:05d}.npz" if parts else None
        feats = _read_part(part, key, piece) if part else None
        if feats is None:
            chunks = [piece[i : i + CHUNK] for i in range(0, len(piece), CHUNK)]
            got = []
            with ThreadPoolExecutor(1) as pool:  # decode the next chunk while the teacher runs
                pending = pool.submit(_load_views, teacher, root, chunks[0], crop_fraction)
                for i, chunk in enumerate(chunks):
                    views = pending.result()
                    if i + 1 < len(chunks):
                        pending = pool.submit(_load_views, teacher, root, chunks[i + 1], crop_fraction)
                    got.append(teacher.features(views).reshape(len(chunk), len(VIEWS), -1).astype(np.float16))
                    computed += len(chunk)
                    elapsed = time.monotonic() - start
                    if elapsed - last > 30:
                        last = elapsed
                        rate = computed * len(VIEWS) / elapsed
                        left = (len(paths) - done - (i + 1) * CHUNK) * len(VIEWS) / rate / 60
                        progress(
                            f"teacher {teacher.name} @ {teacher.input_size}px: {done + (i + 1) * CHUNK}/"
                            f"{len(paths)} photos, {rate:.0f} images/s, {max(left, 0):.1f} min left"
                        )
            feats = np.concatenate(got)
            if part:
                buf = io.BytesIO()
                np.savez(buf, features=feats, paths=np.array(piece), key=np.array(key))
                part.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(part, buf.getvalue())
        out.append(feats)
        done += len(piece)
    if computed:
        progress(
            f"teacher {teacher.name} @ {teacher.input_size}px: {len(paths)} photos, "
            f"{computed * len(VIEWS) / (time.monotonic() - start):.0f} images/s"
        )
    return np.concatenate(out) if out else np.zeros((0, len(VIEWS), 1), np.float16)


def _load_views(teacher: Teacher, root: Path, chunk: list[str], crop_fraction: float) -> np.ndarray:
    return np.concatenate([photo_views(root / p, teacher.input_size, crop_fraction) for p in chunk])


def _read_part(part: Path, key: str, piece: list[str]) -> np.ndarray | None:
    try:
        with np.load(part) as npz:
            if str(npz["key"]) == key and list(npz["paths"]) == piece:
                return npz["features"]
    except (OSError, ValueError, KeyError, EOFError):
        pass  # absent, or not a complete piece: compute it again
    return None


def _features(
    ds: Dataset, t: Teacher, files: DatasetFiles, splits, expect: dict, crop_fraction: float, progress
) -> np.ndarray:
    path = cache_path(ds, t, "features", splits)
    found = _read(path, {**expect, "head": None}, (len(files.paths), 2, 0), progress)
    if found is not None:
        return found[0]
    parts = path.with_suffix(".parts")
    start = time.monotonic()
    feats = extract_features(
        t, ds.root, files.paths, crop_fraction, progress, parts, json.dumps(expect, sort_keys=True)
    )
    seconds = time.monotonic() - start  # includes pieces resumed from an earlier run, if any
    extraction = {"seconds": round(seconds), "images_per_s": round(feats.shape[0] * len(VIEWS) / max(seconds, 1e-9), 1)}
    _write(path, "features", feats, files.paths, {**expect, "head": None, "extraction": extraction})
    shutil.rmtree(parts, ignore_errors=True)
    return feats


def _compute(
    ds: Dataset, t: Teacher, files: DatasetFiles, heads: list[str], splits, crop_fraction: float, progress
) -> dict[str, tuple[np.ndarray, dict]]:
    expect = _expected(ds, t, files, crop_fraction)
    feats = _features(ds, t, files, splits, expect, crop_fraction, progress)
    n, views, d = feats.shape
    flat = feats.reshape(n * views, d).astype(np.float32)
    val = files.splits == "val"
    out = {}
    for head in heads:
        details = {}
        if head == "imagenet":
            lp = imagenet_log_probs(t.imagenet_logits(flat), [c.wnid for c in ds.classes])
        else:
            train = np.repeat(files.splits == "train", views)
            model, details = fit_linear_head(
                flat[train],
                np.repeat(files.labels, views)[train],
                feats[val, 0].astype(np.float32),
                files.labels[val],
                k=len(ds.classes) + 1,
                progress=progress,
            )
            details = {"l2": model.l2, "val_log_loss_by_l2": details}
            lp = model.log_probs(flat)
        lp = lp.reshape(n, views, -1)
        figures = {
            "log_loss": round(log_loss(lp[val, 0], files.labels[val]), 4),
            "top1": round(top1(lp[val, 0], files.labels[val]), 4),
            "photos": int(val.sum()),
        }
        progress(
            f"teacher {t.name} head {head}: val log-loss {figures['log_loss']}, top-1 {figures['top1']} "
            f"({figures['photos']} photos, office + other)"
        )
        meta = {**expect, "head": head, "head_details": details, "val": figures, "splits": list(splits)}
        _write(cache_path(ds, t, head, splits), "log_probs", lp, files.paths, meta)
        out[head] = (lp, json.loads(cache_path(ds, t, head, splits).with_suffix(".json").read_text()))
    return out
