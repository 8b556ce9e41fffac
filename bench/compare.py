"""Recipes side by side (issue 15): each shipped bundle and the run it came from, on the same photos.

    python -m bench.compare --bundle scratch=artifacts/bundle-scratch --bundle teacher=artifacts/bundle

For every ``NAME=BUNDLE`` (its run is the one its export_config.json names), one row each of:
- float train and test top-1/top-3 (the run's metrics.json) and int8 test top-1/top-3 as shipped
  (the bundle's model.tflite in desktop LiteRT, reference preprocessing), int8/float agreement
  (and within uint8 ties, with the gate the bundle passed) and the int8 model's median top-1
  probability (a flat model ties more often at the uint8 output's 1/256 steps);
- the same int8 model with test-time flip averaging (mean of the photo's and its mirror's
  probabilities): what building it into the graph would gain, at twice the inference time;
- per-class int8 test top-1;
- "not an office object" on unseen non-office classes (bench.abstain's figures: AUROC of the
  rule's score, share of non-office photos labelled at 90 % office coverage);
- real full-size photos: the ``imagenet-samples`` photos of the bundle's classes (top-1/top-3)
  and of its other classes (the share given an office label instead of "not sure", and how many
  of those classes "other" was trained on). Those are office objects too (coffee mug, laptop,
  mouse, printer, ...): look-alikes, a harder test than unseen non-office classes;
- the run's teacher and training time (its epochs' seconds in history.csv, every session of a
  resumed run included; the machine's load is not recorded, so compare times only from one
  quiet machine);
- the git revisions that exported the bundle and that measured it.
A NAME given to several bundles is one recipe trained with several seeds: their runs' configs must
match in every group but ``runtime`` (seed, output folder, ...), and each seed may appear once;
the recipe also gets a row of means over its seeds (min-max beside each).
``--keep FILE`` shows again the rows of an earlier compare.json (measured on the same dataset id;
their bundles need not be on this machine) before the new ones, a new row replacing a kept one of its name and seed:

    python -m bench.compare --keep bench/results/compare.json --bundle teacher=artifacts/bundle-teacher-s1

Writes bench/results/compare.md and .json (with the CPU's flags). Goals (issue 15): int8 test
top-1 >= 75 %, AUROC >= 0.92 with <= 20 % non-office labelled at 90 % coverage, agreement >= 98 %.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.abstain import figures as abstain_figures
from bench.record import cpu_info, cpu_line, parse_flags, record
from bundle.abstain import abstains
from bundle.flags import REQUIRED, setting
from bundle.images import decode_image
from bundle.litert import LiteRTModel
from bundle.manifest import BundleError, load_bundle
from bundle.preprocess import preprocess
from export.inputs import ExportError, split_arrays
from export.pipeline import git_revision
from export.report import pct
from training.config import TrainConfig
from training.data.dataset import DatasetError
from training.report import top_k_hits
from training.run import RunError, load_run, read_history

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("OFFICENET_SHARED", REPO.parent / "shared")) / "datasets" / "imagenet-samples" / "images"
GOALS = {"int8_top1": 0.75, "auroc": 0.92, "labelled_at_90": 0.20, "agreement": 0.98}


def flip_averaged(model: LiteRTModel, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Test-time flip averaging: the mean of each input's and its left-right mirror's probabilities.

    Measured on the shipped int8 model to decide whether building it into the exported graph is
    worth doubling the phone's inference time.
    """
    return (probs + model.probabilities(x[:, :, ::-1])) / 2


