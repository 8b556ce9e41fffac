"""bench.student_probe on the tiny dataset's teacher-sweep pack with the real EfficientNet-Lite0,
where PyTorch is installed (the probe runs on the lent GPU; PyTorch is no project dependency):
the replica has the Keras student's parameters, augments as the trainer does, its live teacher
agrees with the fixed targets on unaugmented photos, and every recipe trains and reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.student_probe import PREPARED, Recipe, augment, build_student, cached_views, live_teacher, main
from training.config import DataConfig, ModelConfig

pytestmark = pytest.mark.slow
torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (the probe's GPU backend; not a project dependency)"
)


@pytest.fixture(scope="module")
def prepared(packed, tmp_path_factory):
    work = tmp_path_factory.mktemp("probe")
    out = work / "prepare.json"
    args = ["prepare", "--pack", str(packed), "--work", str(work), "--teacher-size", "64", "--out", str(out)]
    assert main(args) == 0
    return work, json.loads(out.read_text())


def test_the_replica_has_the_keras_students_trainable_parameters():
    from training.model import build_model

    for size in (32, 64):
        keras_model = build_model(ModelConfig(), size, 21, mean=[0, 0, 0], std=[1, 1, 1])
        keras_count = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
        assert sum(p.numel() for p in build_student(21, ModelConfig(), size).parameters()) == keras_count


def test_translation_is_a_window_of_the_reflect_padded_photo_and_flips_are_reported():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 16) * 255
    cfg = DataConfig(translate=0.25, brightness=0.0, contrast=0.0)
    out, mirrored = augment(x, cfg)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(len(x)):
        seen = out[i].flip(2) if mirrored[i] else out[i]
        windows = [
            (r, c) for r in range(9) for c in range(9) if torch.equal(padded[i, :, r : r + 16, c : c + 16], seen)
        ]
        assert len(windows) == 1
    assert 0 < int(mirrored.sum()) < len(x)  # 6 draws: both outcomes (seeded)
    bright, _ = augment(x, DataConfig(translate=0.0, flip=False, brightness=0.2, contrast=0.2))
    assert bright.min() >= 0 and bright.max() <= 255 and not torch.equal(bright, x)


def test_the_live_teacher_matches_the_fixed_targets_on_unaugmented_photos(prepared):
    work, figures = prepared
    p = np.load(work / PREPARED)
    assert figures["teacher_size"] == 64 and p["logp"].shape == (len(p["labels"]), 2, len(p["classes"]) + 1)
    teacher = live_teacher(work, p, "cpu")
    x = torch.from_numpy(p["images"][:32]).permute(0, 3, 1, 2).float()
    live = teacher(x).exp().numpy()
    fixed = np.exp(p["logp"][:32, 0])  # the same 64 px photo: no resize, so only float noise differs
    assert np.abs(live - fixed).max() < 1e-3
    assert 0 <= figures["teacher_figures"]["office_test"]["top1"] <= 1


def test_cached_views_are_augmented_train_photos_with_the_teachers_targets_of_each(prepared):
    work, _ = prepared
    p = np.load(work / PREPARED)
    teacher = live_teacher(work, p, "cpu")
    images = torch.from_numpy(p["images"]).permute(0, 3, 1, 2).contiguous()
    train = torch.from_numpy(p["splits"] == 0)
    torch.manual_seed(0)
    views, logp = cached_views(images, teacher, Recipe(views=3), train)
    assert views.shape == (3, *images.shape) and logp.shape == (3, len(images), len(p["classes"]) + 1)
    assert not views[:, ~train].any() and not torch.equal(views[0, train], views[1, train])
    i = torch.nonzero(train).flatten()[:8]
    again = teacher(views[2, i].float()).exp()
    assert torch.allclose(again, logp[2, i].exp(), atol=2e-2)  # the views are kept in float16


@pytest.mark.parametrize("targets,mixup", [("none", 0.0), ("fixed", 0.2), ("views", 0.0), ("live", 0.2)])
def test_every_recipe_trains_and_reports_its_figures(prepared, targets, mixup, tmp_path):
    work, _ = prepared
    out = tmp_path / "run.json"
    args = [
        "train",
        "--work",
        str(work),
        "--targets",
        targets,
        "--epochs",
        "2",
        "--mixup",
        str(mixup),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    run = json.loads(out.read_text())
    assert run["recipe"]["targets"].split()[0] == targets and [r["epoch"] for r in run["history"]] == [1, 2]
    last = run["last"]
    assert 0 <= last["office_test"]["top1"] <= last["office_test"]["top3"] <= 1
    assert 0 <= last["auroc_unseen"] <= 1 and run["others_per_epoch"] > 0
    assert Recipe().epochs == 30  # the trainer's default schedule is the probe's


def test_render_writes_one_table(prepared, tmp_path):
    work, _ = prepared
    run = tmp_path / "run.json"
    assert main(["train", "--work", str(work), "--targets", "fixed", "--epochs", "1", "--out", str(run)]) == 0
    assert main(["render", str(work / "prepare.json"), str(run), "--results", str(tmp_path / "results")]) == 0
    md = (tmp_path / "results" / "student-probe.md").read_text()
    assert "| fixed | 1 | 0.0 | 0 |" in md and "efficientnet-lite0 at 64 px" in md
