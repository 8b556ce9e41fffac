"""Soft targets and their cache, with a small real teacher (a tf_keras conv net saved as .keras)
on real photos: the tiny office dataset plus non-office photos (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from recipes import make_teacher

from training.data.dataset import SPLITS, load_dataset
from training.teacher import TeacherError, load_teacher, soft_targets, targets
from training.teacher.heads import log_loss
from training.teacher.targets import TRAINING_SPLITS, DatasetFiles, cache_path
from training.teacher.views import photo_views


@pytest.fixture(scope="module")
def small_teacher(tmp_path_factory) -> Path:
    return make_teacher(tmp_path_factory.mktemp("teacher") / "small.keras", seed=0)


@pytest.fixture
def data(others_dataset, tmp_path) -> Path:
    """A private copy of the dataset (the cache is written beside it, and some tests damage it)."""
    root = tmp_path / "office20"
    shutil.copytree(others_dataset, root, ignore=shutil.ignore_patterns("teacher"))
    return root


@pytest.fixture(scope="module")
def computed(others_dataset, small_teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("computed") / "office20"
    shutil.copytree(others_dataset, root, ignore=shutil.ignore_patterns("teacher"))
    notes = []
    ds = load_dataset(root)
    return ds, soft_targets(ds, small_teacher, progress=notes.append), notes


def every_file(ds, splits=SPLITS):
    office = [(p, y) for s in splits for p, y in ds.items(s)]
    others = [(p, len(ds.classes)) for s in splits for p, _ in ds.others_items(s)]
    return office + others


def extracted(notes) -> bool:
    return any("images/s" in n for n in notes)


def test_every_training_file_has_two_views_of_log_probs(computed):
    ds, t, notes = computed
    assert extracted(notes) and t.head == "fitted" and t.teacher == "small"
    paths = [p for p, _ in every_file(ds, TRAINING_SPLITS)]
    lp = t.log_probs(paths)
    assert lp.shape == (len(paths), 2, len(ds.classes) + 1) and lp.dtype == np.float32
    np.testing.assert_allclose(np.log(np.exp(lp.astype(np.float64)).sum(-1)), 0, atol=1e-4)
    assert np.abs(lp[:, 0] - lp[:, 1]).max() > 1e-3  # the flipped view is scored on its own
    # The test split is left out of the training cache: no photo of it went through the teacher.
    assert len(t.index) == len(paths) < len(every_file(ds))
    extraction = [n for n in notes if "images/s" in n and "left" not in n]
    assert extraction and extraction[-1].split(": ")[1].startswith(f"{len(paths)} photos")
    for path in (ds.items("test")[0][0], ds.others_items("test")[0][0], ds.root / "n00000000" / "nope.JPEG"):
        with pytest.raises(TeacherError, match="no teacher targets"):
            t.log_probs([path])


def test_a_cache_of_every_split_serves_training_without_a_second_pass(data, small_teacher):
    ds = load_dataset(data)
    every = soft_targets(ds, small_teacher, progress=lambda _: None, splits=SPLITS)
    assert len(every.index) == len(every_file(ds))
    notes = []
    training = soft_targets(ds, small_teacher, progress=notes.append)
    assert notes == [] and not cache_path(ds, load_teacher(small_teacher), "fitted").exists()
    paths = [p for p, _ in every_file(ds, TRAINING_SPLITS)]
    np.testing.assert_array_equal(training.log_probs(paths), every.log_probs(paths))
    # Computed on their own, the training splits get the same head (fitted on train, picked on val).
    shutil.rmtree(data / "teacher")
    alone = soft_targets(ds, small_teacher, progress=notes.append)
    assert extracted(notes) and alone.meta["head_details"]["l2"] == every.meta["head_details"]["l2"]
    np.testing.assert_allclose(alone.log_probs(paths), every.log_probs(paths), atol=1e-4)


def test_splits_must_fit_and_pick_the_head(data, small_teacher):
    with pytest.raises(ValueError, match="must include train .* and val"):
        soft_targets(load_dataset(data), small_teacher, splits=("train", "test"))


def test_views_are_the_photo_and_its_mirror_through_the_teacher(computed, small_teacher):
    ds, t, _ = computed
    teacher = load_teacher(small_teacher)
    feats = np.load(cache_path(ds, teacher, "features"))["features"]
    order = DatasetFiles.of(ds).paths
    for rel in order[:3]:
        views = photo_views(ds.root / rel, 32)
        np.testing.assert_array_equal(views[1], views[0][:, ::-1])
        np.testing.assert_allclose(feats[order.index(rel)], teacher.features(views), rtol=2e-3, atol=2e-3)


def test_fitted_head_beats_the_class_prior_on_val(computed):
    ds, t, _ = computed
    val = [(p, y) for p, y in ds.items("val")] + [(p, len(ds.classes)) for p, _ in ds.others_items("val")]
    labels = np.array([y for _, y in val])
    lp = t.log_probs([p for p, _ in val])[:, 0]
    train = np.array([y for _, y in ds.items("train")] + [len(ds.classes)] * len(ds.others_items("train")))
    prior = np.log(np.bincount(train, minlength=len(ds.classes) + 1) / len(train))
    assert log_loss(lp, labels) < log_loss(np.tile(prior, (len(labels), 1)), labels) - 0.1
    assert t.meta["val"]["log_loss"] == pytest.approx(log_loss(lp, labels), abs=1e-3)
    assert t.meta["head_details"]["l2"] in (1e-3, 1e-2, 1e-1)


def test_cache_is_reused_and_complete(computed, small_teacher):
    ds, t, _ = computed
    teacher = load_teacher(small_teacher)
    files = [cache_path(ds, teacher, k) for k in ("features", "fitted")]
    meta = json.loads(files[1].with_suffix(".json").read_text())
    assert meta["dataset"] == {"id": ds.id, "sha256": ds.sha256} and meta["teacher"]["hash"] == teacher.hash
    assert meta["shape"] == list(t.array.shape) and meta["head"] == "fitted"
    before = {f: f.stat().st_mtime_ns for f in files}
    notes = []
    again = soft_targets(ds, small_teacher, progress=notes.append)
    assert notes == [] and {f: f.stat().st_mtime_ns for f in files} == before
    np.testing.assert_array_equal(again.array, t.array)
    assert sorted(p.name for p in files[0].parent.iterdir()) == sorted(
        [f.name for f in files] + [f.with_suffix(".json").name for f in files]
    )  # no temp or part files


def test_truncated_cache_is_detected_and_recomputed(data, small_teacher):
    ds = load_dataset(data)
    first = soft_targets(ds, small_teacher, progress=lambda _: None)
    path = cache_path(ds, load_teacher(small_teacher), "fitted")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    notes = []
    again = soft_targets(ds, small_teacher, progress=notes.append)
    assert any(path.name in n and "truncated" in n for n in notes)
    assert not extracted(notes)  # the features cache was intact: only the head is refitted
    np.testing.assert_allclose(again.array, first.array, atol=1e-5)


def test_cache_of_another_dataset_or_teacher_is_not_used(data, small_teacher, tmp_path):
    ds = load_dataset(data)
    soft_targets(ds, small_teacher, progress=lambda _: None)
    # Another dataset with the same id (same files) but a changed dataset.json: its cache is stale.
    meta = json.loads((data / "dataset.json").read_text())
    meta["splits"]["note"] = "edited"
    (data / "dataset.json").write_text(json.dumps(meta))
    notes = []
    soft_targets(load_dataset(data), small_teacher, progress=notes.append)
    assert any("made for another dataset" in n for n in notes) and extracted(notes)
    # Another teacher's cache under this teacher's name: detected by the recorded hash.
    ds = load_dataset(data)
    other = make_teacher(tmp_path / "small.keras", seed=1)
    mine, theirs = load_teacher(small_teacher), load_teacher(other)
    assert mine.hash != theirs.hash
    for kind in ("features", "fitted"):
        for suffix in (".npz", ".json"):
            shutil.copy(
                cache_path(ds, mine, kind).with_suffix(suffix), cache_path(ds, theirs, kind).with_suffix(suffix)
            )
    notes = []
    soft_targets(ds, other, progress=notes.append)
    assert any("made by another teacher" in n for n in notes) and extracted(notes)


def test_killed_run_leaves_no_torn_file_and_resumes(data, small_teacher, monkeypatch):
    monkeypatch.setattr(targets, "PART", 500)  # several resumable pieces

    def killed_after_extraction(line):
        if "images/s" in line and "left" not in line:  # the summary line, after the last piece
            raise KeyboardInterrupt

    ds = load_dataset(data)
    with pytest.raises(KeyboardInterrupt):
        soft_targets(ds, small_teacher, progress=killed_after_extraction)
    teacher = load_teacher(small_teacher)
    folder = cache_path(ds, teacher, "features").parent
    parts = sorted(p.name for p in cache_path(ds, teacher, "features").with_suffix(".parts").iterdir())
    pieces = -(-len(DatasetFiles.of(ds).paths) // 500)
    assert pieces > 1 and parts == [f"{i:05d}.npz" for i in range(pieces)]
    assert [p.name for p in folder.iterdir()] == [cache_path(ds, teacher, "features").with_suffix(".parts").name]

    def killed_while_fitting(line):
        if line.startswith("fitted head"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        soft_targets(ds, small_teacher, progress=killed_while_fitting)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        cache_path(ds, teacher, "features").with_suffix(s).name for s in (".npz", ".json")
    )
    notes = []
    soft_targets(ds, small_teacher, progress=notes.append)
    assert not extracted(notes) and cache_path(ds, teacher, "fitted").is_file()


def test_imagenet_head_needs_an_imagenet_teacher(data, small_teacher):
    with pytest.raises(TeacherError, match="head 'imagenet' does not apply.*fitted or auto"):
        soft_targets(load_dataset(data), small_teacher, head="imagenet")


def augmented_views(count: int, translate: float = 0.125) -> targets.AugmentedViews:
    from training.config import DataConfig
    from training.pipeline import teacher_view_renderer

    return targets.AugmentedViews(
        count, 64, teacher_view_renderer(DataConfig(translate=translate), 64), {"t": translate}
    )


def test_augmented_views_of_train_photos_are_labelled_cached_and_keyed_by_how_they_are_drawn(data, small_teacher):
    ds = load_dataset(data)
    plain = soft_targets(ds, small_teacher, progress=lambda _: None)
    notes = []
    t = soft_targets(ds, small_teacher, progress=notes.append, views=augmented_views(4))
    files = DatasetFiles.of(ds)
    assert not any(f": {len(files.paths)} photos" in n for n in notes)  # the plain views: read from their cache
    assert any("2 augmented views of" in n for n in notes)
    lp = t.log_probs([ds.root / p for p in files.paths])
    assert t.views == 4 and lp.shape == (len(files.paths), 4, len(ds.classes) + 1)
    np.testing.assert_array_equal(lp[:, :2], plain.log_probs([ds.root / p for p in files.paths]))
    train, val = files.splits == "train", files.splits == "val"
    assert np.abs(lp[train, 2] - lp[train, 0]).max() > 1e-3 and np.abs(lp[train, 3] - lp[train, 2]).max() > 1e-3
    np.testing.assert_array_equal(lp[val, 2], lp[val, 0])  # never shown augmented: view 0 repeated
    teacher = load_teacher(small_teacher)
    assert cache_path(ds, teacher, "fitted", views=4).name.startswith("small-fitted-views4-")
    meta = json.loads(cache_path(ds, teacher, "fitted", views=4).with_suffix(".json").read_text())
    assert meta["views"]["count"] == 4 and meta["views_extraction"]["images_per_s"] > 0
    assert not cache_path(ds, teacher, "features", views=4).with_suffix(".parts").exists()
    again = []
    assert np.array_equal(
        soft_targets(ds, small_teacher, progress=again.append, views=augmented_views(4)).array, t.array
    )
    assert again == []  # served from the cache
    other = []
    soft_targets(ds, small_teacher, progress=other.append, views=augmented_views(4, translate=0.25))
    assert any("views differs" in n for n in other)  # drawn differently: recomputed, never reused


def test_the_teacher_labels_the_very_picture_the_trainer_draws_as_a_view(data, small_teacher, tmp_path):
    """View 2 of a train photo as the pipeline draws it (``teacher_view``), resized for the teacher:
    the features the cache's extraction computed for that view."""
    from training.config import DataConfig
    from training.pipeline import teacher_view
    from training.teacher.views import photo_seed
    from training.tfenv import tf

    ds = load_dataset(data)
    teacher = load_teacher(small_teacher)
    files = DatasetFiles.of(ds)
    rels = [p for p, s in zip(files.paths, files.splits) if s == "train"][:3]
    request = targets.CacheRequest(ds, teacher, files, TRAINING_SPLITS, 1.0, augmented_views(4))
    cached, extraction = targets._augmented_features(request, rels, tmp_path / "parts", lambda _: None)
    assert extraction["seconds"] >= 0 and extraction["images_per_s"] > 0
    assert cached.shape[:2] == (3, 2)
    for i, rel in enumerate(rels):
        photo = tf.constant(photo_views(ds.root / rel, 64)[0], tf.float32)
        for v in (2, 3):
            drawn = teacher_view(photo, photo_seed(rel), v, DataConfig(), 64)
            resized = tf.image.resize(drawn[None], (teacher.input_size,) * 2, method="bilinear", antialias=True)
            pixels = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()
            expected = teacher.features(pixels)[0].astype(np.float16)
            np.testing.assert_allclose(cached[i, v - 2].astype(np.float32), expected.astype(np.float32), atol=2e-3)
        assert not np.array_equal(cached[i, 0], cached[i, 1])
