"""What export reads: the trained run (training.run), its dataset, and pixels made the reference way.

    from export.inputs import load_source, load_pixels
    src = load_source(Path("artifacts/run"))         # ExportError (exit 2) naming what is missing
    x = load_pixels([p for p, _ in src.dataset.items("test")], src.spec)   # uint8 (n, S, S, 3)

Pixels always come from ``bundle.images.decode_image`` + ``bundle.preprocess.preprocess``, the
same path the server and the phone page are proven against, so calibration, parity and golden
vectors see exactly what a consumer would feed the model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.images import ImageError, decode_image
from bundle.preprocess import PreprocessSpec, preprocess
from training.data.dataset import Dataset, DatasetError
from training.run import Run, RunError, load_run


class ExportError(Exception):
    """An input problem the user can fix (missing run file, bad dataset): exit code 2, no traceback."""


@dataclass
class Source:
    """What export starts from: a finished run (``training.run``), its model and its dataset."""

    run: Run
    model: object  # tf_keras.Model, float32
    dataset: Dataset

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def spec(self) -> PreprocessSpec:
        return self.run.preprocess


def load_source(path: Path, data: Path | None = None) -> Source:
    """The run at ``path`` (training.run.load_run), its float model, and its dataset (or ``data``)."""
    try:
        run = load_run(path)
        dataset = run.load_dataset(data)
    except RunError as e:
        raise ExportError(str(e)) from None
    except DatasetError as e:
        raise ExportError(f"dataset for export: {e}") from None
    model = run.load_model()
    spec = run.preprocess
    if model.input_shape[1:] != (spec.size, spec.size, 3):
        raise ExportError(f"model input {model.input_shape} disagrees with preprocess size {spec.size}")
    if model.output_shape[-1] != len(dataset.classes) + run.other_output:
        raise ExportError(
            f"model has {model.output_shape[-1]} outputs, dataset {dataset.root} has "
            f"{len(dataset.classes)} classes" + (" + 'other'" if run.other_output else "")
        )
    return Source(run=run, model=model, dataset=dataset)


def pixels_of(path: Path, spec: PreprocessSpec) -> np.ndarray:
    """One image file -> uint8 (S, S, 3), the reference way."""
    try:
        return preprocess(decode_image(Path(path).read_bytes()), spec)
    except ImageError as e:
        raise ExportError(f"{path}: {e}") from None


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
