"""The trained-run seam: a run directory, written by the trainer, read by export and bench, defined here once.

    RUN/config.json       the resolved TrainConfig (training.config), every field explicit
    RUN/preprocess.json   the inference preprocessing (bundle.preprocess.PreprocessSpec)
    RUN/model.keras       float32, raw 0..255 RGB in, probabilities out (normalization inside)
    RUN/metrics.json      figures of the saved model per split (``RunMetrics``; written last: a
                          run is finished when it exists)
    RUN/history.csv       one row per finished epoch
    RUN/curves.png, confusion.png, filters.png, checkpoints/, logs/

    from training.run import load_run
    run = load_run("artifacts/run")            # RunError naming the file and what is wrong
    run.config.runtime.seed, run.other_output, run.preprocess.size, run.metrics["test"]["top1"]
    model, ds = run.load_model(), run.load_dataset()

A run saved by older code lacks the settings added since. Each such setting is listed once in
``ADDED_SINCE`` with the value that reproduces what the code did before it existed (for example a
run saved before ``--other-class`` trained no "other" output, whatever today's default says); a
missing key that is not listed there is an error, never silently today's default. Unknown keys
(from newer code) are an error too. Nothing outside this module parses run files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.preprocess import PreprocessSpec
from training.config import GROUPS, TrainConfig

CONFIG_JSON = "config.json"
PREPROCESS_JSON = "preprocess.json"
MODEL_FILE = "model.keras"
METRICS_JSON = "metrics.json"
HISTORY_CSV = "history.csv"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
PLOTS = ("curves.png", "confusion.png", "filters.png")
HISTORY_FIELDS = ["epoch", "lr", "loss", "accuracy", "top3", "val_loss", "val_accuracy", "val_top3", "seconds"]

# (group, field) -> the value that means what the code did before the field existed.
ADDED_SINCE = {
    ("data", "other_class"): "off",  # no hidden "other" output before --other-class
    ("data", "other_fraction"): 0.25,  # only read with other_class on
    ("data", "crop_scale"): 0.0,  # translation, not random-resized crop, before --crop-scale
    ("data", "mixup"): 0.0,  # no batch mixing before --mixup / --cutmix
    ("data", "cutmix"): 0.0,
    ("runtime", "stop_after"): 0,  # per invocation; never part of a run
    ("teacher", "name"): "none",  # trained from scratch before --teacher
    ("teacher", "head"): "auto",  # only read with a teacher
    ("teacher", "weight"): 0.0,
    ("teacher", "temperature"): 1.0,
    ("teacher", "hash"): "",
    ("teacher", "drop_other"): False,  # office photos learned the teacher's "other" mass too
    ("teacher", "views"): 2,  # the photo and its mirror before --teacher-views
    ("teacher", "input_size"): None,  # the registered teacher's own before --teacher-size
    ("runtime", "strategy"): "auto",  # MirroredStrategy on GPUs, else one device: what auto does
    ("runtime", "cpu_replicas"): 0,  # the CPU was never split before --cpu-replicas
    ("runtime", "replicas"): 0,  # not recorded before training.hardware
    ("schedule", "keep_epoch"): "best",  # model.keras held the best-val epoch before --keep-epoch
}


class RunError(Exception):
    """A run directory that is missing, unfinished or not readable by this version."""


def config_from_json(d: dict, where: str = CONFIG_JSON) -> TrainConfig:
    """A saved config as this code reads it: keys added since filled by ``ADDED_SINCE``, any other
    missing or unknown key a RunError."""
    values = {}
    for group, cls in GROUPS.items():
        saved = dict(d.get(group) or {})
        for f in cls.__dataclass_fields__:
            if f not in saved and (group, f) in ADDED_SINCE:
                saved[f] = ADDED_SINCE[(group, f)]
        values[group] = saved
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as e:
        raise RunError(f"{where} is not a trainer config this version can read: {e}") from None


def read_config(path: Path) -> TrainConfig:
    file = Path(path) / CONFIG_JSON
    if not file.is_file():
        raise RunError(
            f"{path} is not a trained run: {CONFIG_JSON} is missing "
            f"(make one with `python -m training.train --out {path}`)"
        )
    return config_from_json(_read_json(file), str(file))


def _read_json(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{file} is unreadable: {e}") from None


@dataclass(frozen=True)
class Run:
    """A finished run, parsed once."""

    path: Path
    config: TrainConfig
    preprocess: PreprocessSpec
    metrics: dict

    @property
    def seed(self) -> int:
        return self.config.runtime.seed

    @property
    def other_output(self) -> bool:
        """Trained with the hidden "other" output (``--other-class``): one more model output."""
        return self.config.data.other_class == "on"

    @property
    def data_root(self) -> Path:
        return Path(self.config.data.root)

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def plots(self) -> list[str]:
        return [p for p in PLOTS if (self.path / p).is_file()]

    def load_model(self):
        from training.tfenv import keras

        return keras.models.load_model(self.model_path, compile=False)

    def load_dataset(self, root: Path | None = None):
        """The dataset it was trained on (or ``root``); DatasetError when missing."""
        from training.data.dataset import load_dataset

        return load_dataset(root or self.data_root)


def load_run(path: Path) -> Run:
    """Parse RUN's config.json, preprocess.json and metrics.json; RunError naming what is missing."""
    path = Path(path)
    for name in (MODEL_FILE, PREPROCESS_JSON, CONFIG_JSON, METRICS_JSON):
        if not (path / name).is_file():
            raise RunError(
                f"{path} is not a finished trained run: {name} is missing "
                f"(make one with `python -m training.train --out {path}`"
                + (", or finish it with --resume)" if name == METRICS_JSON else ")")
            )
    try:
        spec = PreprocessSpec.from_dict(_read_json(path / PREPROCESS_JSON))
    except (TypeError, ValueError) as e:
        raise RunError(f"{path / PREPROCESS_JSON} is not a valid preprocess spec: {e}") from None
    return Run(path=path, config=read_config(path), preprocess=spec, metrics=_read_json(path / METRICS_JSON))


