"""training.data.dataset: deterministic, stable splits and train-only statistics on real photos."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from training.data.catalog import ClassInfo, load_catalog
from training.data.dataset import DatasetError, assign_split, build_dataset, load_dataset

CLASSES = [ClassInfo("n03085013", "computer keyboard"), ClassInfo("n04074963", "remote control")]


@pytest.fixture
def tree(shared_datasets, tmp_path):
    root = tmp_path / "ds"
    for c in CLASSES:
        (root / c.wnid).mkdir(parents=True)
        src = sorted((shared_datasets / "tiny-imagenet-office20" / "train" / c.wnid / "images").glob("*.JPEG"))
        for p in src[:40]:
            shutil.copy(p, root / c.wnid / p.name)
    return root


def test_split_assignment_is_deterministic_and_seeded():
    keys = [f"n03085013/img_{i}.JPEG" for i in range(2000)]
    a = [assign_split(k, 0) for k in keys]
    assert a == [assign_split(k, 0) for k in keys]
    assert a != [assign_split(k, 1) for k in keys]
    share = {s: a.count(s) / len(a) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["val"] - 0.1) < 0.02


def test_build_writes_a_loadable_manifest(tree):
    ds = build_dataset(tree, CLASSES, {"kind": "test"}, catalog="pair")
    assert ds.id.startswith("pair-") and [c.wnid for c in ds.classes] == [c.wnid for c in CLASSES]
    meta = json.loads((tree / "dataset.json").read_text())
    assert len(meta["files"]) == 80 and all(len(f["sha256"]) == 64 for f in meta["files"])
    assert sum(sum(v.values()) for v in meta["counts"].values()) == 80
    assert meta["image_size"] == {"median_width": 64, "median_height": 64, "min_side": 64}
    assert load_dataset(tree).items("train") == ds.items("train")


def test_mean_and_std_come_from_train_only(tree):
    ds = build_dataset(tree, CLASSES, {"kind": "test"})
    pixels = np.concatenate(
        [np.asarray(Image.open(p).convert("RGB"), np.float64).reshape(-1, 3) for p, _ in ds.items("train")]
    )
    assert np.allclose(ds.mean, pixels.mean(0), atol=1e-3)
    assert np.allclose(ds.std, pixels.std(0), atol=1e-3)


def test_adding_files_never_moves_existing_ones(tree, shared_datasets):
    before = {f.path: f.split for f in build_dataset(tree, CLASSES, {"kind": "test"}).files}
    src = sorted((shared_datasets / "tiny-imagenet-office20" / "train" / CLASSES[0].wnid / "images").glob("*.JPEG"))
    for p in src[40:60]:
        shutil.copy(p, tree / CLASSES[0].wnid / p.name)
    after = {f.path: f.split for f in build_dataset(tree, CLASSES, {"kind": "test"}).files}
    assert len(after) == 100 and all(after[k] == v for k, v in before.items())


def test_class_without_images_is_named(tree):
    with pytest.raises(DatasetError, match="n04398044 \\(teapot\\) has no images"):
        build_dataset(tree, CLASSES + [ClassInfo("n04398044", "teapot")], {"kind": "test"})


def test_load_errors_name_the_problem(tmp_path, tree):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="dataset.json is missing"):
        load_dataset(tree)
    build_dataset(tree, CLASSES, {"kind": "test"})
    victim = next((tree / CLASSES[1].wnid).iterdir())
    victim.unlink()
    with pytest.raises(DatasetError, match="missing"):
        load_dataset(tree)


def test_catalogs_hold_twenty_unique_classes():
    for name in ("office20", "office20-imagenet"):
        classes = load_catalog(name)
        assert len(classes) == 20 and len({c.wnid for c in classes}) == 20
    with pytest.raises(ValueError, match="unknown class catalog"):
        load_catalog("office99")


def test_others_survive_a_rebuild_and_are_checked(tree, shared_datasets):
    build_dataset(tree, CLASSES, {"kind": "test"})
    meta = json.loads((tree / "dataset.json").read_text())
    other = next((shared_datasets / "tiny-imagenet-others" / "train").iterdir())
    photo = next((other / "images").glob("*.JPEG"))
    (tree / "others" / other.name).mkdir(parents=True)
    shutil.copy(photo, tree / "others" / other.name / photo.name)
    meta["others"] = {
        "files": [{"path": f"others/{other.name}/{photo.name}", "wnid": other.name, "split": "test", "sha256": "x"}]
    }
    (tree / "dataset.json").write_text(json.dumps(meta))
    ds = build_dataset(tree, CLASSES, {"kind": "test"})
    assert ds.others_items("test") == [(tree / "others" / other.name / photo.name, other.name)]
    assert ds.others_items("train") == []
    (tree / "others" / other.name / photo.name).unlink()
    with pytest.raises(DatasetError, match="missing"):
        load_dataset(tree)
    assert build_dataset(tree, CLASSES, {"kind": "test"}).others is None