def sample_figures(model: LiteRTModel, bundle, learned_as_other: set[str]) -> dict:
    """The full-size ``imagenet-samples`` photos through the shipped model, as the server would run them.
    ``learned_as_other``: the wnids of the non-office photos the run trained "other" on."""
    index = {c["wnid"]: c["index"] for c in bundle.manifest["classes"]}
    photos = sorted(SAMPLES.glob("*.JPEG"))
    if not photos:
        return {"photos": 0, "note": f"no photos at {SAMPLES}"}
    probs = model.probabilities(np.stack([preprocess(decode_image(p.read_bytes()), bundle.preprocess) for p in photos]))
    wnids = [p.name.split("_", 1)[0] for p in photos]
    office = np.array([w in index for w in wnids])
    labels = np.array([index.get(w, -1) for w in wnids])
    rule = bundle.manifest.get("abstain")
    labelled = ~abstains(probs, rule) if rule else np.ones(len(photos), bool)
    return {
        "photos": len(photos),
        "office_photos": int(office.sum()),
        "other_photos": int((~office).sum()),
        "office_top1": round(float(top_k_hits(probs[office], labels[office], 1).mean()), 4),
        "office_top3": round(float(top_k_hits(probs[office], labels[office], 3).mean()), 4),
        "office_answered": round(float(labelled[office].mean()), 4),
        "others_labelled": round(float(labelled[~office].mean()), 4),
        "other_classes_learned_as_other": len({w for w in wnids if w not in index} & learned_as_other),
        "misses": [
            {"photo": p.name, "top1": bundle.manifest["classes"][int(probs[i].argmax())]["label"]}
            for i, p in enumerate(photos)
            if office[i] and probs[i].argmax() != labels[i]
        ],
    }


def recipe_digest(cfg: TrainConfig) -> str:
    """sha256 of a run's config but its ``runtime`` group (seed, output folder, resume, ...) and
    the settings its recipe never reads: a run without a teacher ignores the teacher's settings
    (and a run saved before ``--distill-drop-other`` reads it as off, one saved after as on)."""
    recipe = {k: v for k, v in cfg.to_dict().items() if k != "runtime"}
    if recipe["teacher"]["name"] == "none":
        recipe["teacher"] = {"name": "none"}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def measure(name: str, bundle_dir: Path) -> dict:
    b = load_bundle(bundle_dir)
    run = load_run(Path(json.loads((bundle_dir / "export_config.json").read_text())["run"]))
    ds = run.load_dataset()
    if ds.sha256 != b.manifest["dataset"]["sha256"]:
        raise ValueError(f"{bundle_dir} was not exported from {ds.root} as it is now (dataset.json differs)")
    model = LiteRTModel(b.model_path.read_bytes())
    x, y = split_arrays(ds, "test", b.preprocess)
    probs = model.probabilities(x)
    top1 = top_k_hits(probs, y, 1)
    flip_avg = flip_averaged(model, x, probs)
    per_class = [
        {
            "label": c.label,
            "int8_top1": round(float(top1[y == i].mean()), 4),
            "float_top1": next((r["accuracy"] for r in run.metrics["test"]["per_class"] if r["wnid"] == c.wnid), None),
        }
        for i, c in enumerate(ds.classes)
    ]
    ab = abstain_figures(b, ds, model, probs, y)["int8"] if b.manifest.get("abstain") else None
    return {
        "name": name,
        "bundle": str(bundle_dir),
        "run": str(run.path),
        "dataset": ds.id,
        # Which code made the bundle and which measured it: kept rows stay comparable only while
        # the measurement's code is the same, so each row says.
        "exported_by": b.manifest["model"]["git_revision"],
        "measured_by": git_revision(),
        "seed": run.seed,
        "recipe_sha256": recipe_digest(run.config),
        "teacher": run.config.teacher.name,
        # The settings a distilled run's recipe reads, so that the table says which recipe a row is.
        "distill": None
        if run.config.teacher.name == "none"
        else {
            k: getattr(run.config.teacher, k)
            for k in ("head", "weight", "temperature", "drop_other", "views", "input_size")
        },
        "epochs": run.metrics["epochs"],
        # The trainer keeps the epoch of best val accuracy, which can be far from the last one.
        "kept_epoch": run.metrics.get("best_epoch"),
        "train_wall_s": run.metrics["wall_time_s"],
        # Its epochs' own seconds (history.csv), every session included: runs saved before
        # wall_time_s counted resumed sessions hold only their last one there.
        "train_epochs_s": round(sum(row["seconds"] for row in read_history(run.path)), 1),
        "teacher_targets": teacher_targets(run.config.teacher, ds),
        "float_train": {"top1": run.metrics["train"]["top1"], "top3": run.metrics["train"]["top3"]},
        "float": {"top1": run.metrics["test"]["top1"], "top3": run.metrics["test"]["top3"]},
        "int8": {"top1": round(float(top1.mean()), 4), "top3": round(float(top_k_hits(probs, y, 3).mean()), 4)},
        "int8_flip_avg": {
            "top1": round(float(top_k_hits(flip_avg, y, 1).mean()), 4),
            "top3": round(float(top_k_hits(flip_avg, y, 3).mean()), 4),
        },
        "int8_median_top_prob": round(float(np.median(probs.max(1))), 4),
        "agreement": b.manifest["parity"]["agreement"],
        "agreement_within_ties": b.manifest["parity"]["agreement_within_ties"],
        "gate_min_agreement": b.manifest["parity"]["gate"]["min_agreement"],
        "abstain": None
        if ab is None
        else {
            "auroc": ab["auroc"],
            "labelled_at_90": ab["at_office_coverage"]["90"]["others_answered"],
            "others_images": ab["others_images"],
        },
        "per_class": per_class,
        "photos": dataset_photos(ds),
        "samples": sample_figures(model, b, {w for _, w in ds.others_items("train")}),
    }


