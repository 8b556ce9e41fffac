"""`python -m training.data import-others`: non-office photos beside a dataset, split by class."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from data_cli import import_office, import_others

from training.data.cli import main
from training.data.dataset import load_dataset
from training.data.others import LOCAL_ENV as OTHERS_ENV

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def office(shared_datasets, tmp_path):
    root = tmp_path / "office"  # a private dataset: the session's tiny_dataset is shared with other tests
    assert import_office(shared_datasets, root, "--per-class", "10") == 0
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
    assert (
        "others (not office objects, split by class): 180 classes {'eval': 90, 'train': 90}" in capsys.readouterr().out
    )

    # the office part of the dataset is untouched and still loads
    after = load_dataset(office)
    assert after.id == office_before.id and after.files == office_before.files

    # deterministic: the same command gives the same record; another seed, other classes
    assert main(["import-others", "--from", src, "--out", str(office), "--per-class", "6"]) == 0
    again = _others(office)
    assert again["classes"] == others["classes"] and again["files"] == others["files"]
    assert main(["import-others", "--from", src, "--out", str(office), "--per-class", "3", "--seed", "1"]) == 0
    reseeded = _others(office)
    assert {c["wnid"] for c in reseeded["classes"] if c["group"] == "eval"} != {
        w for w, g in groups.items() if g == "eval"
    }
    assert sum(1 for _ in (office / "others").glob("*/*")) == 180 * 3  # the earlier, larger subset is gone


def test_the_same_data_made_again_keeps_dataset_json_as_it_was(shared_datasets, office):
    # Runs, bundles and the teacher's cache are keyed by dataset.json's sha256: a second `make data`
    # (office import, then import-others) of the same photos must not change it.
    assert import_others(shared_datasets, office, "--per-class", "3") == 0
    before = load_dataset(office).sha256
    assert import_office(shared_datasets, office, "--per-class", "10") == 0
    assert load_dataset(office).sha256 == before and load_dataset(office).others is not None
    assert import_others(shared_datasets, office, "--per-class", "3") == 0
    assert load_dataset(office).sha256 == before
    assert import_office(shared_datasets, office, "--per-class", "11") == 0  # other photos: a new record
    assert load_dataset(office).sha256 != before


def test_others_need_an_existing_dataset_and_other_classes(shared_datasets, office, tmp_path, capsys):
    rc = main(
        ["import-others", "--from", str(shared_datasets / "tiny-imagenet-others"), "--out", str(tmp_path / "none")]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["import-others", "--from", str(shared_datasets / "tiny-imagenet-office20"), "--out", str(office)])
    assert rc == 2 and "found 0" in capsys.readouterr().err
    rc = import_others(shared_datasets, office, "--eval-fraction", "1.5")
    assert rc == 2 and "--eval-fraction" in capsys.readouterr().err


def test_from_none_adds_nothing_and_says_so(shared_datasets, office, capsys):
    before = (office / "dataset.json").read_bytes()
    assert main(["import-others", "--from", "none", "--out", str(office)]) == 0
    said = capsys.readouterr().out
    assert "no non-office photos added: --from none (make data: OTHERS is empty)" in said
    assert "import-others --from DIR" in said and (office / "dataset.json").read_bytes() == before
    # an earlier import stays, and the message says so
    assert import_others(shared_datasets, office, "--per-class", "1") == 0
    kept = _others(office)
    assert main(["import-others", "--from", "none", "--out", str(office)]) == 0
    assert "keeps the 180 of an earlier import-others" in capsys.readouterr().out and _others(office) == kept


def test_make_data_says_when_it_adds_none(shared_datasets, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = tmp_path / "ds"
    # -o setup: the venv running this test is the one to use (VENV=), not one to (re)build.
    run = subprocess.run(
        [
            "make",
            "-C",
            str(REPO),
            "-o",
            "setup",
            "data",
            f"VENV={sys.prefix}",
            f"DATA={out}",
            "DATA_SOURCE=import",
            f"DATA_ARGS=--from {shared_datasets / 'tiny-imagenet-office20'} --per-class 2",
            "OTHERS=",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "no non-office photos added: --from none (make data: OTHERS is empty)" in run.stdout
    assert load_dataset(out).others is None and len(load_dataset(out).files) == 40


def _tiny_imagenet_part(shared_datasets, dest, wnids, train, val):
    """A Tiny ImageNet layout folder holding the first ``train`` train photos and ``val`` val photos of
    ``wnids`` (real photos of the shared others set), as the shared set or the archive would."""
    src = shared_datasets / "tiny-imagenet-others"
    for wnid in wnids:
        (dest / "train" / wnid / "images").mkdir(parents=True, exist_ok=True)
        for n in range(train):
            shutil.copy(src / "train" / wnid / "images" / f"{wnid}_{n}.JPEG", dest / "train" / wnid / "images")
    lines = [
        line for line in (src / "val" / "val_annotations.txt").read_text().splitlines() if line.split("\t")[1] in wnids
    ]
    lines = [line for wnid in wnids for line in lines if line.split("\t")[1] == wnid][: val * len(wnids)]
    (dest / "val" / "images").mkdir(parents=True, exist_ok=True)
    for line in lines:
        shutil.copy(src / "val" / "images" / line.split("\t")[0], dest / "val" / "images")
    (dest / "val" / "val_annotations.txt").write_text("".join(line + "\n" for line in lines))
    (dest / "wnids.txt").write_text("".join(w + "\n" for w in wnids))


def test_auto_prefers_the_local_folder_and_subset_first_survives_growth(
    shared_datasets, office, tmp_path, monkeypatch, capsys
):
    wnids = sorted(p.name for p in (shared_datasets / "tiny-imagenet-others" / "train").iterdir())[:3]
    local = tmp_path / "others-folder"
    _tiny_imagenet_part(shared_datasets, local, wnids, train=20, val=0)
    monkeypatch.setenv(OTHERS_ENV, str(local))
    # auto never reaches for the archive when a local folder exists (this URL would fail at once)
    offline = ["--url", "http://127.0.0.1:1/tiny-imagenet-200.zip", "--retries", "0", "--cache", str(tmp_path / "c")]

    def chosen(subset):
        assert main(["import-others", "--out", str(office), "--per-class", "5", "--subset", subset, *offline]) == 0
        others = _others(office)
        assert others["source"]["from"] == str(local.resolve()) and "archive" not in others["source"]
        return sorted(f["path"] for f in others["files"])

    small_first, small_hash = chosen("first"), chosen("hash")
    assert small_first == [f"others/{w}/{w}_{n}.JPEG" for w in wnids for n in range(5)]
    _tiny_imagenet_part(shared_datasets, local, wnids, train=250, val=50)  # the class grows 20 -> 300 photos
    assert chosen("first") == small_first, "'first' keeps the same photos however many the class holds"
    assert chosen("hash") != small_hash  # why the fixtures use 'first': a hash order reshuffles as a class grows
    assert not (tmp_path / "c").exists()
