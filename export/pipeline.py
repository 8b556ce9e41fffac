"""The export, step by step: run -> pruned model -> office outputs -> int8 -> abstain rule -> parity gate -> bundle.

    from export.pipeline import export
    result = export(cfg)        # ExportConfig; returns ExportResult(published=..., failures=[...])

``make_candidate`` does the work and returns a typed ``Candidate`` (the model, both TFLite files,
every figure, the draft manifest, the failures); ``_publish`` or ``_refuse`` writes it out.

Nothing touches ``cfg.out`` until the gate has passed: the bundle is built in a staging
directory beside it, sealed (hashed + validated by ``bundle.manifest.load_bundle``) and renamed
into place by ``bundle.publish``. A refused model leaves its evidence in ``OUT.parity-failure/``
and the published bundle byte-identical. The float TFLite of the pruned model, for comparison,
goes to ``OUT.float.tflite`` (kept out of the bundle, which phones download).
When the dataset has non-office photos (``import-others``), the manifest gets an ``abstain``
rule (export.abstain) and the gate also checks float and int8 agree on abstaining. A run trained
with a hidden "other" output (``--other-class``) is fine-tuned and calibrated with its non-office
photos too, and ships without that output (export.outputs): consumers see the office classes only.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.litert import LiteRTModel
from bundle.manifest import SCHEMA_VERSION, bytes_digest, file_digest
from bundle.publish import publish, seal, staging_dir
from export import abstain
from export.config import ExportConfig
from export.debug import layer_errors
from export.golden import write_golden
from export.inputs import ExportError, Source, load_pixels, load_source, split_arrays
from export.outputs import office_outputs
from export.parity import drifted_classes, gate, measure
from export.prune import overall_sparsity, prune_model
from export.quantize import calibration_items, check_int8_graph, graph_ops, op_counts, to_tflite
from export.report import render_report

MODEL_FILE = "model.tflite"
DEBUG_IMAGES = 50  # enough test images for stable per-layer error, cheap enough on 2 cores


@dataclass
class ExportResult:
    published: Path | None
    failures: list[str] = field(default_factory=list)
    drifted: list[dict] = field(default_factory=list)
    failure_dir: Path | None = None
    manifest: dict | None = None


def log(msg: str) -> None:
    print(f"[export {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sidecar(out: Path, suffix: str) -> Path:
    """A path next to the bundle (never inside it): OUT.float.tflite, OUT.parity-failure."""
    return out.parent / f"{out.name}.{suffix}"


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "export", "bundle", "training"],
            cwd=here.parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def predict_keras(model, pixels: np.ndarray) -> np.ndarray:
    return model.predict(pixels.astype(np.float32), batch_size=64, verbose=0).astype(np.float32)


def build_manifest(
    cfg: ExportConfig,
    dataset,
    spec,
    int8_model: LiteRTModel,
    figures: dict,
    sparsity: list[dict],
    ops: list[dict],
    run_float_accuracy: float,
) -> dict:
    """manifest.json (schema in bundle/manifest.py) less ``golden`` and ``files``, added when written."""
    in_scale, in_zp = int8_model.input_quant
    out_scale, out_zp = int8_model.output_quant
    # Pruned weights are stored densely, so the float file has the unpruned size (gzip differs);
    # make_candidate() adds it, and the int8 size once model.tflite is written.
    sizes = {}
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "name": cfg.model.name,
            "version": cfg.model.version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_revision": git_revision(),
            "file": MODEL_FILE,
        },
        "classes": [{"index": i, "wnid": c.wnid, "label": c.label} for i, c in enumerate(dataset.classes)],
        "input": {
            "shape": [1, spec.size, spec.size, 3],
            "dtype": int8_model.input_dtype,
            "quantization": {"scale": float(in_scale), "zero_point": int(in_zp)},
            "preprocess": spec.to_dict(),
        },
        "output": {
            "shape": [int(d) for d in int8_model.output["shape"]],
            "dtype": np.dtype(int8_model.output["dtype"]).name,
            "quantization": {"scale": float(out_scale), "zero_point": int(out_zp)},
            "kind": "probabilities",
        },
        "dataset": {"id": dataset.id, "sha256": dataset.sha256, "catalog": dataset.meta.get("catalog")},
        "metrics": {
            "run_float_accuracy": round(run_float_accuracy, 4),
            "float_accuracy": figures["float_accuracy"],
            "int8_accuracy": figures["int8_accuracy"],
            "test_images": figures["images"],
            "sizes": sizes,
            "sparsity": {
                "target": cfg.prune.target_sparsity,
                "overall": round(overall_sparsity(sparsity), 4),
                "layers": sparsity,
            },
            "ops": op_counts(ops),
        },
        "parity": {**{k: v for k, v in figures.items() if k != "per_class"}, "gate": asdict(cfg.gate)},
    }


def train_pipeline(src: Source, batch_size: int, mix: bool = False):
    """The trainer's tf.data pipeline with the run's own data settings (augmentation, the non-office
    photos of a run with a hidden "other" output, the teacher's targets), as the run recorded them;
    its mixup/CutMix only with ``mix``."""
    from training.distill import soft_targets_for
    from training.pipeline import Pipeline

    cfg, classes = src.run.config, len(src.dataset.classes)
    # Mixed batches regularise a long schedule; in a short healing fine-tune they cost accuracy:
    # a CutMix run (58.2 % float) lost 3.3 points of test top-1 to pruning + int8 fine-tuned on
    # mixed batches and 1.4 on unmixed ones (bench/results/compare.md). timm likewise turns mixup
    # off for the last epochs.
    data = cfg.data if mix else replace(cfg.data, mixup=0.0, cutmix=0.0)
    # A distilled run fine-tunes on the same cached teacher targets it trained on.
    soft = soft_targets_for(cfg, src.dataset, classes + src.run.other_output)
    return Pipeline(src.dataset, data, src.spec.size, classes, batch_size, seed=src.run.seed, soft_targets=soft)


def abstain_rule(
    cfg: ExportConfig, src: Source, model, int8_model: LiteRTModel, office_test: tuple, figures: dict
) -> dict | None:
    """The manifest's ``abstain`` section, or None without non-office photos (or --no-abstain).

    Adds ``abstain_agreement``/``abstain_images`` to the parity ``figures`` for the gate.
    ``office_test`` is (labels, float Keras probs, int8 probs) of the office test split.
    """
    dataset, spec = src.dataset, src.spec
    others_val, others_test = dataset.others_items("val"), dataset.others_items("test")
    if not cfg.abstain.enabled:
        log("abstain rule: off (--no-abstain)")
        return None
    if not others_val or not others_test:
        log(
            "abstain rule: none, the dataset has no non-office val and test photos "
            "(add them with `python -m training.data import-others`)"
        )
        return None
    x_val, y_val = split_arrays(dataset, "val", spec)
    x_others_val = load_pixels([p for p, _ in others_val], spec)
    x_others_test = load_pixels([p for p, _ in others_test], spec)
    method = abstain.choose_method(cfg.abstain.method, src.run.other_output)
    rule = abstain.calibrate(
        predict_keras(model, x_val),
        y_val,
        predict_keras(model, x_others_val),
        int8_model.output_quant[0],
        cfg.abstain.coverage,
        method,
    )
    t, score = rule["threshold"], rule["score"]
    rule["calibrated_on"]["int8_office_coverage"] = round(
        float(abstain.answered(int8_model.probabilities(x_val), t, score).mean()), 4
    )
    y_test, keras_test, int8_test = office_test
    keras_others, int8_others = predict_keras(model, x_others_test), int8_model.probabilities(x_others_test)
    rule["figures"] = {
        "int8": abstain.evaluate(int8_test, y_test, int8_others, t, score),
        "float": abstain.evaluate(keras_test, y_test, keras_others, t, score),
    }
    figures["abstain_agreement"] = round(
        abstain.abstain_agreement(
            np.concatenate([keras_test, keras_others]), np.concatenate([int8_test, int8_others]), t, score
        ),
        4,
    )
    figures["abstain_images"] = len(y_test) + len(others_test)
    f = rule["figures"]["int8"]
    log(
        f"abstain rule ({method.name}, score {score}): threshold {t:.4f} (int8 output scale) calibrated on "
        f"{len(y_val)} office "
        f"+ {len(others_val)} non-office val photos for {cfg.abstain.coverage:.0%} office coverage; on "
        f"{len(others_test)} photos of unseen non-office classes: AUROC {f['auroc']:.3f}, "
        f"{f['others_answered']:.1%} given an office label, office coverage {f['office_coverage']:.1%}; "
        f"int8/float abstain agreement {figures['abstain_agreement']:.2%}"
    )
    return rule


def check_abstain_inputs(cfg: ExportConfig, src: Source) -> None:
    """Refuse up front what the abstain method cannot work with (ExportError naming the fix)."""
    if src.run.other_output and not cfg.abstain.enabled:
        raise ExportError(
            f"{cfg.run} was trained with a hidden 'other' output (--other-class): only the "
            f"abstain rule reads it, and without it the shipped office scores would simply sum "
            f"to less than 1; drop --no-abstain"
        )
    try:
        method = abstain.choose_method(cfg.abstain.method, src.run.other_output)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if method.needs_other_output and not all(src.dataset.others_items(s) for s in ("train", "val", "test")):
        raise ExportError(
            f"{cfg.run} was trained with --other-class but dataset {src.dataset.root} lacks "
            f"non-office train/val/test photos to fine-tune with, calibrate the abstain rule on "
            f"and evaluate it (python -m training.data import-others)"
        )


@dataclass
class Candidate:
    """The int8 model one export made, and everything measured of it: what either publishing or
    the refusal's evidence is written from."""

    model: object  # the pruned float tf_keras model, office outputs only
    float_tflite: bytes
    int8_tflite: bytes
    int8: LiteRTModel
    sparsity: list[dict]
    ops: list[dict]
    figures: dict  # parity.json
    manifest: dict  # less golden/files, added when the bundle is written
    failures: list[str]  # the int8 graph check's and the gate's; empty = publish
    x_calib: np.ndarray  # the calibration pixels (the refusal's per-layer errors)
    x_test: np.ndarray


def export(cfg: ExportConfig) -> ExportResult:
    log(f"loading run {cfg.run}")
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    src = load_source(cfg.run, cfg.data)
    check_abstain_inputs(cfg, src)
    c = make_candidate(cfg, src)
    if c.failures:
        return _refuse(cfg, src, c)
    return _publish(cfg, src, c)


def make_candidate(cfg: ExportConfig, src: Source) -> Candidate:
    """Prune, cut "other", convert to float and int8 TFLite, measure parity and the abstain rule."""
    from training.tfenv import keras, tf

    spec, dataset = src.spec, src.dataset
    names = [c.label for c in dataset.classes]
    x_test, y_test = split_arrays(dataset, "test", spec)
    run_float_accuracy = float(
        (predict_keras(office_outputs(src.model, len(names)), x_test).argmax(1) == y_test).mean()
    )

    if cfg.prune.target_sparsity:
        log(
            f"pruning Conv2D/Dense kernels to {cfg.prune.target_sparsity:.0%} sparsity, "
            f"{cfg.prune.epochs} fine-tuning epochs"
        )
    # The fine-tuning draws dropout masks and batch order: seeded by the run's own seed, with
    # deterministic kernels, the same run exports the same model.tflite every time.
    keras.utils.set_random_seed(src.run.seed)
    tf.config.experimental.enable_op_determinism()
    pipe = train_pipeline(src, cfg.prune.batch_size, cfg.prune.mix)
    model, sparsity = prune_model(src.model, pipe.train, pipe.epoch_size(), cfg.prune)
    log(f"kernel sparsity {overall_sparsity(sparsity):.4f}")
    if src.run.other_output:
        log(
            f"cutting the hidden 'other' output (index {len(names)}) off the model: it ships "
            f"{len(names)} office probabilities that sum to 1 - p(other)"
        )
    model = office_outputs(model, len(names))

    calib_items = calibration_items(dataset, cfg.quantize.calibration_images, cfg.quantize.seed, src.run.other_output)
    log(f"converting: float TFLite, and int8 calibrated on {len(calib_items)} train images")
    x_calib = load_pixels([p for p, _ in calib_items], spec)
    float_tflite = to_tflite(model, spec.size)
    int8_tflite = to_tflite(model, spec.size, x_calib)
    ops = graph_ops(int8_tflite)
    problems = check_int8_graph(int8_tflite, model)

    log(f"parity on {len(y_test)} test images (LiteRT)")
    int8_model = LiteRTModel(int8_tflite)
    keras_test, int8_test = predict_keras(model, x_test), int8_model.probabilities(x_test)
    figures = measure(keras_test, LiteRTModel(float_tflite).probabilities(x_test), int8_test, y_test, names)
    rule = abstain_rule(cfg, src, model, int8_model, (y_test, keras_test, int8_test), figures)

    manifest = build_manifest(cfg, dataset, spec, int8_model, figures, sparsity, ops, run_float_accuracy)
    manifest["metrics"]["sizes"]["float_tflite"] = bytes_digest(float_tflite)
    if rule:
        manifest["abstain"] = rule
    return Candidate(
        model=model,
        float_tflite=float_tflite,
        int8_tflite=int8_tflite,
        int8=int8_model,
        sparsity=sparsity,
        ops=ops,
        figures=figures,
        manifest=manifest,
        failures=problems + gate(figures, cfg.gate),
        x_calib=x_calib,
        x_test=x_test,
    )


def _publish(cfg: ExportConfig, src: Source, c: Candidate) -> ExportResult:
    figures, manifest = c.figures, c.manifest
    names = [cls.label for cls in src.dataset.classes]
    plots = src.run.plots()
    log(
        f"gate passed: agreement {figures['agreement']:.2%}, int8 top-1 {figures['int8_accuracy']:.2%} "
        f"(float {figures['float_accuracy']:.2%}); publishing {cfg.out}"
    )
    # Only a published export replaces the float model beside the bundle (a refused one leaves it).
    write_bytes_atomic(sidecar(cfg.out, "float.tflite"), c.float_tflite)
    with staging_dir(cfg.out) as tmp:
        (tmp / MODEL_FILE).write_bytes(c.int8_tflite)
        manifest["metrics"]["sizes"]["int8_tflite"] = file_digest(tmp / MODEL_FILE)
        (tmp / "labels.txt").write_text("".join(f"{n}\n" for n in names))
        manifest["golden"] = write_golden(tmp, src.dataset.items("test"), src.spec, c.int8, cfg.model.golden_images)
        write_json_atomic(tmp / "parity.json", figures)
        write_json_atomic(tmp / "export_config.json", cfg.to_dict())
        _copy_plots(src.path, tmp, plots)
        (tmp / "REPORT.md").write_text(
            render_report(manifest, figures, c.sparsity, c.ops, [f"plots/{p}" for p in plots])
        )
        manifest = seal(tmp, manifest)
        publish(tmp, cfg.out)
    shutil.rmtree(sidecar(cfg.out, "parity-failure"), ignore_errors=True)
    log(f"published {cfg.out} ({manifest['metrics']['sizes']['int8_tflite']['bytes']} bytes int8 model)")
    return ExportResult(published=Path(cfg.out), manifest=manifest)


def _refuse(cfg: ExportConfig, src: Source, c: Candidate) -> ExportResult:
    """Write the evidence of a refused model beside the bundle; the bundle itself is not touched."""
    figures, manifest, failures = c.figures, c.manifest, c.failures
    log("gate FAILED: " + "; ".join(failures))
    drifted = drifted_classes(figures, cfg.gate)
    log("per-layer quantization error (QuantizationDebugger)")
    errors = layer_errors(c.model, src.spec.size, c.x_calib, c.x_test[:DEBUG_IMAGES])
    folder = sidecar(cfg.out, "parity-failure")
    with staging_dir(folder) as tmp:
        (tmp / MODEL_FILE).write_bytes(c.int8_tflite)
        manifest["metrics"]["sizes"]["int8_tflite"] = file_digest(tmp / MODEL_FILE)
        write_json_atomic(tmp / "parity.json", {**figures, "failures": failures, "drifted": drifted})
        write_json_atomic(tmp / "layer_errors.json", errors)
        write_json_atomic(tmp / "manifest.draft.json", manifest)
        write_json_atomic(tmp / "export_config.json", cfg.to_dict())
        (tmp / "REPORT.md").write_text(render_report(manifest, figures, c.sparsity, c.ops, (), failures, errors))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return ExportResult(published=None, failures=failures, drifted=drifted, failure_dir=folder, manifest=manifest)


def _copy_plots(run: Path, dest: Path, plots: list[str]) -> None:
    if plots:
        (dest / "plots").mkdir()
        for p in plots:
            shutil.copyfile(run / p, dest / "plots" / p)
