"""Soft targets: the teacher's log-probabilities for the photos of a dataset, computed once, cached.

    from training.teacher import soft_targets
    t = soft_targets(ds, "efficientnet-lite0")        # head="auto": the head that measures better
    t.log_probs(paths)     # float32 [N, V, K]: view 0 as the trainer sees the photo, view 1 flipped
    # with views=AugmentedViews(...) (--teacher-views V > 2), views 2 .. V-1 of each train photo are
    # the trainer's own augmentations drawn once (other photos repeat view 0 there, never read)
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

Cache, beside the dataset (``<root>/teacher/``), one per (dataset id, teacher hash, head, views,
splits): ``<teacher>-<head>[-views<V>][-train+val]-<ds.id>-<hash[:12]>.npz`` (``log_probs``
[N, V, K], ``paths``) and ``.json``
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bundle.atomic import write_bytes_atomic, write_json_atomic
from training.data.dataset import SPLITS, Dataset
from training.report import top_k_accuracy
from training.teacher.heads import fit_linear_head, imagenet_log_probs, log_loss
from training.teacher.registry import IMAGENET_WNIDS, Teacher, TeacherError, load_teacher
from training.teacher.views import VIEWS, photo_seed, photo_views

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
        return paths_digest(self.paths)


def paths_digest(paths: list[str]) -> str:
    """What a cache records of its file list (the npz holds the list itself)."""
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()


@dataclass(frozen=True)
class AugmentedViews:
    """More views of each train photo than ``VIEWS``: views 2 .. count-1 are the trainer's own
    augmentation drawn once per (photo, view) (``render``), labelled by the teacher like the first
    two, and cached with them; the trainer shows one view a photo per epoch and learns the
    teacher's target of that very picture (bench/results/student-probe.md: 16 views at 150 epochs
    came within a point of a teacher run on every training view)."""

    count: int
    image_size: int  # the trainer's input side: the views are drawn at it, then resized for the teacher
    # (uint8 [n, s, s, 3] photos at image_size, int64 seeds [n], view, teacher side) -> uint8 [n, S, S, 3]
    render: Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]
    key: dict  # the settings ``render`` depends on: part of the cache's identity


@dataclass
class SoftTargets:
    teacher: str
    head: str
    root: Path
    array: np.ndarray  # [N, V, K] log-probabilities, rows in DatasetFiles order (V = 2 or AugmentedViews.count)
    index: dict[str, int]
    meta: dict

    @property
    def views(self) -> int:
        return self.array.shape[1]

    def seeds(self, paths) -> np.ndarray:
        """int64 [len(paths)]: the seed each photo's augmented views are drawn with."""
        return np.array([photo_seed(_relative(self.root, p)) for p in paths], np.int64)

    def log_probs(self, paths) -> np.ndarray:
        """float32 [len(paths), V, K] for the absolute paths ``ds.items``/``ds.others_items`` give."""
        rows = []
        for p in paths:
            row = self.index.get(_relative(self.root, p))
            if row is None:
                raise TeacherError(f"no teacher targets for {p}: not a file of the dataset at {self.root}")
            rows.append(row)
        return self.array[np.array(rows, np.int64)]


@dataclass(frozen=True)
class CacheRequest:
    """What one set of caches holds: these ``files`` (of ``splits``) of ``ds``, seen by ``teacher``
    at ``crop_fraction``, with ``views`` (None: the plain two). Every lookup and pass reads it."""

    ds: Dataset
    teacher: Teacher
    files: DatasetFiles
    splits: tuple[str, ...]
    crop_fraction: float
    views: AugmentedViews | None = None

    @property
    def count(self) -> int:
        """Views a photo: the plain two, or the augmented views' count."""
        return self.views.count if self.views else len(VIEWS)

    def path(self, kind: str, views: int | None = None) -> Path:
        return cache_path(self.ds, self.teacher, kind, self.splits, self.count if views is None else views)

    def expected(self, with_views: bool = True) -> dict:
        """What a cache's meta must record to serve this request (the plain views' features cache:
        ``with_views=False``)."""
        expect = {
            "dataset": {"id": self.ds.id, "sha256": self.ds.sha256},
            "teacher": {"name": self.teacher.name, "hash": self.teacher.hash},
            "crop_fraction": self.crop_fraction,
            "files": {"count": len(self.files.paths), "sha256": self.files.digest},
        }
        if self.views and with_views:
            v = self.views
            expect["views"] = {"count": v.count, "image_size": v.image_size, **v.key}
        return expect


def _relative(root: Path, path) -> str:
    path = Path(path)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(path)