def dataset_photos(ds) -> dict:
    """How many photos each split of the row's dataset holds, office and non-office, and how many
    non-office classes are behind them: the data behind every figure of the row, in the results
    file itself rather than only in a training log."""
    from training.data.dataset import SPLITS

    others = {split: ds.others_items(split) for split in SPLITS}
    return {
        "office": {split: len(ds.items(split)) for split in SPLITS},
        "non_office": {split: len(others[split]) for split in SPLITS},
        "non_office_classes": {
            "training_side": len({w for split in ("train", "val") for _, w in others[split]}),
            "unseen": len({w for _, w in others["test"]}),
        },
    }


def dataset_line(rows: list[dict]) -> list[str]:
    """The dataset's photo counts, from the first row that recorded them (every row was measured
    on the same dataset id; rows kept from before the counts were recorded have none)."""
    row = next((r for r in rows if "photos" in r), None)
    if row is None:
        return []
    office, other, classes = row["photos"]["office"], row["photos"]["non_office"], row["photos"]["non_office_classes"]
    non_office = (
        f"non-office photos {other['train']} / {other['val']} (train / val) of {classes['training_side']} "
        f'training-side classes, taught as the hidden "other" output, and {other["test"]} of '
        f"{classes['unseen']} unseen classes (test: the abstain figures)"
        if sum(other.values())
        else "no non-office photos"
    )
    return [
        f"Dataset `{row['dataset']}`: office photos {office['train']} / {office['val']} / {office['test']} "
        f"(train / val / test); {non_office}.",
        "",
    ]


def teacher_targets(teacher, ds) -> dict | None:
    """The teacher's pass over the training photos' views before the first epoch: seconds and
    images/s, as its features cache records them (once per dataset and teacher: every run that
    reads the cache shares the figure; the train+val cache, else the every-split one that
    ``bench.teacher`` makes and training then reads), plus the pass over their augmented views with
    ``--teacher-views`` (its head cache records that). None without a teacher, or without either cache."""
    if teacher.name == "none":
        return None
    from training.data.dataset import SPLITS
    from training.teacher import TeacherError, load_teacher
    from training.teacher.targets import TRAINING_SPLITS, cache_path

    try:
        t = load_teacher(teacher.name, teacher.input_size)
        metas = [cache_path(ds, t, "features", splits).with_suffix(".json") for splits in (TRAINING_SPLITS, SPLITS)]
        meta = json.loads(next((m for m in metas if m.exists()), metas[0]).read_text())
        out = meta.get("extraction")
        if out and teacher.views > 2:
            head = json.loads(cache_path(ds, t, teacher.head, views=teacher.views).with_suffix(".json").read_text())
            extra = head.get("views_extraction") or {}
            out = {**out, "views": teacher.views, "views_seconds": extra.get("seconds")}
    except (TeacherError, OSError, ValueError):
        return None
    return out


