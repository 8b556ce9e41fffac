"""How well bundles say "not an office object" (issue 8), method against method on the same photos.

    python -m bench.abstain --bundle artifacts/bundle-maxsoftmax --bundle artifacts/bundle   # side by side
    python -m bench.abstain --bundle BUNDLE --data data/office20     # dataset given directly
    python -m bench.abstain --run artifacts/run --bundle artifacts/bundle   # the run's config names the dataset

For each bundle, runs its int8 model.tflite (desktop LiteRT) on the office test split and on the
photos of the non-office classes kept out of training and calibration (``others_items("test")``),
and writes bench/results/abstain.md and .json: AUROC office vs non-office of the rule's score (max
or sum of the outputs, what every consumer thresholds; both for method b), the share of non-office
photos given an office label at 90 % and 95 % office coverage and at the manifest's threshold,
selective accuracy (office top-1 on answered photos) vs top-1 overall, and a sweep of coverages.
The figures export measured on the float model, the calibration and the int8/float abstain
agreement come from each manifest.
Methods (export.abstain): ``max_softmax`` (a) on a model trained on office photos only, and
``other_output`` (b) on a model trained with a hidden "other" output (``--other-class``).
Goals (issue 8): AUROC >= 0.90; at 90 % office coverage <= 20 % of non-office photos labelled.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.record import cpu_info, cpu_line, parse_flags, record
from bundle.abstain import scores
from bundle.flags import setting
from bundle.litert import LiteRTModel
from bundle.manifest import Bundle, BundleError, load_bundle
from export import abstain
from export.inputs import ExportError, load_pixels, split_arrays
from export.report import pct
from training.data.dataset import Dataset, DatasetError, load_dataset
from training.run import RunError, load_run

RESULTS = Path(__file__).parent / "results"
SWEEP = (0.80, 0.85, 0.90, 0.95, 0.98)
GOAL_AUROC, GOAL_LABELLED_AT_90 = 0.90, 0.20


def dataset_root(run: Path | None, data: Path | None) -> Path:
    if data is not None:
        return data
    if run is None:
        raise ValueError("give --data DATASET or --run RUN (whose config.json names the dataset)")
    return load_run(run).data_root


def measure(bundle_dir: Path, root: Path) -> dict:
    b = load_bundle(bundle_dir)
    if b.abstain is None:
        raise ValueError(
            f"{bundle_dir} has no abstain rule: export it from a dataset with non-office "
            f"photos (`python -m training.data import-others`), without --no-abstain"
        )
    ds = load_dataset(root)
    if ds.sha256 != b.manifest["dataset"]["sha256"]:
        raise ValueError(f"{root} is not the dataset {bundle_dir} was exported from (dataset.json differs)")
    model = LiteRTModel(b.model_path.read_bytes())
    x_test, y_test = split_arrays(ds, "test", b.preprocess)
    return {
        "bundle": str(bundle_dir),
        "dataset": str(root),
        **figures(b, ds, model, model.probabilities(x_test), y_test),
    }


def figures(b: Bundle, ds: Dataset, model: LiteRTModel, office: np.ndarray, y_test: np.ndarray) -> dict:
    """The abstain figures of bundle ``b`` (with a rule) on dataset ``ds``, given its ``model``'s
    probabilities ``office`` on the office test split (labels ``y_test``): the non-office photos
    are run here."""
    others = ds.others_items("test")
    non_office = model.probabilities(load_pixels([p for p, _ in others], b.preprocess))
    rule = b.abstain
    metrics = b.manifest["metrics"]
    score = rule.get("score", "max")
    office_s, others_s = scores(office, score), scores(non_office, score)
    sweep = []
    for c in SWEEP:
        t = abstain.coverage_threshold(office_s, c)
        kept = office_s >= t
        sweep.append(
            {
                "target_coverage": c,
                "threshold": round(t, 6),
                "office_coverage": round(float(kept.mean()), 4),
                "others_answered": round(float((others_s >= t).mean()), 4),
                "top1_answered": round(float((office.argmax(1) == y_test)[kept].mean()), 4),
            }
        )
    return {
        "model": b.manifest["model"],
        "rule": {k: v for k, v in rule.items() if k != "figures"},
        "office_top1": {
            "run_float": metrics.get("run_float_accuracy"),
            "float": metrics.get("float_accuracy"),
            "int8": metrics.get("int8_accuracy"),
        },
        "int8": abstain.evaluate(office, y_test, non_office, rule["threshold"], score),
        "int8_auroc_by_score": {
            name: round(abstain.auroc(scores(office, name), scores(non_office, name)), 4)
            for name in abstain.METHODS[rule["method"]].scores
        },
        "float_at_export": rule["figures"].get("float"),
        "abstain_agreement": b.manifest["parity"].get("abstain_agreement"),
        "abstain_images": b.manifest["parity"].get("abstain_images"),
        "others_classes": {
            "evaluation": len({w for _, w in others}),
            "calibration": len({w for _, w in ds.others_items("val")}),
        },
        "sweep": sweep,
    }


def render(result: dict) -> str:
    results, cpu = result["bundles"], result["cpu"]
    lines = [
        '# Abstain: "not an office object", method against method',
        "",
        cpu_line(cpu) + ".",
        "",
        "Every bundle is scored on the same photos: the office test split against photos of non-office "
        "classes that no training or calibration photo comes from. The score is the rule's (bundle/abstain.py: "
        "the max, or the sum, of the shipped int8 model's dequantized outputs), as the server and the "
        "phone page compute it.",
        "",
        "| bundle (method) | AUROC | non-office labelled @90% office cov. | @95% | office answered @threshold "
        "| non-office labelled @threshold | top-1 answered | top-1 overall | int8/float abstain agreement |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f = r["int8"]
        lines.append(
            f"| `{r['bundle']}` ({r['rule']['method']}, score {r['rule'].get('score', 'max')}) | "
            f"{f['auroc']:.3f} | "
            f"{pct(f['at_office_coverage']['90']['others_answered'])} | "
            f"{pct(f['at_office_coverage']['95']['others_answered'])} | {pct(f['office_coverage'])} | "
            f"{pct(f['others_answered'])} | {pct(f['top1_answered'])} | {pct(f['top1_overall'])} | "
            f"{pct(r['abstain_agreement'])} |"
        )
    for r in results:
        lines += ["", *_details(r)]
    best = max(results, key=lambda r: r["int8"]["auroc"])["int8"]
    at90 = best["at_office_coverage"]["90"]["others_answered"]
    lines += [
        "",
        f"Goals (issue 8), best bundle: AUROC >= {GOAL_AUROC:.2f}: "
        f"{'met' if best['auroc'] >= GOAL_AUROC else 'NOT met'} ({best['auroc']:.3f}); "
        f"at 90% office coverage <= {GOAL_LABELLED_AT_90:.0%} non-office labelled: "
        f"{'met' if at90 <= GOAL_LABELLED_AT_90 else 'NOT met'} ({pct(at90)}).",
        "",
    ]
    return "\n".join(lines)


def _details(r: dict) -> list[str]:
    rule, cal, i8, top1 = r["rule"], r["rule"]["calibrated_on"], r["int8"], r["office_top1"]
    lines = [
        f"## `{r['bundle']}`: {rule['method']}",
        "",
        f"Model {r['model']['name']} {r['model']['version']} (git {r['model']['git_revision'][:12]}). Rule: abstain "
        f"when the {rule.get('score', 'max')} of the dequantized outputs < **{rule['threshold']:.4f}**, calibrated on "
        f"the float model "
        f"for {pct(rule['target_coverage'])} coverage of {cal['office_val']} office val photos (+ {cal['others_val']} "
        f"non-office val photos of {r['others_classes']['calibration']} classes). Evaluated on {i8['office_images']} "
        f"office test photos vs {i8['others_images']} photos of {r['others_classes']['evaluation']} non-office "
        f"classes. Office test top-1: trained model {pct(top1['run_float'])}, pruned float {pct(top1['float'])}, "
        f"int8 {pct(top1['int8'])}.",
        "",
    ]
    if r["float_at_export"]:
        f = r["float_at_export"]
        lines += [
            f"Float Keras at export: AUROC {f['auroc']:.3f}, non-office labelled @90% "
            f"{pct(f['at_office_coverage']['90']['others_answered'])}, @threshold {pct(f['others_answered'])}.",
            "",
        ]
    if "temperature" in rule:
        lines += [
            f"Temperature scaling (fitted on office val): T = {rule['temperature']['fitted']}, val AUROC "
            f"{rule['temperature']['val_auroc_t1']:.3f} at T=1 vs {rule['temperature']['val_auroc_fitted']:.3f} "
            f"at the fitted T (not applied: the consumers threshold the model's own softmax).",
            "",
        ]
    if len(r["int8_auroc_by_score"]) > 1:
        by_val, by_test = cal["float_auroc_by_score"], r["int8_auroc_by_score"]
        lines += [
            "AUROC of the two scores the hidden output offers: "
            + "; ".join(f"{name}: val (float) {by_val[name]:.3f}, test (int8) {by_test[name]:.3f}" for name in by_test)
            + f". Export ships the better on val ({rule['score']}). The non-office val photos come from the "
            f'classes the "other" output was trained on, so val flatters both; test is on unseen classes.',
            "",
        ]
    lines += [
        "| office coverage (int8, office test) | threshold | non-office labelled | top-1 answered |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {pct(s['office_coverage'])} (target {pct(s['target_coverage'])}) | {s['threshold']:.4f} | "
        f"{pct(s['others_answered'])} | {pct(s['top1_answered'])} |"
        for s in r["sweep"]
    ]
    return lines


@dataclass
class BenchAbstainConfig:
    bundle: list[Path] = setting(
        lambda: [Path("artifacts/bundle")],
        "published bundle with an abstain rule; repeat to compare",
        metavar="DIR",
        repeat=True,
    )
    run: Path | None = setting(None, "trained run: its config.json names the dataset", metavar="DIR")
    data: Path | None = setting(None, "dataset root (overrides the run's)", metavar="DIR")
    results: Path = setting(RESULTS, "folder for abstain.md / abstain.json", metavar="DIR")


def main(argv: list[str] | None = None) -> int:
    a = parse_flags("python -m bench.abstain", __doc__, BenchAbstainConfig, argv)

    def measure_all() -> dict:
        root = dataset_root(a.run, a.data)
        results = [measure(bundle, root) for bundle in a.bundle]
        return {"cpu": cpu_info(), "bundles": results}

    return record(
        a.results, "abstain", measure_all, render, errors=(ValueError, BundleError, DatasetError, ExportError, RunError)
    )


if __name__ == "__main__":
    sys.exit(main())
