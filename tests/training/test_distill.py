"""Distillation plumbing (training.distill + the pipeline): which teacher view a photo gets, how
targets are tempered and mixed. The teacher itself is tests/training/teacher's business; here its
targets are fixed arrays so that each photo's expected target is known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.config import DataConfig
from training.data.dataset import load_dataset
from training.distill import DistillTargets
from training.pipeline import Pipeline, teacher_view_renderer
from training.teacher.views import photo_seed


class FixedTargets:
    """Teacher log-probabilities that make each view recognisable: view 0 puts its mass on the
    photo's own class, view 1 (mirrored) on the next one; column C is "other"."""

    views = 2

    def __init__(self, ds, classes: int):
        self.label = {p: y for p, y in ds.items("train")}
        self.classes = classes

    def log_probs(self, paths) -> np.ndarray:
        out = np.full((len(paths), 2, self.classes + 1), np.log(1e-3), np.float32)
        for i, p in enumerate(paths):
            y = self.label[p]
            out[i, 0, y] = out[i, 1, (y + 1) % self.classes] = 0.0
        return out


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return load_dataset(tiny_dataset)


def test_temperature_flattens_and_an_office_only_run_renormalizes_the_office_columns(dataset):
    soft = DistillTargets(FixedTargets(dataset, 20), num_classes=20, outputs=20, weight=0.5, temperature=1.0)
    path, label = dataset.items("train")[0]
    p = soft.probs([path], [label])
    assert p.shape == (1, 2, 20) and np.allclose(p.sum(-1), 1, atol=1e-6)
    hot = DistillTargets(FixedTargets(dataset, 20), num_classes=20, outputs=21, weight=0.5, temperature=4.0)
    q = hot.probs([path], [label])
    assert q.shape == (1, 2, 21) and q[0, 0].max() < p[0, 0].max()  # T = 4 spreads the mass