MEANS = {  # figure -> how to read it from a row
    "float top-1": lambda r: r["float"]["top1"],
    "int8 top-1": lambda r: r["int8"]["top1"],
    "int8 top-3": lambda r: r["int8"]["top3"],
    "agreement": lambda r: r["agreement"],
    "AUROC": lambda r: (r["abstain"] or {}).get("auroc"),
    "labelled @90 %": lambda r: (r["abstain"] or {}).get("labelled_at_90"),
    "full-size office top-1": lambda r: r["samples"].get("office_top1"),
    "full-size office top-3": lambda r: r["samples"].get("office_top3"),
}


def seed_means(rows: list[dict]) -> list[dict]:
    """Rows grouped by NAME (one recipe, several seeds), each with the mean and range of MEANS.

    ValueError when a NAME's runs differ in recipe or repeat a seed: their mean would mean nothing."""
    out = []
    for name in dict.fromkeys(r["name"] for r in rows):
        group = [r for r in rows if r["name"] == name]
        if len({r["recipe_sha256"] for r in group}) > 1:
            # A setting added since a kept row was measured changes the digest of the same recipe.
            revisions = {r.get("measured_by", "not recorded")[:12] for r in group}
            hint = (
                f"; or the digests were made by different code ({', '.join(sorted(revisions))}): "
                "measure every seed's bundle again in one call"
                if len(revisions) > 1
                else ""
            )
            raise ValueError(f"recipe {name!r}: its runs were trained with different configs (beyond runtime){hint}")
        seeds = [r["seed"] for r in group]
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"recipe {name!r}: seed {max(seeds, key=seeds.count)} given twice")
        figures = {}
        for figure, read in MEANS.items():
            values = [read(r) for r in group]
            if None not in values:
                figures[figure] = {"mean": round(float(np.mean(values)), 4), "min": min(values), "max": max(values)}
        seed_classes = [[c["int8_top1"] for c in r["per_class"]] for r in group]
        per_class = [
            {"label": c["label"], "int8_top1": round(float(mean), 4)}
            for c, mean in zip(group[0]["per_class"], np.mean(seed_classes, axis=0))
        ]
        out.append({"name": name, "seeds": seeds, "figures": figures, "per_class": per_class})
    return out