# --- writers (the trainer's) ---


@dataclass(frozen=True)
class RunMetrics:
    """What the trainer writes to metrics.json: the saved model's figures per split and the run's facts."""

    dataset: dict[str, str]  # {"id", "sha256"} of the dataset.json trained on
    classes: list[str]  # office labels in model output order
    image_size: int
    params: int
    epochs: int  # epochs trained, this run and the ones it resumed
    best_epoch: int  # the epoch whose weights model.keras holds
    wall_time_s: float  # the last invocation, plus the epochs of the ones it resumed (history.csv seconds)
    splits: dict[str, dict]  # "train" (with --train-eval), "val", "test": training.report.split_metrics
    other_class: dict | None = None  # with --other-class on: the hidden output's index, fraction and shares

    def to_dict(self) -> dict:
        """metrics.json's layout: the facts, one key per split, then "other_class" when trained."""
        d = {
            "dataset": self.dataset,
            "classes": self.classes,
            "image_size": self.image_size,
            "params": self.params,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "wall_time_s": self.wall_time_s,
            **self.splits,
        }
        if self.other_class is not None:
            d["other_class"] = self.other_class
        return d


def save_config(out: Path, cfg: TrainConfig) -> None:
    write_json_atomic(Path(out) / CONFIG_JSON, cfg.to_dict())


def save_preprocess(out: Path, spec: PreprocessSpec) -> None:
    write_json_atomic(Path(out) / PREPROCESS_JSON, spec.to_dict())


def save_metrics(out: Path, metrics: RunMetrics) -> None:
    write_json_atomic(Path(out) / METRICS_JSON, metrics.to_dict())


def save_model(model, out: Path) -> None:
    """model.keras via a temporary name: a kill never leaves a torn model beside a finished config."""
    path = Path(out) / MODEL_FILE
    tmp = path.with_name(f".{path.stem}.part.keras")
    model.save(tmp)
    os.replace(tmp, path)


def read_history(out: Path, upto: int | None = None) -> list[dict]:
    """history.csv's rows (epochs <= ``upto``: a resumed run drops epochs past its checkpoint)."""
    path = Path(out) / HISTORY_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return [r for r in rows if upto is None or r["epoch"] <= upto]


def write_history(out: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(Path(out) / HISTORY_CSV, buf.getvalue().encode())