def test_office_photos_can_leave_out_the_teachers_other_mass(dataset):
    (path, label), other_path = dataset.items("train")[0], dataset.items("train")[1][0]
    paths, labels = [path, other_path], [label, 20]  # the second photo posing as a non-office one
    keep = DistillTargets(FixedTargets(dataset, 20), 20, 21, weight=0.5, temperature=1.0).probs(paths, labels)
    drop = DistillTargets(FixedTargets(dataset, 20), 20, 21, 0.5, 1.0, drop_other=True).probs(paths, labels)
    assert keep[0, :, 20].min() > 0 and (drop[0, :, 20] == 0).all()
    office_only = keep[0] * (np.arange(21) < 20)  # the office photo: its office columns, renormalized
    np.testing.assert_allclose(drop[0], office_only / office_only.sum(-1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(drop[1], keep[1])  # a non-office photo keeps the teacher's "other"
    np.testing.assert_allclose(drop.sum(-1), 1, atol=1e-6)


def test_each_training_photo_gets_the_teacher_view_it_is_shown(dataset):
    cfg = DataConfig(translate=0, brightness=0, contrast=0, flip=True)
    soft = DistillTargets(FixedTargets(dataset, 20), num_classes=20, outputs=20, weight=0.6, temperature=1.0)
    pipe = Pipeline(dataset, cfg, image_size=64, num_classes=20, batch_size=400, seed=3, soft_targets=soft)
    plain = Pipeline(dataset, cfg, image_size=64, num_classes=20, batch_size=400, seed=3)
    x_soft, y_soft = next(iter(pipe.train(0)))
    x_hard, y_hard = next(iter(plain.train(0)))
    # The teacher changes the targets only: the same photos, order and augmentation.
    np.testing.assert_array_equal(x_soft.numpy(), x_hard.numpy())
    originals = {x.numpy()[0].tobytes() for x, _ in pipe.evaluation("train", 1)}
    seen = {True: 0, False: 0}
    for image, target, onehot in zip(x_soft.numpy(), y_soft.numpy(), y_hard.numpy()):
        label, mirrored = int(onehot.argmax()), image.tobytes() not in originals
        assert not mirrored or image[:, ::-1].tobytes() in originals
        # 0.4 x the label + 0.6 x a view peaked (~0.98) on the label, or on the next class if mirrored
        peak = (label + 1) % 20 if mirrored else label
        assert target.sum() == pytest.approx(1, abs=1e-5) and target.argmax() == peak
        assert target[label] == pytest.approx(0.4 + (0 if mirrored else 0.6) * 0.98, abs=0.01)
        seen[mirrored] += 1
    assert min(seen.values()) > 50, seen


class ViewTargets(FixedTargets):
    """Four views a photo: view v puts its mass on class (label + v) mod C, so a target names its view."""

    views = 4

    def __init__(self, ds, classes: int):
        super().__init__(ds, classes)
        self.root = ds.root

    def log_probs(self, paths) -> np.ndarray:
        out = np.full((len(paths), self.views, self.classes + 1), np.log(1e-3), np.float32)
        for i, p in enumerate(paths):
            for v in range(self.views):
                out[i, v, (self.label[p] + v) % self.classes] = 0.0
        return out

    def seeds(self, paths) -> np.ndarray:
        return np.array([photo_seed(Path(p).relative_to(self.root).as_posix()) for p in paths], np.int64)


def test_with_more_views_each_photo_is_shown_as_one_of_them_and_learns_that_views_target(dataset):
    cfg = DataConfig(translate=0.125, brightness=0, contrast=0, flip=True)
    teacher = ViewTargets(dataset, 20)
    soft = DistillTargets(teacher, num_classes=20, outputs=20, weight=0.6, temperature=1.0)
    pipe = Pipeline(dataset, cfg, image_size=64, num_classes=20, batch_size=400, seed=3, soft_targets=soft)
    render = teacher_view_renderer(cfg, 64)
    items = dataset.items("train")
    photos = np.stack([x.numpy()[0] for x, _ in pipe.evaluation("train", 1)]).astype(np.uint8)
    seeds = teacher.seeds([p for p, _ in items])
    drawn = {}  # the pictures the teacher labelled as views 2 and 3 -> (class, view)
    for v in (2, 3):
        for (_, y), picture in zip(items, render(photos, seeds, v, 64)):
            drawn[picture.tobytes()] = (y, v)
    seen = {v: 0 for v in range(4)}
    x, targets = next(iter(pipe.train(0)))
    for image, target in zip(x.numpy(), targets.numpy()):
        first, second = np.argsort(-target)[:2]
        view = 0 if target[first] > 0.9 else int((first - second) % 20)  # 0.4 label + 0.6 x view's peak
        label = first if view == 0 else second
        if view >= 2:
            assert drawn.get(image.astype(np.uint8).tobytes()) == (label, view)
        seen[view] += 1
    assert min(seen.values()) > 50, seen


def test_evaluation_keeps_hard_labels(dataset):
    soft = DistillTargets(FixedTargets(dataset, 20), num_classes=20, outputs=20, weight=0.6, temperature=1.0)
    pipe = Pipeline(dataset, DataConfig(), image_size=64, num_classes=20, batch_size=64, soft_targets=soft)
    for split in ("train", "val"):
        labels = np.concatenate([y.numpy() for _, y in pipe.evaluation(split)])
        assert set(np.unique(labels)) == {0.0, 1.0} and labels.argmax(1).tolist() == pipe.labels(split)


@pytest.fixture(scope="module")
def small_teacher(tmp_path_factory):
    """A small real teacher: a fixed random conv net, RGB 0..255 -> 16 pooled features (the
    fitted head turns them into class probabilities)."""
    from training.tfenv import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path_factory.mktemp("teacher") / "small.keras"
    model.save(path)
    return path


@pytest.mark.slow
def test_a_distilled_run_records_its_teacher_reuses_its_cache_and_exports(
    tiny_dataset, small_teacher, tmp_path, capsys
):
    import json
    import shutil

    from recipes import TINY_TRAIN_FLAGS

    from export.cli import main as export_main
    from training.train import main as train_main

    data = tmp_path / "office20"
    shutil.copytree(tiny_dataset, data)  # the teacher's cache goes beside the dataset
    flags = [*TINY_TRAIN_FLAGS, "--epochs", "2", "--teacher", str(small_teacher), "--distill-weight", "0.5"]
    assert train_main(["--data", str(data), "--out", str(tmp_path / "run"), *flags]) == 0
    first = capsys.readouterr().out
    teacher = json.loads((tmp_path / "run" / "config.json").read_text())["teacher"]
    assert teacher["name"] == str(small_teacher) and teacher["head"] == "fitted" and len(teacher["hash"]) == 64
    assert (teacher["weight"], teacher["temperature"]) == (0.5, 1.0) and "teacher: " in first
    cache = sorted((data / "teacher").glob("*.npz"))
    assert cache, "no teacher cache beside the dataset"
    stamps = {p: p.stat().st_mtime_ns for p in cache}

    # A second run with the same teacher reads the cache: nothing is recomputed or rewritten.
    assert train_main(["--data", str(data), "--out", str(tmp_path / "again"), *flags, "--epochs", "1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((data / "teacher").glob("*.npz"))} == stamps

    # Export's pruning fine-tune trains on the same targets (the run names its teacher).
    assert (
        export_main(
            [
                "--run",
                str(tmp_path / "run"),
                "--out",
                str(tmp_path / "bundle"),
                "--prune-epochs",
                "1",
                "--calibration-images",
                "50",
                "--min-agreement",
                "0.8",
                "--max-accuracy-drop",
                "10",
                "--golden-images",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "bundle" / "manifest.json").is_file()


@pytest.mark.slow
def test_a_run_with_augmented_teacher_views_records_them_and_exports(tiny_dataset, small_teacher, tmp_path, capsys):
    import json
    import shutil

    from recipes import TINY_TRAIN_FLAGS

    from export.cli import main as export_main
    from training.train import main as train_main

    data = tmp_path / "office20"
    shutil.copytree(tiny_dataset, data)
    flags = [*TINY_TRAIN_FLAGS, "--epochs", "1", "--teacher", str(small_teacher), "--teacher-size", "32"]
    flags += ["--teacher-views", "3"]
    assert train_main(["--data", str(data), "--out", str(tmp_path / "run"), *flags]) == 0
    teacher = json.loads((tmp_path / "run" / "config.json").read_text())["teacher"]
    assert (teacher["views"], teacher["input_size"]) == (3, 32)
    (cache,) = (data / "teacher").glob("small-fitted-views3-*.npz")
    stamp = cache.stat().st_mtime_ns
    bundle_flags = ["--prune-epochs", "1", "--calibration-images", "50", "--min-agreement", "0.5"]
    bundle_flags += ["--max-accuracy-drop", "50", "--golden-images", "2"]
    assert export_main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "bundle"), *bundle_flags]) == 0
    assert cache.stat().st_mtime_ns == stamp  # the fine-tune read the run's views from the cache
    assert train_main(["--data", str(data), "--out", str(tmp_path / "bad"), *flags[:-1], "1"]) == 2
    assert "--teacher-views counts the photo and its mirror too" in capsys.readouterr().err
    assert train_main(["--data", str(data), "--out", str(tmp_path / "bad3"), *flags, "--no-augment"]) == 2
    assert "--teacher-views 3 needs augmentation, which --no-augment turns off" in capsys.readouterr().err
    assert not (tmp_path / "bad3" / "config.json").exists()
    bad_size = [*TINY_TRAIN_FLAGS, "--epochs", "1", "--teacher", str(small_teacher), "--teacher-size", "48"]
    assert train_main(["--data", str(data), "--out", str(tmp_path / "bad2"), *bad_size]) == 2
    assert "takes 32 px input, not 48" in capsys.readouterr().err


def test_an_unknown_teacher_is_one_clear_error(tiny_dataset, tmp_path, capsys):
    from recipes import TINY_TRAIN_FLAGS

    from training.train import main as train_main

    out = tmp_path / "run"
    assert (
        train_main(["--data", str(tiny_dataset), "--out", str(out), *TINY_TRAIN_FLAGS, "--teacher", "resnet-9000"]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: unknown teacher 'resnet-9000'") and "efficientnet-lite0" in err
    assert not out.exists()


def test_auto_uses_the_default_teacher_when_it_can_be_loaded(tiny_dataset, small_teacher, tmp_path, monkeypatch):
    import shutil

    import training.distill as distill
    from training.config import TrainConfig

    data = tmp_path / "office20"
    shutil.copytree(tiny_dataset, data)  # the teacher's cache goes beside the dataset
    monkeypatch.setattr(distill, "DEFAULT_TEACHER", str(small_teacher))
    cfg = TrainConfig()
    cfg.teacher.name = "auto"
    distill.resolve_teacher(cfg, load_dataset(data))
    assert cfg.teacher.name == str(small_teacher) and cfg.teacher.head == "fitted" and len(cfg.teacher.hash) == 64


def test_auto_trains_from_scratch_saying_why_when_the_default_teacher_is_missing(
    dataset, tmp_path, monkeypatch, capsys
):
    import training.distill as distill
    from training.config import TrainConfig

    missing = tmp_path / "absent.keras"
    monkeypatch.setattr(distill, "DEFAULT_TEACHER", str(missing))
    cfg = TrainConfig()
    cfg.teacher.name = "auto"
    distill.resolve_teacher(cfg, dataset)
    assert (cfg.teacher.name, cfg.teacher.hash) == ("none", "")
    assert f"note: training without a teacher (teacher file {missing} does not exist)" in capsys.readouterr().out