def with_kept(path: Path, fresh: list[dict]) -> list[dict]:
    """The rows of the earlier compare.json ``path`` (each marked ``kept_from``, unless it already
    was), then ``fresh``. A fresh row replaces a kept row of the same name and seed. ValueError when
    a kept row was measured on another dataset id than the fresh rows (or does not say which), or on
    other photos of it (another non-office set) where both rows record their photo counts."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("recipes"), list):
        raise ValueError(f"--keep {path}: no recipes rows (not a compare.json)")
    dataset, replaced = fresh[0]["dataset"], {(r["name"], r["seed"]) for r in fresh}
    kept = [r for r in data["recipes"] if (r["name"], r["seed"]) not in replaced]
    photos = fresh[0].get("photos")
    for r in kept:
        if r.get("dataset") != dataset:
            raise ValueError(
                f"--keep {path}: row {r['name']!r} seed {r['seed']} was measured on dataset "
                f"{r.get('dataset', '(not recorded)')}, the new rows on {dataset}"
            )
        # The dataset id hashes the office photos only: another non-office set keeps it.
        if photos and r.get("photos") and r["photos"] != photos:
            raise ValueError(
                f"--keep {path}: row {r['name']!r} seed {r['seed']} was measured with other photos of dataset "
                f"{dataset} (non-office photos by split {r['photos']['non_office']}, the new rows' "
                f"{photos['non_office']}): its figures are not comparable"
            )
    # Training times and int8 speed depend on the machine: a kept row keeps the CPU it was measured on.
    return [{**r, "kept_from": r.get("kept_from", str(path)), "cpu": r.get("cpu", data["cpu"])} for r in kept] + fresh


def distill_settings(distill: dict | None) -> str:
    """`` (fitted, w 0.7, T 1, no "other" for office photos)``; empty for a run without a teacher."""
    if distill is None:
        return ""
    drop = ', no "other" for office photos' if distill["drop_other"] else ""
    # Rows measured before --teacher-views / --teacher-size lack them: the plain views, 128 px.
    views = f", {distill['views']} views" if distill.get("views", 2) > 2 else ""
    size = f", {distill['input_size']} px" if distill.get("input_size") else ""
    return f" ({distill['head']}, w {distill['weight']:g}, T {distill['temperature']:g}{drop}{views}{size})"


def targets_time(t: dict | None) -> str:
    if not t:
        return ""
    views = ""
    if t.get("views"):
        took = f"{t['views_seconds'] / 60:.0f} min" if t.get("views_seconds") is not None else "time not recorded"
        views = f" + {t['views'] - 2} augmented views ({took})"
    return f" + {t['seconds'] / 60:.0f} min teacher's targets ({t['images_per_s']:.0f} images/s){views}"


def kept_epoch(row: dict) -> str:
    """`` (78)`` when the trainer kept an earlier epoch's weights than the last; rows measured
    before the kept epoch was recorded show nothing."""
    kept = row.get("kept_epoch")
    return f" ({kept})" if kept is not None and kept != row["epochs"] else ""


def render(result: dict) -> str:
    rows, cpu = result["recipes"], result["cpu"]
    out = [
        "# Recipes side by side: from scratch vs distilled from an ImageNet teacher",
        "",
        cpu_line(cpu) + ".",
        "",
        *dataset_line(rows),
        "Every bundle is scored on the same photos (office test split, unseen non-office classes, the "
        "full-size `imagenet-samples` photos) through its shipped int8 model.tflite; float figures are "
        "the run's own (metrics.json). The `imagenet-samples` photos outside the bundle's classes are "
        "office objects of other ImageNet classes (coffee mug, laptop, mouse, printer, ...): look-alikes, "
        "a harder test than unseen non-office classes.",
        "",
        "| recipe | seed | teacher | epochs (the one kept) | "
        "epochs' time (+ the teacher's targets, once per dataset) | "
        "float train top-1 | float top-1 / top-3 | "
        "int8 top-1 / top-3 (shipped) | int8 + flip averaging (not shipped) | int8/float agreement "
        "(within uint8 ties; gate) | int8 median top-1 probability | AUROC | non-office labelled @90 % | "
        "full-size office top-1 / top-3 | full-size office objects of other classes labelled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ab, s = r["abstain"] or {}, r["samples"]
        out.append(
            f"| {r['name']} | {r['seed']}{' (kept)' if 'kept_from' in r else ''} | "
            f"{r['teacher']}{distill_settings(r['distill'])} | "
            f"{r['epochs']}{kept_epoch(r)} | "
            f"{r['train_epochs_s'] / 60:.0f} min{targets_time(r.get('teacher_targets'))} | "
            f"{pct(r['float_train']['top1'])} | "
            f"{pct(r['float']['top1'])} / "
            f"{pct(r['float']['top3'])} | **{pct(r['int8']['top1'])}** / {pct(r['int8']['top3'])} | "
            f"{pct(r['int8_flip_avg']['top1'])} / {pct(r['int8_flip_avg']['top3'])} | "
            f"{pct(r['agreement'])} ({pct(r['agreement_within_ties'])}; >= {pct(r['gate_min_agreement'])}) | "
            f"{r['int8_median_top_prob']:.3f} | {ab.get('auroc', 'n/a')} | {pct(ab.get('labelled_at_90'))} | "
            f"{pct(s.get('office_top1'))} / {pct(s.get('office_top3'))} (of {s.get('office_photos')}) | "
            f"{pct(s.get('others_labelled'))} (of {s.get('other_photos')}; "
            f'{s.get("other_classes_learned_as_other")} of their classes trained as "other") |'
        )
    kept = [r for r in rows if "kept_from" in r]
    if kept:
        measured = dict.fromkeys(r.get("measured_by", "not recorded")[:12] for r in kept)
        out += [
            "",
            "(kept): measured by an earlier run of this benchmark (same dataset id) and shown again from "
            "its compare.json, not re-measured; trained and measured on "
            + "; ".join(dict.fromkeys(cpu_line(r["cpu"]) for r in kept))
            + " (epochs' times compare only within one machine); benchmark code: git "
            + ", ".join(measured)
            + " (rows measured before revisions were recorded say 'not recorded').",
        ]
    out += [
        "",
        f"Goals (issue 15): int8 test top-1 >= {GOALS['int8_top1']:.0%}, AUROC >= {GOALS['auroc']:.2f} with "
        f"<= {GOALS['labelled_at_90']:.0%} of non-office photos labelled at 90 % office coverage, int8/float "
        f"agreement >= {GOALS['agreement']:.0%}.",
        "",
        "## Means over seeds (min-max)",
        "",
        "| recipe | seeds | " + " | ".join(MEANS) + " |",
        "|---|---|" + "---|" * len(MEANS),
    ]
    for g in result["means"]:
        cells = []
        for figure in MEANS:
            f = g["figures"].get(figure)
            show = (lambda v: f"{v:.3f}") if figure == "AUROC" else pct
            cells.append("n/a" if f is None else f"{show(f['mean'])} ({show(f['min'])}-{show(f['max'])})")
        out.append(f"| {g['name']} | {', '.join(map(str, g['seeds']))} | " + " | ".join(cells) + " |")
    out += [
        "",
        "## Per class (int8 test top-1, mean over seeds; compare.json has each seed's)",
        "",
        "| class | " + " | ".join(f"{g['name']} ({', '.join(map(str, g['seeds']))})" for g in result["means"]) + " |",
        "|---|" + "---|" * len(result["means"]),
    ]
    for i, c in enumerate(result["means"][0]["per_class"]):
        out.append(
            f"| {c['label']} | " + " | ".join(pct(g["per_class"][i]["int8_top1"]) for g in result["means"]) + " |"
        )
    return "\n".join(out) + "\n"


@dataclass
class CompareConfig:
    bundle: list[str] = setting(
        REQUIRED, "a recipe's published bundle (repeat: one row each)", metavar="NAME=DIR", repeat=True
    )
    results: Path = setting(RESULTS, "folder for compare.md / compare.json", metavar="DIR")
    keep: Path | None = setting(
        None,
        "rows of an earlier compare.json to show again beside the new ones, not re-measured: bundles "
        "measured before, which need not be on this machine (refused unless measured on the new rows' "
        "dataset id); "
        "a new row replaces a kept row of the same NAME and seed",
        metavar="FILE",
    )


def main(argv: list[str] | None = None) -> int:
    a = parse_flags("python -m bench.compare", __doc__, CompareConfig, argv, title="what to compare, and where")

    def measure_all() -> dict:
        pairs = [item.split("=", 1) for item in a.bundle]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("--bundle takes NAME=DIR, e.g. --bundle teacher=artifacts/bundle")
        rows = [measure(name, Path(path)) for name, path in pairs]
        if a.keep is not None:
            rows = with_kept(a.keep, rows)
        return {"cpu": cpu_info(), "recipes": rows, "means": seed_means(rows)}

    return record(
        a.results,
        "compare",
        measure_all,
        render,
        errors=(ValueError, OSError, BundleError, DatasetError, ExportError, RunError),
    )


if __name__ == "__main__":
    sys.exit(main())
