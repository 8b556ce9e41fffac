"""export's steps one by one: calibration choice, reference pixels, the gate's arithmetic."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, preprocess
from export.config import GateConfig
from export.inputs import load_pixels
from export.parity import drifted_classes, gate, measure
from export.quantize import calibration_items
from training.data.dataset import load_dataset


def test_calibration_is_stratified_real_train_images(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    items = calibration_items(ds, 100, seed=0)
    train = set(ds.items("train"))
    assert len(items) == 100 and len(set(items)) == 100 and set(items) <= train
    counts = Counter(label for _, label in items)
    assert sorted(counts) == list(range(len(ds.classes)))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert calibration_items(ds, 100, seed=0) == items  # reproducible
    assert len(calibration_items(ds, 10**6)) == len(train)  # asks for more than exist: all of them


def test_calibration_of_an_other_class_model_includes_non_office_train_photos(others_dataset):
    ds = load_dataset(others_dataset)
    items = calibration_items(ds, 105, seed=0, other_class=True)
    counts = Counter(label for _, label in items)
    assert sorted(counts) == list(range(21)) and set(counts.values()) == {5}
    others = {p for p, label in items if label == 20}
    assert others <= {p for p, _ in ds.others_items("train")}
    assert 20 not in {label for _, label in calibration_items(ds, 105, seed=0)}


def test_pixels_are_the_reference_path(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    spec = PreprocessSpec(size=32)
    paths = [p for p, _ in ds.items("test")[:5]]
    x = load_pixels(paths, spec)
    assert x.dtype == np.uint8 and x.shape == (5, 32, 32, 3)
    for p, got in zip(paths, x):
        assert np.array_equal(got, preprocess(decode_image(p.read_bytes()), spec))


def _probs(top: list[int], n: int = 3) -> np.ndarray:
    p = np.full((len(top), n), 0.1, np.float32)
    p[np.arange(len(top)), top] = 0.8
    return p


def test_gate_passes_agreeing_models_and_names_what_fails():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2, 1, 0])
    float_p = _probs([0, 0, 1, 1, 2, 2, 2, 2, 1, 0])
    names = ["a", "b", "c"]
    same = measure(float_p, float_p, float_p, labels, names)
    assert same["agreement"] == 1.0 and gate(same, GateConfig()) == []

    int8_p = _probs([0, 0, 1, 1, 0, 0, 2, 2, 1, 0])  # class "c" loses half its images
    figures = measure(float_p, float_p + 1e-3, int8_p, labels, names)
    assert figures["agreement"] == 0.8 and figures["accuracy_drop_points"] == 20.0
    assert figures["per_class"][2]["change_points"] == -50.0
    failures = gate(figures, GateConfig())
    assert len(failures) == 3  # agreement, accuracy drop, float TFLite diff
    assert [c["label"] for c in drifted_classes(figures, GateConfig())] == ["c"]


def test_uint8_ties_are_counted_apart():
    labels = np.array([1, 1])
    float_p = np.array([[0.3, 0.4, 0.3], [0.1, 0.8, 0.1]], np.float32)
    int8_p = np.array([[0.375, 0.375, 0.25], [0.1, 0.8, 0.1]], np.float32)  # a tie: argmax says 0
    figures = measure(float_p, float_p, int8_p, labels, ["a", "b", "c"])
    assert figures["agreement"] == 0.5 and figures["agreement_within_ties"] == 1.0
    assert (figures["disagreements"], figures["disagreements_tied"]) == (1, 1)
    assert "1 of the 1 misses are ties" in gate(figures, GateConfig())[0]
