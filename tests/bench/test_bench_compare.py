"""bench.compare on the tiny bundle: the shipped model's figures, on the same photos for every recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_compare_scores_the_shipped_bundle_and_its_run(tiny_bundle, tiny_run, sample_photos, tmp_path, capsys):
    from bench.compare import main, sample_figures
    from bundle.litert import LiteRTModel
    from bundle.manifest import load_bundle
    from training.run import read_history

    assert main(["--bundle", f"a={tiny_bundle}", "--bundle", f"b={tiny_bundle}", "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "compare.json").read_text())
    a, b = result["recipes"]
    shipped = load_bundle(tiny_bundle)
    manifest = shipped.manifest
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # int8 as shipped is what the export's parity gate measured on the same test split.
    assert a["int8"]["top1"] == pytest.approx(manifest["metrics"]["int8_accuracy"], abs=1e-4)
    assert a["float"] == {"top1": metrics["test"]["top1"], "top3": metrics["test"]["top3"]}
    assert a["teacher"] == "none" and a["run"] == str(tiny_run)
    epochs_s = sum(row["seconds"] for row in read_history(tiny_run))
    assert a["train_epochs_s"] == pytest.approx(epochs_s, abs=0.1) and a["train_epochs_s"] <= a["train_wall_s"]
    assert 0 < a["int8_flip_avg"]["top1"] <= a["int8_flip_avg"]["top3"] <= 1
    assert a["samples"]["photos"] == len(sample_photos) and a["samples"]["office_photos"] == 20
    # The tiny run learned no "other"; a run that had learned coffee mugs and printers as "other"
    # would count those two classes (the backpack is one of the bundle's own classes).
    assert a["samples"]["other_classes_learned_as_other"] == 0
    model = LiteRTModel(shipped.model_path.read_bytes())
    learned = {"n03063599", "n04004767", "n02769748"}
    assert sample_figures(model, shipped, learned)["other_classes_learned_as_other"] == 2
    assert {k: v for k, v in a.items() if k != "name"} == {k: v for k, v in b.items() if k != "name"}
    md = (tmp_path / "compare.md").read_text()
    assert "| a | none |" in md and "| b | none |" in md and "avx512_vnni" in md


def test_flip_averaging_averages_with_the_left_right_mirror(tiny_bundle):
    from PIL import Image

    from bench.compare import flip_averaged
    from bundle.litert import LiteRTModel
    from bundle.manifest import load_bundle
    from export.inputs import split_arrays
    from training.run import load_run

    b = load_bundle(tiny_bundle)
    ds = load_run(json.loads((tiny_bundle / "export_config.json").read_text())["run"]).load_dataset()
    x, _ = split_arrays(ds, "test", b.preprocess)
    x = x[:8]
    model = LiteRTModel(b.model_path.read_bytes())
    probs = model.probabilities(x)
    # Pillow mirrors each photo independently of numpy's axis order.
    mirrored = np.stack([np.asarray(Image.fromarray(im).transpose(Image.Transpose.FLIP_LEFT_RIGHT)) for im in x])
    expected = (probs + model.probabilities(mirrored)) / 2
    np.testing.assert_allclose(flip_averaged(model, x, probs), expected, atol=1e-6)
    assert not np.allclose(expected, probs, atol=1e-3)


def test_compare_says_how_to_name_a_bundle(tmp_path, capsys):
    from bench.compare import main

    assert main(["--bundle", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "--bundle takes NAME=DIR" in capsys.readouterr().err