def cache_path(
    ds: Dataset,
    teacher: Teacher,
    kind: str,
    splits: tuple[str, ...] = TRAINING_SPLITS,
    views: int = len(VIEWS),
) -> Path:
    """``<root>/teacher/<teacher>-<kind>[-views<V>][-<splits>]-<ds.id>-<hash[:12]>.npz``; kind is a
    head or "features"; a cache of every split carries no splits tag (the name caches had before
    the tag), one of the two plain views no views tag."""
    tag = "" if tuple(splits) == SPLITS else "-" + "+".join(splits)
    if views > len(VIEWS):
        kind = f"{kind}-views{views}"
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
    views: AugmentedViews | None = None,
) -> SoftTargets:
    """The cached targets of the ``splits`` of ``ds`` (computed and cached when missing or invalid);
    with ``views``, train photos get its augmented views too."""
    splits = tuple(splits)
    if views is not None and views.count <= len(VIEWS):
        views = None  # the plain views: the cache they always had
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
    request = CacheRequest(ds, t, DatasetFiles.of(ds, splits), splits, crop_fraction, views)
    found = _cached(request, wanted, progress)
    if any(v is None for v in found.values()) and splits != SPLITS:
        every = replace(request, files=DatasetFiles.of(ds, SPLITS), splits=SPLITS)
        in_every = _cached(every, wanted, lambda _: None)
        if all(v is not None for v in in_every.values()):
            found, request = in_every, every  # a superset of the rows asked for: nothing to compute
    if any(v is None for v in found.values()):
        found = _compute(request, wanted, progress)
    chosen = min(wanted, key=lambda h: found[h][1]["val"]["log_loss"])
    array, meta = found[chosen]
    if head == "auto" and len(wanted) > 1:
        meta = {**meta, "chosen_by": {"rule": "lower val log-loss", **{h: found[h][1]["val"] for h in wanted}}}
    index = {p: i for i, p in enumerate(request.files.paths)}
    return SoftTargets(t.name, chosen, ds.root, array, index, meta)


def _cached(request: CacheRequest, heads: list[str], progress) -> dict[str, tuple[np.ndarray, dict] | None]:
    expect = request.expected()
    shape = (len(request.files.paths), request.count, len(request.ds.classes) + 1)
    return {h: _read(request.path(h), {**expect, "head": h}, shape, progress) for h in heads}


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
    if array.shape[:2] != shape[:2] or (meta["array"] == "log_probs" and array.shape != shape):
        return stale(f"array shape {array.shape}, expected {shape}")
    if paths_digest(paths) != expect["files"]["sha256"]:
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
    load: Callable[[list[str]], np.ndarray] | None = None,
    per_photo: int = len(VIEWS),
) -> np.ndarray:
    """float16 [N, V, D] pooled features of the V views of every photo (``load``: a chunk of paths ->
    uint8 [len * V, S, S, 3], photo-major; default: both ``VIEWS``), with progress lines.

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
            load = load or (lambda chunk: _load_views(teacher, root, chunk, crop_fraction))
            with ThreadPoolExecutor(1) as pool:  # decode the next chunk while the teacher runs
                pending = pool.submit(load, chunks[0])
                for i, chunk in enumerate(chunks):
                    views = pending.result()
                    if i + 1 < len(chunks):
                        pending = pool.submit(load, chunks[i + 1])
                    got.append(teacher.features(views).reshape(len(chunk), per_photo, -1).astype(np.float16))
                    computed += len(chunk)
                    elapsed = time.monotonic() - start
                    if elapsed - last > 30:
                        last = elapsed
                        rate = computed * per_photo / elapsed
                        left = (len(paths) - done - (i + 1) * CHUNK) * per_photo / rate / 60
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
            f"{computed * per_photo / (time.monotonic() - start):.0f} images/s"
        )
    return np.concatenate(out) if out else np.zeros((0, per_photo, 1), np.float16)


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


def _features(request: CacheRequest, progress) -> np.ndarray:
    """float16 [N, 2, D]: the plain views' features, cached whatever the augmented views."""
    paths, expect = request.files.paths, request.expected(with_views=False)
    path = request.path("features", len(VIEWS))
    found = _read(path, {**expect, "head": None}, (len(paths), 2, 0), progress)
    if found is not None:
        return found[0]
    parts = path.with_suffix(".parts")
    feats, extraction = _timed_extraction(
        request.teacher, request.ds.root, paths, request.crop_fraction, progress, parts, expect
    )
    _write(path, "features", feats, paths, {**expect, "head": None, "extraction": extraction})
    shutil.rmtree(parts, ignore_errors=True)  # only once the cache holds what they held
    return feats


