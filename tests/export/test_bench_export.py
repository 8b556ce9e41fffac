"""bench.export runs end to end on the tiny bundle (few timed calls: this checks the table, not speed)."""

from __future__ import annotations

import json

import pytest

from bench.export import main
from bundle.manifest import load_bundle


@pytest.mark.slow
def test_bench_writes_sizes_and_latencies(tiny_run, tiny_bundle, tmp_path):
    assert main(["--run", str(tiny_run), "--bundle", str(tiny_bundle), "--runs", "3", "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "export.json").read_text())
    assert set(result["latency"]) == {"keras model(x)", "keras predict_on_batch", "LiteRT float", "LiteRT int8"}
    assert all(v["median_ms"] > 0 and v["runs"] == 3 for v in result["latency"].values())
    int8 = load_bundle(tiny_bundle).manifest["files"]["model.tflite"]
    assert result["sizes"]["int8_tflite"] == {"bytes": int8["bytes"], "gzip_bytes": int8["gzip_bytes"]}
    assert result["sizes"]["float_tflite"]["bytes"] > 3 * int8["bytes"]
    md = (tmp_path / "export.md").read_text()
    assert result["cpu"]["model"] in md and "avx512_vnni" in md and "LiteRT int8" in md
    # the parity figures README quotes come from here, with the code revision that measured them
    parity = json.loads((tiny_bundle / "parity.json").read_text())
    assert result["parity"]["figures"]["agreement"] == parity["agreement"]
    assert result["parity"]["exported_by"] == load_bundle(tiny_bundle).manifest["model"]["git_revision"]
    assert result["parity"]["stale"] is not None and "## Parity gate" in md  # git can tell here


@pytest.mark.slow
def test_parity_figures_from_older_export_code_are_marked_stale(tiny_bundle):
    import subprocess

    from bench.export import REPO, parity_figures

    manifest = load_bundle(tiny_bundle).manifest
    root = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    old = parity_figures(tiny_bundle, {**manifest, "model": {**manifest["model"], "git_revision": root}})
    assert old["stale"] is True and "export/pipeline.py" in old["export_code_changed_since"]
    assert old["exported_by"] == root
    unknown = parity_figures(tiny_bundle, {**manifest, "model": {**manifest["model"], "git_revision": "unknown"}})
    assert unknown["stale"] is None and unknown["export_code_changed_since"] is None


def test_bench_without_a_run_says_what_to_do(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "none"), "--bundle", str(tmp_path)]) == 2
    assert "make train" in capsys.readouterr().err
