"""The distillation teacher alone (issue 15): how good the ceiling is that the student aims at.

    python -m bench.teacher --data data/office20                      # efficientnet-lite0
    python -m bench.teacher --data data/office20 --teacher efficientnet-lite1 --sizes 128 160

Writes bench/results/teacher.md and .json (CPU flags included):
- the port's proof: 1000-way top-1/top-5 on the full-size ``imagenet-samples`` photos at the
  teacher's published resolution (centre crop size/(size + 32), as EfficientNet evaluates);
- input size vs accuracy vs speed on the 64 px office val photos upsampled (ImageNet head,
  20-way top-1 of view 0; images/s through the float TFLite runner): how the default was chosen;
- both heads (``imagenet``, ``fitted``) on the dataset at the default input size: 20-way office
  top-1/top-3 on val and test, val log-loss over the K = 21 outputs (what ``auto`` picks by),
  and office vs non-office AUROC with score = 1 - p(other) on the non-office classes kept out of
  training (``others_items("test")``) and on the train-side classes' val photos, plus the share of
  unseen non-office photos scored above the threshold that keeps 90 % of office test photos.
Computing the soft targets (``training.teacher.soft_targets``) writes the dataset's teacher cache,
so this benchmark also leaves the trainer's targets ready.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.record import cpu_info, cpu_line, parse_flags, record
from bundle.flags import setting
from export.abstain import auroc
from training.data.dataset import SPLITS, DatasetError, load_dataset
from training.report import top_k_accuracy
from training.teacher import TEACHERS, TeacherError, load_teacher, soft_targets
from training.teacher.heads import imagenet_log_probs
from training.teacher.registry import IMAGENET_WNIDS
from training.teacher.targets import cache_path, heads_for
from training.teacher.views import photo_views

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "imagenet-samples" / "images"


def _timed_features(teacher, x: np.ndarray) -> tuple[np.ndarray, float]:
    teacher.features(x[:32])  # builds and converts the model, warms XNNPACK
    start = time.monotonic()
    feats = teacher.features(x)
    return feats, len(x) / (time.monotonic() - start)


def sample_logits(features, imagenet_logits, size: int, folder: Path) -> np.ndarray:
    """1000-way logits of the photos of ``folder`` (sorted by name) at ``size`` px, centre crop
    size/(size + 32), as EfficientNet evaluates."""
    photos = sorted(folder.glob("*.JPEG"))
    return imagenet_logits(features(np.stack([photo_views(p, size, size / (size + 32))[0] for p in photos])))


def imagenet_topk(logits: np.ndarray, folder: Path) -> dict:
    """Top-1/top-5 of ``sample_logits`` against the true class of photos named ``<wnid>_<label>.JPEG``."""
    truth = np.array([IMAGENET_WNIDS.index(p.name.split("_")[0]) for p in sorted(folder.glob("*.JPEG"))])
    return {"top1": topk(logits, truth, 1), "top5": topk(logits, truth, 5)}


def samples_accuracy(name: str, folder: Path) -> dict:
    """1000-way top-1/top-5 at the published resolution on photos named ``<wnid>_<label>.JPEG``."""
    size = TEACHERS[name].published_size
    teacher = load_teacher(name, size)
    logits = sample_logits(teacher.features, teacher.imagenet_logits, size, folder)
    return {
        "photos": len(logits),
        "input_size": size,
        "crop_fraction": round(size / (size + 32), 4),
        **imagenet_topk(logits, folder),
    }


def unseen_figures(office: np.ndarray, others: np.ndarray) -> tuple[float, float]:
    """AUROC of office vs non-office scores (1 - p(other)), and the share of non-office photos
    scored at or above the threshold that keeps 90 % of the office photos."""
    labelled = float((others >= np.quantile(office, 0.10)).mean())
    return round(auroc(office, others), 4), round(labelled, 4)


def size_sweep(ds, name: str, sizes: list[int], photos: int) -> list[dict]:
    items = ds.items("val")[:photos]
    labels = np.array([y for _, y in items])
    rows = []
    for size in sizes:
        teacher = load_teacher(name, size)
        x = np.stack([photo_views(p, size)[0] for p, _ in items])
        feats, rate = _timed_features(teacher, x)
        row = {"input_size": size, "images_per_s": round(rate, 1), "photos": len(items)}
        if "imagenet" in heads_for(ds, teacher):
            lp = imagenet_log_probs(teacher.imagenet_logits(feats), [c.wnid for c in ds.classes])
            row["val_top1_imagenet_head"] = round(float((lp[:, :-1].argmax(1) == labels).mean()), 4)
        print(f"size {size}: {row}", flush=True)
        rows.append(row)
    return rows


def topk(lp: np.ndarray, labels: np.ndarray, k: int) -> float:
    return round(top_k_accuracy(lp, labels, k), 4)


def head_figures(ds, targets) -> dict:
    c = len(ds.classes)
    out = {"head": targets.head, "val": targets.meta["val"], "head_details": targets.meta["head_details"]}
    for split in ("val", "test"):
        items = ds.items(split)
        lp = targets.log_probs([p for p, _ in items])[:, 0]
        labels = np.array([y for _, y in items])
        out[f"office_{split}"] = {
            "photos": len(items),
            "top1": topk(lp[:, :c], labels, 1),
            "top3": topk(lp[:, :c], labels, 3),
        }
    office = 1 - np.exp(targets.log_probs([p for p, _ in ds.items("test")])[:, 0, c])
    for split, key in (("test", "unseen_classes"), ("val", "train_side_classes")):
        others = ds.others_items(split)
        if others:
            score = 1 - np.exp(targets.log_probs([p for p, _ in others])[:, 0, c])
            area, labelled = unseen_figures(office, score)
            out[f"auroc_{key}"] = {"photos": len(others), "auroc": area, "labelled_at_90pct_coverage": labelled}
    return out


def render(r: dict) -> str:
    s = r["samples"]
    lines = [
        f"# Teacher: {r['teacher']} (issue 15)",
        "",
        cpu_line(r["cpu"]),
        "",
        f"Dataset `{r['dataset']}`; default input size {r['input_size']} px; cache "
        f"`{r['cache']}` (head chosen by `auto`: **{r['chosen_head']}**, lower val log-loss).",
        "",
        "## The port: 1000-way on full-size ImageNet photos",
        "",
        f"{s['photos']} photos of `imagenet-samples` at {s['input_size']} px, centre crop {s['crop_fraction']}: "
        f"top-1 **{s['top1']:.1%}**, top-5 {s['top5']:.1%} (published ImageNet val top-1 of the model: "
        f"{r['published_top1']:.1%}; these photos are one clear photo per class).",
        "",
        "## Input size (64 px office val photos upsampled, ImageNet head, view 0)",
        "",
        "| input px | 20-way val top-1 | images/s (2 cores) |",
        "|---|---|---|",
    ]
    for row in r["sizes"]:
        lines.append(
            f"| {row['input_size']} | {row.get('val_top1_imagenet_head', float('nan')):.1%} | {row['images_per_s']} |"
        )
    e = r["extraction"]
    lines += [
        "",
        f"Extraction of the whole dataset's cache ({e['photos']} photos x 2 views at {r['input_size']} px): "
        f"{e.get('images_per_s', '?')} images/s, {e.get('seconds', 0) / 60:.0f} min (the 2 cores may have been "
        "shared with other jobs: compare images/s with the sweep above, measured in this run).",
        "",
        "## Heads at the default input size (view 0)",
        "",
        "| head | val log-loss (21 outputs) | office val top-1 / top-3 | office test top-1 / top-3 "
        "| AUROC unseen non-office (test) | non-office labelled at 90 % coverage | AUROC train-side classes (val) |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in r["heads"]:
        u, v = h.get("auroc_unseen_classes", {}), h.get("auroc_train_side_classes", {})
        lines.append(
            f"| {h['head']} | {h['val']['log_loss']} | {h['office_val']['top1']:.1%} / "
            f"{h['office_val']['top3']:.1%} | {h['office_test']['top1']:.1%} / {h['office_test']['top3']:.1%} "
            f"| {u.get('auroc', '-')} | {u.get('labelled_at_90pct_coverage', float('nan')):.1%} "
            f"| {v.get('auroc', '-')} |"
        )
    lines += [
        "",
        "Score for AUROC: 1 - p(other). The fitted head is a linear softmax on the frozen pooled "
        "features, fitted on the train split (office classes + train-side non-office photos as "
        '"other"), L2 chosen on val.',
        "",
    ]
    return "\n".join(lines)


@dataclass
class BenchTeacherConfig:
    data: str = setting("data/office20", "dataset (with non-office photos for AUROC)", metavar="DIR")
    teacher: str = setting("efficientnet-lite0", "the teacher to measure", tuple(sorted(TEACHERS)))
    sizes: list[int] = setting(lambda: [128, 160, 224], "input sizes to compare", metavar="PX")
    sweep_photos: int = setting(400, "office val photos for the size sweep", metavar="N")
    samples: Path = setting(SAMPLES, "imagenet-samples images folder", metavar="DIR")
    results: str = setting("bench/results", "results folder", metavar="DIR")


def measure(a: BenchTeacherConfig) -> dict:
    ds = load_dataset(a.data)
    teacher = load_teacher(a.teacher)
    start = time.monotonic()
    chosen = soft_targets(ds, teacher, progress=lambda line: print(line, flush=True), splits=SPLITS)
    features_meta = json.loads(cache_path(ds, teacher, "features", SPLITS).with_suffix(".json").read_text())
    extraction = {
        "photos": len(chosen.index),
        **features_meta.get("extraction", {}),
        "this_run_seconds": round(time.monotonic() - start),
    }
    heads = [head_figures(ds, soft_targets(ds, teacher, head=h, splits=SPLITS)) for h in heads_for(ds, teacher)]
    samples = samples_accuracy(a.teacher, a.samples)
    sizes = size_sweep(ds, a.teacher, a.sizes, a.sweep_photos)
    return {
        "teacher": a.teacher,
        "teacher_hash": teacher.hash,
        "dataset": ds.id,
        "input_size": teacher.input_size,
        "cache": str(cache_path(ds, teacher, chosen.head, SPLITS)),
        "chosen_head": chosen.head,
        "chosen_by": chosen.meta.get("chosen_by"),
        "published_top1": TEACHERS[a.teacher].published_top1,
        "samples": samples,
        "sizes": sizes,
        "extraction": extraction,
        "heads": heads,
        "cpu": cpu_info(),
    }


def main(argv: list[str] | None = None) -> int:
    a = parse_flags("python -m bench.teacher", __doc__, BenchTeacherConfig, argv)
    return record(a.results, "teacher", lambda: measure(a), render, errors=(TeacherError, DatasetError))


if __name__ == "__main__":
    sys.exit(main())
