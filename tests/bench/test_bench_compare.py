"""bench.compare on the tiny bundle: the shipped model's figures, on the same photos for every recipe."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_compare_scores_the_shipped_bundle_and_its_run(tiny_bundle, tiny_run, sample_photos, tmp_path, capsys):
    from bench.compare import main
    from bundle.manifest import load_bundle

    assert main(["--bundle", f"a={tiny_bundle}", "--bundle", f"b={tiny_bundle}", "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "compare.json").read_text())
    a, b = result["recipes"]
    manifest = load_bundle(tiny_bundle).manifest
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # int8 as shipped is what the export's parity gate measured on the same test split.
    assert a["int8"]["top1"] == pytest.approx(manifest["metrics"]["int8_accuracy"], abs=1e-4)
    assert a["float"] == {"top1": metrics["test"]["top1"], "top3": metrics["test"]["top3"]}
    assert a["teacher"] == "none" and a["run"] == str(tiny_run)
    assert a["samples"]["photos"] == len(sample_photos) and a["samples"]["office_photos"] == 20
    assert {k: v for k, v in a.items() if k != "name"} == {k: v for k, v in b.items() if k != "name"}
    md = (tmp_path / "compare.md").read_text()
    assert "| a | none |" in md and "| b | none |" in md and "avx512_vnni" in md


def test_compare_says_how_to_name_a_bundle(tmp_path, capsys):
    from bench.compare import main

    assert main(["--bundle", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "--bundle takes NAME=DIR" in capsys.readouterr().err
