"""What export reads: the trained run, its dataset, and images turned into pixels the reference way.

    from export.inputs import load_run, load_pixels
    run = load_run(Path("artifacts/run"))            # ExportError (exit 2) naming what is missing
    x = load_pixels([p for p, _ in run.dataset.items("test")], run.spec)   # uint8 (n, S, S, 3)

Pixels always come from ``bundle.images.decode_image`` + ``bundle.preprocess.preprocess``, the
same path the server and the phone page are proven against, so calibration, parity and golden
vectors see exactly what a consumer would feed the model.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.images import ImageError, decode_image
from bundle.preprocess import PreprocessSpec, preprocess
from training.data.dataset import Dataset, DatasetError, load_dataset


class ExportError(Exception):
    """An input problem the user can fix (missing run file, bad dataset): exit code 2, no traceback."""


@dataclass
class Run:
    path: Path
    model: object          # tf_keras.Model, float32
    spec: PreprocessSpec
    config: dict
    dataset: Dataset

    @property
    def seed(self) -> int:
        """The training seed (config.json), which export's pruning fine-tune reuses."""
        return int(self.config.get("runtime", {}).get("seed", 0))

    @property
    def other_class(self) -> bool:
        """Trained with a hidden "other" output (``--other-class``): N + 1 model outputs."""
        return self.config.get("data", {}).get("other_class") == "on"


def load_run(path: Path, data: Path | None = None) -> Run:
    """Load RUN/model.keras, RUN/preprocess.json and the dataset the run was trained on."""
    from training.tfenv import keras

    path = Path(path)
    for name in ("model.keras", "preprocess.json"):
        if not (path / name).is_file():
            raise ExportError(f"{path} is not a trained run: {name} is missing "
                              f"(make one with `python -m training.train --out {path}`)")
    try:
        spec = PreprocessSpec.from_dict(json.loads((path / "preprocess.json").read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise ExportError(f"{path / 'preprocess.json'} is not a valid preprocess spec: {e}")
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    if data is None:
        root = config.get("data", {}).get("root") if isinstance(config.get("data"), dict) else None
        if not root:
            raise ExportError(f"{path / 'config.json'} names no data.root: pass --data DATASET_ROOT")
        data = Path(root)
    try:
        dataset = load_dataset(data)
    except DatasetError as e:
        raise ExportError(f"dataset for export: {e}")
    model = keras.models.load_model(path / "model.keras", compile=False)
    if model.input_shape[1:] != (spec.size, spec.size, 3):
        raise ExportError(f"model input {model.input_shape} disagrees with preprocess size {spec.size}")
    run = Run(path=path, model=model, spec=spec, config=config, dataset=dataset)
    if model.output_shape[-1] != len(dataset.classes) + run.other_class:
        raise ExportError(f"model has {model.output_shape[-1]} outputs, dataset {data} has "
                          f"{len(dataset.classes)} classes" + (" + 'other'" if run.other_class else ""))
    if run.other_class and not all(dataset.others_items(s) for s in ("train", "val", "test")):
        raise ExportError(f"{path} was trained with --other-class but dataset {data} lacks non-office "
                          f"train/val/test photos to fine-tune with, calibrate the abstain rule on and "
                          f"evaluate it (python -m training.data import-others)")
    return run


def pixels_of(path: Path, spec: PreprocessSpec) -> np.ndarray:
    """One image file -> uint8 (S, S, 3), the reference way."""
    try:
        return preprocess(decode_image(Path(path).read_bytes()), spec)
    except ImageError as e:
        raise ExportError(f"{path}: {e}")


def load_pixels(paths: list[Path], spec: PreprocessSpec) -> np.ndarray:
    """Many image files -> uint8 (n, S, S, 3); decoding runs in threads (Pillow releases the GIL)."""
    with ThreadPoolExecutor(4) as pool:
        arrays = list(pool.map(lambda p: pixels_of(p, spec), paths))
    return np.stack(arrays) if arrays else np.zeros((0, spec.size, spec.size, 3), np.uint8)


def split_arrays(dataset: Dataset, split: str, spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """All images of one split as (uint8 pixels, int labels)."""
    items = dataset.items(split)
    if not items:
        raise ExportError(f"dataset {dataset.root} has no {split} images")
    return load_pixels([p for p, _ in items], spec), np.array([y for _, y in items], np.int64)
