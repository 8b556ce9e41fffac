"""`python -m training.data import-others`: non-office photos beside a dataset, split by class."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from training.data.cli import main
from training.data.dataset import load_dataset


@pytest.fixture
def office(shared_datasets, tmp_path):
    root = tmp_path / "office"  # a private dataset: the session's tiny_dataset is shared with other tests
    assert main(["import", "--from", str(shared_datasets / "tiny-imagenet-office20"), "--out", str(root),
                 "--per-class", "10"]) == 0
    return root


def _others(root):
    return json.loads((root / "dataset.json").read_text())["others"]


def test_others_are_split_by_class_and_recorded(shared_datasets, office, capsys):
    office_before = load_dataset(office)
    src = str(shared_datasets / "tiny-imagenet-others")
    assert main(["import-others", "--from", src, "--out", str(office), "--per-class", "6"]) == 0
    others = _others(office)
    groups = {c["wnid"]: c["group"] for c in others["classes"]}
    assert len(groups) == 180 and others["counts"]["classes"] == {"eval": 90, "train": 90}
    assert not set(groups) & {c.wnid for c in office_before.classes}
    splits_of = defaultdict(set)
    for f in others["files"]:
        splits_of[f["wnid"]].add(f["split"])
        assert (office / f["path"]).is_file() and f["path"].startswith(f"others/{f['wnid']}/")
    for wnid, splits in splits_of.items():  # a class is either evaluation-only or train-side, never both
        assert splits == {"test"} if groups[wnid] == "eval" else splits <= {"train", "val"}
    assert others["counts"]["files"]["test"] == 90 * 6 and len(others["files"]) == 180 * 6
    assert others["counts"]["files"]["val"] > 0 and others["source"]["origins"]["val"] > 0

    assert main(["stats", str(office), "--no-sheet"]) == 0
    assert "others (not office objects, split by class): 180 classes {'eval': 90, 'train': 90}" in capsys.readouterr().out

    # the office part of the dataset is untouched and still loads
    after = load_dataset(office)
    assert after.id == office_before.id and after.files == office_before.files

    # deterministic: the same command gives the same record; another seed, other classes
    assert main(["import-others", "--from", src, "--out", str(office), "--per-class", "6"]) == 0
    again = _others(office)
    assert again["classes"] == others["classes"] and again["files"] == others["files"]
    assert main(["import-others", "--from", src, "--out", str(office), "--per-class", "3", "--seed", "1"]) == 0
    reseeded = _others(office)
    assert {c["wnid"] for c in reseeded["classes"] if c["group"] == "eval"} != \
        {w for w, g in groups.items() if g == "eval"}
    assert sum(1 for _ in (office / "others").glob("*/*")) == 180 * 3  # the earlier, larger subset is gone


def test_others_need_an_existing_dataset_and_other_classes(shared_datasets, office, tmp_path, capsys):
    rc = main(["import-others", "--from", str(shared_datasets / "tiny-imagenet-others"),
               "--out", str(tmp_path / "none")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["import-others", "--from", str(shared_datasets / "tiny-imagenet-office20"), "--out", str(office)])
    assert rc == 2 and "found 0" in capsys.readouterr().err
    rc = main(["import-others", "--from", str(shared_datasets / "tiny-imagenet-others"), "--out", str(office),
               "--eval-fraction", "1.5"])
    assert rc == 2 and "--eval-fraction" in capsys.readouterr().err
