"""bench.train on the tiny run: a finished run of the same config is reused, the figures come from it."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from recipes import TINY_TRAIN_FLAGS

pytestmark = pytest.mark.slow


def test_bench_reuses_a_finished_run_and_reports_its_figures(tiny_run, tiny_dataset, tmp_path, capsys):
    from bench.train import finished_run, main

    work = tmp_path / "work"
    shutil.copytree(tiny_run, work / "seed0")
    flags = " ".join(TINY_TRAIN_FLAGS)
    argv = ["--data", str(tiny_dataset), "--out", "x", "--seed", "0", *TINY_TRAIN_FLAGS]
    assert finished_run(work / "seed0", argv)
    assert not finished_run(work / "seed0", [*argv, "--seed", "1"])
    assert not finished_run(work / "seed0", [*argv, "--lr", "0.01"])

    assert (
        main(
            [
                "--data",
                str(tiny_dataset),
                "--seeds",
                "0",
                "--train-args",
                flags,
                "--work",
                str(work),
                "--out",
                str(tmp_path / "results"),
            ]
        )
        == 0
    )
    assert "seed 0: reusing the finished run" in capsys.readouterr().out
    result = json.loads((tmp_path / "results" / "train.json").read_text())
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    run = result["runs"][0]
    assert (run["test_top1"], run["val_top1"], run["wall_s"]) == (
        metrics["test"]["top1"],
        metrics["val"]["top1"],
        metrics["wall_time_s"],
    )
    with open(tiny_run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    reached = [i for i, r in enumerate(rows) if float(r["val_accuracy"]) >= 0.25]
    want = round(sum(float(r["seconds"]) for r in rows[: reached[0] + 1]), 1) if reached else None
    assert run["to_25pct_val_s"] == want
    assert result["summary"]["test_top1"]["mean"] == metrics["test"]["top1"]
    assert all(result["throughput"]["img_per_s"][feed] > 0 for feed in ("files", "cached", "memory"))
    md = (tmp_path / "results" / "train.md").read_text()
    assert "avx512_vnni" in md and f"{metrics['test']['top1']:.4f}" in md