def _timed_extraction(
    t: Teacher,
    root: Path,
    paths: list[str],
    crop_fraction: float,
    progress,
    parts: Path,
    expect: dict,
    load: Callable[[list[str]], np.ndarray] | None = None,
    per_photo: int = len(VIEWS),
) -> tuple[np.ndarray, dict]:
    """``extract_features`` in resumable ``parts`` keyed by ``expect``, and what it took: seconds
    (pieces resumed from an earlier run included) and images/s. The caller removes ``parts`` once
    it has written what they hold."""
    start = time.monotonic()
    key = json.dumps(expect, sort_keys=True)
    feats = extract_features(t, root, paths, crop_fraction, progress, parts, key, load, per_photo)
    seconds = time.monotonic() - start
    images = feats.shape[0] * feats.shape[1]
    return feats, {"seconds": round(seconds), "images_per_s": round(images / max(seconds, 1e-9), 1)}


def _augmented_features(request: CacheRequest, paths: list[str], parts: Path, progress) -> tuple[np.ndarray, dict]:
    """float16 [len(paths), count - 2, D]: features of the augmented views of these (train) photos,
    and what extracting them took. Not cached once the heads have scored them (14 views of 30,000
    photos are a gigabyte), but extracted in resumable ``parts`` like the plain views."""
    ds, t, crop_fraction, views = request.ds, request.teacher, request.crop_fraction, request.views
    expect = {**request.expected(), "splits": list(request.splits)}

    def load(chunk: list[str]) -> np.ndarray:
        photos = np.stack([photo_views(ds.root / p, views.image_size, crop_fraction)[0] for p in chunk])
        seeds = np.array([photo_seed(p) for p in chunk], np.int64)
        rendered = [views.render(photos, seeds, v, t.input_size) for v in range(len(VIEWS), views.count)]
        return np.stack(rendered, axis=1).reshape(-1, *rendered[0].shape[1:])  # photo-major

    extra = views.count - len(VIEWS)
    feats, took = _timed_extraction(t, ds.root, paths, crop_fraction, progress, parts, expect, load, extra)
    progress(f"teacher {t.name}: {extra} augmented views of {len(paths)} train photos in {took['seconds']} s")
    return feats, took


def _compute(request: CacheRequest, heads: list[str], progress) -> dict[str, tuple[np.ndarray, dict]]:
    ds, t, files, views = request.ds, request.teacher, request.files, request.views
    expect = request.expected()
    feats = _features(request, progress)
    n, nv, d = feats.shape
    flat = feats.reshape(n * nv, d).astype(np.float32)
    val, train = files.splits == "val", files.splits == "train"
    scorers = {}
    for head in heads:
        if head == "imagenet":
            wnids = [c.wnid for c in ds.classes]
            scorers[head] = (lambda f, wnids=wnids: imagenet_log_probs(t.imagenet_logits(f), wnids), {})
        else:
            model, by_l2 = fit_linear_head(
                flat[np.repeat(train, nv)],
                np.repeat(files.labels, nv)[np.repeat(train, nv)],
                feats[val, 0].astype(np.float32),
                files.labels[val],
                k=len(ds.classes) + 1,
                progress=progress,
            )
            scorers[head] = (model.log_probs, {"l2": model.l2, "val_log_loss_by_l2": by_l2})
    augmented, extraction, parts = None, {}, None
    if views:
        train_paths = [p for p, keep in zip(files.paths, train) if keep]
        parts = request.path("features").with_suffix(".parts")
        augmented, extraction["views_extraction"] = _augmented_features(request, train_paths, parts, progress)
    out = {}
    for head, (score, details) in scorers.items():
        lp = score(flat).reshape(n, nv, -1)
        figures = {
            "log_loss": round(log_loss(lp[val, 0], files.labels[val]), 4),
            "top1": round(top_k_accuracy(lp[val, 0], files.labels[val], 1), 4),
            "photos": int(val.sum()),
        }
        progress(
            f"teacher {t.name} head {head}: val log-loss {figures['log_loss']}, top-1 {figures['top1']} "
            f"({figures['photos']} photos, office + other)"
        )
        if augmented is not None:
            # Only train photos are shown augmented; the others' extra views repeat view 0, never read.
            extra = np.repeat(lp[:, :1], views.count - nv, axis=1)
            m, v, _ = augmented.shape
            rows = augmented.reshape(m * v, d)
            scored = [score(rows[i : i + 16384].astype(np.float32)) for i in range(0, len(rows), 16384)]
            extra[train] = np.concatenate(scored).reshape(m, v, -1)
            lp = np.concatenate([lp, extra], axis=1)
        meta = {
            **expect,
            "head": head,
            "head_details": details,
            "val": figures,
            "splits": list(request.splits),
            **extraction,
        }
        path = request.path(head)
        _write(path, "log_probs", lp, files.paths, meta)
        out[head] = (lp, json.loads(path.with_suffix(".json").read_text()))
    if parts:
        shutil.rmtree(parts, ignore_errors=True)  # only once the head caches hold what they held
    return out
