"""`python -m training.data stats`: the counts table, train-only mean/std, and the contact sheet."""

from __future__ import annotations

import numpy as np
from data_cli import import_office
from PIL import Image

from bundle.images import decode_image
from training.data.cli import main
from training.data.dataset import load_dataset
from training.data.stats import LABEL_WIDTH


def _mean(paths) -> np.ndarray:
    pixels = np.concatenate([np.asarray(decode_image(p.read_bytes()), np.float64).reshape(-1, 3) for p in paths])
    return pixels.mean(0)


def test_stats_table_and_sheet(tiny_dataset, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["stats", str(tiny_dataset), "--sheet", str(sheet), "--samples", "5", "--thumb", "32"]) == 0
    out = capsys.readouterr().out
    ds = load_dataset(tiny_dataset)
    for c in ds.classes:
        assert c.wnid in out and c.label in out
    counts = ds.meta["counts"]
    totals = [sum(counts[s].values()) for s in ("train", "val", "test")]
    assert " ".join(str(n) for n in totals) in " ".join(out.split())  # the 'all' row
    assert str(ds.mean) in out and f"{totals[0]} train images only" in out
    with Image.open(sheet) as img:
        assert img.format == "PNG"
        assert img.size == (LABEL_WIDTH + 5 * 34, 20 * 34 + 2)
        # every class row has photos in it, not blank tiles
        arr = np.asarray(img.convert("L"), np.float64)
        for row in range(20):
            tiles = arr[2 + row * 34 : 2 + row * 34 + 32, LABEL_WIDTH:]
            assert tiles.std() > 10


def test_mean_std_are_train_only(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    train = [p for p, _ in ds.items("train")]
    held_out = [p for s in ("val", "test") for p, _ in ds.items(s)]
    np.testing.assert_allclose(ds.mean, _mean(train), atol=1e-3)
    assert np.abs(_mean(train + held_out) - ds.mean).max() > 1e-3  # it would differ with val/test in


def test_default_sheet_goes_in_the_dataset(shared_datasets, tmp_path, capsys):
    root = tmp_path / "ds"  # not the session's tiny_dataset: other tests share that one
    assert import_office(shared_datasets, root, "--per-class", "10") == 0
    before = load_dataset(root).id
    assert main(["stats", str(root), "--split", "val", "--samples", "2"]) == 0
    assert (root / "contact_sheet.png").is_file()
    assert f"contact sheet: {root / 'contact_sheet.png'}" in capsys.readouterr().out
    assert import_office(shared_datasets, root, "--per-class", "10") == 0
    assert load_dataset(root).id == before  # the sheet is not mistaken for a photo


def test_stats_of_a_missing_dataset_exits_2(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
