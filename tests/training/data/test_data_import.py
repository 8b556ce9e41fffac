"""`python -m training.data import` on real photos: Tiny ImageNet, an ImageNet-style tree, class folders."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from data_cli import import_office
from PIL import Image

from training.data.cli import main
from training.data.dataset import load_dataset

OFFICE3 = "n03085013\tcomputer keyboard\nn04074963\tremote control\nn03584254\tiPod\n"


def _catalog(tmp_path: Path, text: str = OFFICE3) -> str:
    path = tmp_path / "office3.tsv"
    path.write_text(text)
    return str(path)


def _variants(photo: Path, n: int) -> list[bytes]:
    """n distinct real JPEGs cut from one full-size photo (different crops and sizes)."""
    img = Image.open(photo).convert("RGB")
    w, h = img.size
    out = []
    for i in range(n):
        f = 0.6 + 0.4 * i / max(n - 1, 1)
        crop = img.crop((0, 0, int(w * f), int(h * f))).resize((160 + 8 * i, 120 + 6 * i))
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _sample(shared: Path, wnid: str) -> Path:
    return next((shared / "imagenet-samples" / "images").glob(f"{wnid}_*.JPEG"))


def test_tiny_imagenet_subset_uses_train_and_val(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    assert len(ds.classes) == 20 and ds.meta["catalog"] == "office20"
    for c in ds.classes:
        assert len(list((tiny_dataset / c.wnid).iterdir())) == 60
    src = ds.meta["source"]
    assert src["layout"] == "tiny-imagenet" and sum(src["origins"].values()) == 1200
    assert src["origins"]["val"] > 0 and src["origins"]["train"] > src["origins"]["val"]
    assert any(f.path.split("/")[1].startswith("val_") for f in ds.files)
    # the subset is not biased towards one split: every split has photos of every class
    for split in ("train", "val", "test"):
        assert sum(ds.meta["counts"][split].values()) > 0
    assert sum(ds.meta["counts"]["train"].values()) > 800


def test_import_is_deterministic_idempotent_and_prunes(shared_datasets, tiny_dataset, tmp_path):
    tiny = str(shared_datasets / "tiny-imagenet-office20")
    first = load_dataset(tiny_dataset)
    out = tmp_path / "again"
    assert main(["import", "--from", tiny, "--out", str(out), "--per-class", "60"]) == 0
    again = load_dataset(out)
    assert again.id == first.id
    assert [(f.path, f.split, f.sha256) for f in again.files] == [(f.path, f.split, f.sha256) for f in first.files]

    stamp = {p: p.stat().st_mtime_ns for p in out.glob("n*/*")}
    assert main(["import", "--from", tiny, "--out", str(out), "--per-class", "60"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("n*/*")} == stamp  # nothing rewritten
    assert load_dataset(out).id == first.id

    assert main(["import", "--from", tiny, "--out", str(out), "--per-class", "20"]) == 0
    smaller = load_dataset(out)
    assert all(len(list((out / c.wnid).iterdir())) == 20 for c in smaller.classes)
    assert len(smaller.files) == 400

    assert main(["import", "--from", tiny, "--out", str(out), "--per-class", "20", "--seed", "1"]) == 0
    reseeded = load_dataset(out)
    assert {f.path for f in reseeded.files} != {f.path for f in smaller.files}


def test_imagenet_tree_with_rejects_and_links(shared_datasets, tmp_path):
    tree = tmp_path / "imagenet" / "train"
    wnids = [line.split("\t")[0] for line in OFFICE3.splitlines()]
    for wnid in wnids:
        (tree / wnid).mkdir(parents=True)
        for i, data in enumerate(_variants(_sample(shared_datasets, wnid), 8)):
            (tree / wnid / f"{wnid}_{i}.JPEG").write_bytes(data)
    good = (tree / wnids[0] / f"{wnids[0]}_0.JPEG").read_bytes()
    (tree / wnids[0] / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    (tree / wnids[1] / "page.jpg").write_bytes(b"<html><body>not a photo</body></html>" * 20)
    (tree / wnids[1] / "notes.txt").write_text("ignored: not an image suffix")
    (tree / "n99999999").mkdir()  # a class outside the catalog is ignored

    out = tmp_path / "ds"
    assert main(["import", "--from", str(tree), "--out", str(out), "--classes", _catalog(tmp_path)]) == 0
    ds = load_dataset(out)
    src = ds.meta["source"]
    assert src["layout"] == "imagenet" and ds.meta["catalog"] == "office3"
    assert src["rejected"] == {"corrupt_image": 1, "unsupported_format": 1}
    assert sorted(f.path for f in ds.files) == sorted(f"{w}/{w}_{i}.JPEG" for w in wnids for i in range(8))
    assert not (out / "n99999999").exists()

    linked = tmp_path / "linked"
    assert main(["import", "--from", str(tree), "--out", str(linked), "--classes", _catalog(tmp_path), "--link"]) == 0
    one = linked / wnids[0] / f"{wnids[0]}_3.JPEG"
    assert one.is_symlink() or os.path.samefile(one, tree / wnids[0] / one.name)
    assert load_dataset(linked).id == ds.id  # same bytes, same names: the same dataset


def test_class_folders_named_by_label(shared_datasets, tmp_path):
    tree = tmp_path / "mine"
    for wnid, folder in [("n03085013", "Computer_Keyboard"), ("n04074963", "remote-control"), ("n03584254", "iPod")]:
        (tree / folder).mkdir(parents=True)
        for i, data in enumerate(_variants(_sample(shared_datasets, wnid), 6)):
            (tree / folder / f"photo{i}.jpg").write_bytes(data)
    out = tmp_path / "ds"
    assert main(["import", "--from", str(tree), "--out", str(out), "--classes", _catalog(tmp_path)]) == 0
    ds = load_dataset(out)
    assert ds.meta["source"]["layout"] == "folders"
    assert ds.meta["source"]["folders"]["n03085013"] == "Computer_Keyboard"
    assert len(ds.files) == 18 and all(f.path.split("/")[0] in ds.meta["source"]["folders"] for f in ds.files)


def test_missing_classes_are_named(shared_datasets, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = import_office(shared_datasets, out, "--classes", "office20-imagenet", "--per-class", "5")
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: 15 of 20 classes are missing")
    assert "n03793489 (mouse)" in err and "Traceback" not in err
    assert "n03085013" not in err  # present classes are not listed
    assert not (out / "dataset.json").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["import", "--from", "/nonexistent/photos", "--out", "X"], "no such folder"),
        (["import", "--from", ".", "--out", "X", "--classes", "no-such-catalog"], "unknown class catalog"),
        (["import", "--from", ".", "--out", "X", "--per-class", "0"], "must be at least 1"),
    ],
)
def test_bad_input_exits_2(argv, message, tmp_path, capsys):
    argv = [a if a != "X" else str(tmp_path / "out") for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_reads_well(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for word in ("fetch", "import", "download", "stats", "import-others"):
        assert word in text
    assert main(["import", "--help"]) == 0
    assert "--per-class N" in capsys.readouterr().out


def test_dataset_json_records_the_resolved_config(tiny_dataset):
    meta = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta["source"]["config"]["per_class"] == 60 and meta["source"]["config"]["seed"] == 0
