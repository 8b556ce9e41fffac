"""bench.compare on the tiny bundle: the shipped model's figures, on the same photos for every recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.record import cpu_line

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compared_results(tiny_bundle, tmp_path_factory) -> Path:
    """The folder of one measure of the tiny bundle under two names, ``a`` and ``b``."""
    from bench.compare import main

    results = tmp_path_factory.mktemp("compare")
    assert main(["--bundle", f"a={tiny_bundle}", "--bundle", f"b={tiny_bundle}", "--results", str(results)]) == 0
    return results


@pytest.fixture(scope="module")
def compared(compared_results) -> tuple[dict, str]:
    return json.loads((compared_results / "compare.json").read_text()), (compared_results / "compare.md").read_text()


def earlier_results(compared_results: Path, folder: Path, edit) -> Path:
    """A copy of the measured compare.json whose rows ``edit`` changed, as an earlier run's file."""
    result = json.loads((compared_results / "compare.json").read_text())
    result["recipes"] = edit(result["recipes"])
    (folder / "compare.json").write_text(json.dumps(result))
    return folder / "compare.json"


@pytest.fixture(scope="module")
def kept(compared_results, tiny_bundle, tmp_path_factory) -> tuple[dict, str, Path, dict]:
    """``--keep`` of an earlier file holding a(seed s) at a made-up int8 top-1, a(seed s + 1) and
    b(seed s), with the tiny bundle measured again as a: the new a(seed s) replaces the kept one."""
    from bench.compare import main

    def edit(rows):
        a, b = rows
        stale = {**a, "int8": {**a["int8"], "top1": 0.0}}
        seed1 = {**a, "seed": a["seed"] + 1, "int8": {**a["int8"], "top1": round(a["int8"]["top1"] + 0.1, 4)}}
        return [stale, seed1, b]

    earlier = earlier_results(compared_results, tmp_path_factory.mktemp("earlier"), edit)
    before = json.loads(earlier.read_text())
    results = tmp_path_factory.mktemp("kept")
    assert main(["--keep", str(earlier), "--bundle", f"a={tiny_bundle}", "--results", str(results)]) == 0
    return json.loads((results / "compare.json").read_text()), (results / "compare.md").read_text(), earlier, before


def test_compare_scores_the_shipped_bundle_and_its_run(compared, tiny_bundle, tiny_run, sample_photos):
    from bench.compare import kept_epoch, sample_figures
    from bundle.litert import LiteRTModel
    from bundle.manifest import load_bundle
    from export.pipeline import git_revision
    from training.run import read_history

    result, md = compared
    a, b = result["recipes"]
    shipped = load_bundle(tiny_bundle)
    manifest = shipped.manifest
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    config = json.loads((tiny_run / "config.json").read_text())
    # int8 as shipped is what the export's parity gate measured on the same test split.
    assert a["int8"]["top1"] == pytest.approx(manifest["metrics"]["int8_accuracy"], abs=1e-4)
    assert a["float"] == {"top1": metrics["test"]["top1"], "top3": metrics["test"]["top3"]}
    assert a["float_train"] == {"top1": metrics["train"]["top1"], "top3": metrics["train"]["top3"]}
    assert a["seed"] == config["runtime"]["seed"] and a["teacher"] == "none" and a["run"] == str(tiny_run)
    assert a["exported_by"] == manifest["model"]["git_revision"] and a["measured_by"] == git_revision()
    assert a["distill"] is None and a["teacher_targets"] is None
    assert a["kept_epoch"] == metrics["best_epoch"] and 1 <= a["kept_epoch"] <= a["epochs"]
    assert f"| a | {a['seed']} | none | {a['epochs']}{kept_epoch(a)} |" in md
    parity = manifest["parity"]
    assert (a["agreement"], a["agreement_within_ties"]) == (parity["agreement"], parity["agreement_within_ties"])
    assert a["gate_min_agreement"] == parity["gate"]["min_agreement"]
    assert 1 / len(manifest["classes"]) <= a["int8_median_top_prob"] <= 1
    epochs_s = sum(row["seconds"] for row in read_history(tiny_run))
    assert a["train_epochs_s"] == pytest.approx(epochs_s, abs=0.1) and a["train_epochs_s"] <= a["train_wall_s"]
    assert 0 < a["int8_flip_avg"]["top1"] <= a["int8_flip_avg"]["top3"] <= 1
    assert a["samples"]["photos"] == len(sample_photos) and a["samples"]["office_photos"] == 20
    # The tiny run learned no "other"; a run that had learned coffee mugs and printers as "other"
    # would count those two classes (the backpack is one of the bundle's own classes).
    assert a["samples"]["other_classes_learned_as_other"] == 0
    # The row names the data behind it: every photo of dataset.json once, by split (this dataset
    # has no non-office photos, and the file says so).
    dataset = json.loads((Path(config["data"]["root"]) / "dataset.json").read_text())
    office = a["photos"]["office"]
    assert sum(office.values()) == len(dataset["files"]) and min(office.values()) > 0
    assert sum(a["photos"]["non_office"].values()) == 0 and "others" not in dataset
    counts = f"{office['train']} / {office['val']} / {office['test']}"
    assert f"office photos {counts} (train / val / test); no non-office photos" in md
    model = LiteRTModel(shipped.model_path.read_bytes())
    learned = {"n03063599", "n04004767", "n02769748"}
    assert sample_figures(model, shipped, learned)["other_classes_learned_as_other"] == 2
    assert {k: v for k, v in a.items() if k != "name"} == {k: v for k, v in b.items() if k != "name"}
    assert f"| a | {a['seed']} | none |" in md and f"| b | {b['seed']} | none |" in md and "avx512_vnni" in md
    assert f"| class | a ({a['seed']}) | b ({b['seed']}) |" in md
    # One seed per recipe here: its mean is its own figure, min and max alike.
    means = {g["name"]: g for g in result["means"]}
    assert means["a"]["seeds"] == [a["seed"]]
    top1 = a["int8"]["top1"]
    assert means["a"]["figures"]["int8 top-1"] == {"mean": top1, "min": top1, "max": top1}


def test_the_dataset_line_counts_office_and_non_office_photos_by_split(others_dataset):
    from bench.compare import dataset_line, dataset_photos
    from training.data.dataset import load_dataset

    ds = load_dataset(others_dataset)
    photos = dataset_photos(ds)
    others = ds.others["files"]
    by_split = {s: [f for f in others if f["split"] == s] for s in ("train", "val", "test")}
    assert photos["non_office"] == {s: len(files) for s, files in by_split.items()}
    assert photos["non_office"]["train"] > 0 and photos["non_office"]["test"] > 0
    # Train and val come from the training-side classes, test from classes no training photo has.
    assert photos["non_office_classes"] == {
        "training_side": len({f["wnid"] for f in by_split["train"] + by_split["val"]}),
        "unseen": len({f["wnid"] for f in by_split["test"]}),
    }
    assert photos["office"] == {s: len(ds.items(s)) for s in ("train", "val", "test")}
    (line, _) = dataset_line([{"dataset": ds.id, "photos": photos}])
    other = photos["non_office"]
    assert f"non-office photos {other['train']} / {other['val']} (train / val)" in line
    assert f"{other['test']} of {photos['non_office_classes']['unseen']} unseen classes" in line
    assert dataset_line([{"dataset": ds.id}]) == []


def test_the_epochs_cell_names_the_kept_epoch_when_it_is_not_the_last():
    from bench.compare import kept_epoch

    assert kept_epoch({"epochs": 150, "kept_epoch": 78}) == " (78)"
    assert kept_epoch({"epochs": 150, "kept_epoch": 150}) == ""
    assert kept_epoch({"epochs": 30}) == ""


def test_seeds_of_one_recipe_are_averaged(compared):
    from bench.compare import seed_means

    row = compared[0]["recipes"][0]
    other = {**row, "seed": row["seed"] + 1, "int8": {**row["int8"], "top1": row["int8"]["top1"] + 0.1}}
    (group,) = seed_means([row, other])
    assert group["seeds"] == [row["seed"], row["seed"] + 1]
    top1 = group["figures"]["int8 top-1"]
    assert top1["mean"] == pytest.approx(row["int8"]["top1"] + 0.05, abs=1e-4)
    assert (top1["min"], top1["max"]) == (row["int8"]["top1"], row["int8"]["top1"] + 0.1)
    assert group["figures"]["float top-1"]["min"] == group["figures"]["float top-1"]["max"]
    first = row["per_class"][0]["int8_top1"]
    other["per_class"] = [{**other["per_class"][0], "int8_top1": first + 0.2}, *row["per_class"][1:]]
    (group,) = seed_means([row, other])
    assert group["per_class"][0]["int8_top1"] == pytest.approx(first + 0.1, abs=1e-4)
    assert [c["int8_top1"] for c in group["per_class"][1:]] == [c["int8_top1"] for c in row["per_class"][1:]]
    samples = row["samples"]["office_top1"]
    assert group["figures"]["full-size office top-1"] == {"mean": samples, "min": samples, "max": samples}


def test_a_recipe_repeating_a_seed_is_refused(tiny_bundle, tmp_path, capsys):
    from bench.compare import main

    assert main(["--bundle", f"a={tiny_bundle}", "--bundle", f"a={tiny_bundle}", "--results", str(tmp_path)]) == 2
    assert "recipe 'a': seed" in capsys.readouterr().err
    assert not (tmp_path / "compare.json").exists()


def test_a_recipe_is_its_config_but_the_runtime(compared, tiny_run):
    """Two seeds under one name must be one recipe: a run with another dropout is not averaged in."""
    import dataclasses

    from bench.compare import recipe_digest, seed_means
    from training.run import load_run

    cfg = load_run(tiny_run).config
    row = compared[0]["recipes"][0]
    assert recipe_digest(cfg) == row["recipe_sha256"]
    reseeded = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, seed=cfg.runtime.seed + 1, out="x"))
    assert recipe_digest(reseeded) == recipe_digest(cfg)
    assert cfg.teacher.name == "none"  # so the teacher's settings are not part of its recipe
    unread = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, drop_other=not cfg.teacher.drop_other))
    assert recipe_digest(unread) == recipe_digest(cfg)
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=cfg.model.dropout / 2))
    assert recipe_digest(other) != recipe_digest(cfg)
    with pytest.raises(ValueError, match="recipe 'a': its runs were trained with different configs") as same_code:
        seed_means([row, {**row, "seed": row["seed"] + 1, "recipe_sha256": recipe_digest(other)}])
    assert "different code" not in str(same_code.value)
    older = {**row, "seed": row["seed"] + 1, "recipe_sha256": recipe_digest(other), "measured_by": "0" * 40}
    with pytest.raises(ValueError, match="made by different code .*000000000000.*: measure every seed's bundle again"):
        seed_means([row, older])


def test_a_run_saved_before_a_setting_existed_is_the_same_recipe(tiny_run):
    """A run saved before a setting existed reads it at the value that reproduces it, so it and a
    run saved after with that value are one recipe, and their seeds average together."""
    from bench.compare import recipe_digest
    from training.run import ADDED_SINCE, config_from_json, load_run

    saved = load_run(tiny_run).config.to_dict()
    assert saved["schedule"]["keep_epoch"] == ADDED_SINCE[("schedule", "keep_epoch")]
    before = {**saved, "schedule": {k: v for k, v in saved["schedule"].items() if k != "keep_epoch"}}
    assert recipe_digest(config_from_json(before)) == recipe_digest(config_from_json(saved))


def test_flip_averaging_averages_with_the_left_right_mirror(tiny_bundle):
    from PIL import Image

    from bench.compare import flip_averaged
    from bundle.litert import LiteRTModel
    from bundle.manifest import load_bundle
    from export.inputs import split_arrays
    from training.run import load_run

    b = load_bundle(tiny_bundle)
    ds = load_run(json.loads((tiny_bundle / "export_config.json").read_text())["run"]).load_dataset()
    x, _ = split_arrays(ds, "test", b.preprocess)
    x = x[:8]
    model = LiteRTModel(b.model_path.read_bytes())
    probs = model.probabilities(x)
    # Pillow mirrors each photo independently of numpy's axis order.
    mirrored = np.stack([np.asarray(Image.fromarray(im).transpose(Image.Transpose.FLIP_LEFT_RIGHT)) for im in x])
    expected = (probs + model.probabilities(mirrored)) / 2
    np.testing.assert_allclose(flip_averaged(model, x, probs), expected, atol=1e-6)
    assert not np.allclose(expected, probs, atol=1e-3)


def test_compare_says_how_to_name_a_bundle(tmp_path, capsys):
    from bench.compare import main

    assert main(["--bundle", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "--bundle takes NAME=DIR" in capsys.readouterr().err


def test_a_distilled_rows_teacher_column_names_the_recipe_it_read():
    from dataclasses import asdict

    from bench.compare import distill_settings
    from training.config import TeacherConfig

    settings = asdict(TeacherConfig(name="efficientnet-lite0", head="fitted"))
    assert distill_settings(settings) == ' (fitted, w 0.7, T 1, no "other" for office photos)'
    settings.update(temperature=2.0, drop_other=False, weight=0.5)
    assert distill_settings(settings) == " (fitted, w 0.5, T 2)"
    settings.update(views=16, input_size=160)
    assert distill_settings(settings) == " (fitted, w 0.5, T 2, 16 views, 160 px)"
    del settings["views"], settings["input_size"]  # a row measured before the flags: plain views, 128 px
    assert distill_settings(settings) == " (fitted, w 0.5, T 2)"


def test_kept_rows_show_beside_the_new_ones_and_enter_the_means(kept, compared, tiny_dataset):
    result, md, earlier, before = kept
    measured = compared[0]["recipes"][0]
    seed = measured["seed"]
    dataset = json.loads((tiny_dataset / "dataset.json").read_text())["id"]
    assert measured["dataset"] == dataset
    # The kept rows in their order (a at seed + 1, then b), then the new row.
    assert [(r["name"], r["seed"]) for r in result["recipes"]] == [("a", seed + 1), ("b", seed), ("a", seed)]
    seed1, b, fresh = result["recipes"]
    # Each kept row keeps the CPU it was measured on: the new file's top-level CPU is this machine's.
    assert seed1 == {**before["recipes"][1], "kept_from": str(earlier), "cpu": before["cpu"]}
    assert b == {**before["recipes"][2], "kept_from": str(earlier), "cpu": before["cpu"]}
    assert "kept_from" not in fresh and "cpu" not in fresh and fresh["dataset"] == dataset
    assert f"| a | {seed + 1} (kept) | none |" in md and f"| b | {seed} (kept) | none |" in md
    assert f"| a | {seed} | none |" in md
    assert "(kept): measured by an earlier run of this benchmark (same dataset id)" in md
    assert f"benchmark code: git {before['recipes'][1]['measured_by'][:12]} (rows" in md
    assert f"trained and measured on {cpu_line(before['cpu'])} (epochs' times" in md
    assert "(kept)" not in compared[1]  # a compare without --keep says nothing of it
    means = {g["name"]: g for g in result["means"]}
    assert means["a"]["seeds"] == [seed + 1, seed] and means["b"]["seeds"] == [seed]
    top1 = measured["int8"]["top1"]
    assert means["a"]["figures"]["int8 top-1"] == {
        "mean": pytest.approx(top1 + 0.05, abs=1e-4),
        "min": top1,
        "max": round(top1 + 0.1, 4),
    }


def test_a_new_row_replaces_a_kept_row_of_its_name_and_seed(kept, compared):
    result, _, _, before = kept
    assert before["recipes"][0]["int8"]["top1"] == 0.0  # the kept a at this seed, replaced
    fresh = result["recipes"][-1]
    measured = compared[0]["recipes"][0]
    assert fresh["int8"] == measured["int8"] and fresh["int8"]["top1"] > 0
    assert [r["int8"]["top1"] for r in result["recipes"] if r["name"] == "a"] == [
        before["recipes"][1]["int8"]["top1"],
        measured["int8"]["top1"],
    ]


def test_a_row_kept_again_still_names_the_run_that_measured_it(kept, tmp_path):
    from bench.compare import with_kept

    result, _, earlier, _ = kept
    (tmp_path / "again.json").write_text(json.dumps(result))
    fresh = {**result["recipes"][-1], "name": "c"}
    rows = with_kept(tmp_path / "again.json", [fresh])
    assert [r.get("kept_from") for r in rows] == [str(earlier), str(earlier), str(tmp_path / "again.json"), None]


def test_a_kept_row_of_another_dataset_is_refused(compared_results, compared, tiny_bundle, tmp_path, capsys):
    from bench.compare import main

    def edit(rows):
        return [rows[0], {**rows[1], "dataset": "office20-000000000000"}]

    earlier = earlier_results(compared_results, tmp_path, edit)
    results = tmp_path / "results"
    assert main(["--keep", str(earlier), "--bundle", f"c={tiny_bundle}", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    dataset = compared[0]["recipes"][0]["dataset"]
    assert f"error: --keep {earlier}: row 'b' seed" in err
    assert f"dataset office20-000000000000, the new rows on {dataset}" in err
    assert not results.exists()


def test_a_kept_row_without_its_dataset_id_is_refused(compared, tmp_path):
    from bench.compare import with_kept

    a, b = compared[0]["recipes"]
    old = {k: v for k, v in b.items() if k != "dataset"}
    (tmp_path / "old.json").write_text(json.dumps({"recipes": [old]}))
    with pytest.raises(ValueError, match=rf"row 'b' seed {b['seed']} was measured on dataset \(not recorded\)"):
        with_kept(tmp_path / "old.json", [{**a, "name": "c"}])


def test_a_kept_row_of_another_non_office_set_is_refused(compared, tmp_path):
    from bench.compare import with_kept

    a, b = compared[0]["recipes"]
    photos = {**b["photos"], "non_office": {**b["photos"]["non_office"], "train": 50}}
    (tmp_path / "old.json").write_text(json.dumps({"cpu": {}, "recipes": [{**b, "photos": photos}]}))
    with pytest.raises(ValueError, match=rf"row 'b' seed {b['seed']} was measured with other photos of dataset"):
        with_kept(tmp_path / "old.json", [{**a, "name": "c"}])
    # A row kept from before the counts were recorded is taken on its dataset id alone.
    (tmp_path / "old.json").write_text(
        json.dumps({"cpu": {}, "recipes": [{k: v for k, v in b.items() if k != "photos"}]})
    )
    assert [r["name"] for r in with_kept(tmp_path / "old.json", [{**a, "name": "c"}])] == ["b", "c"]


def test_a_distilled_row_carries_the_time_its_teachers_targets_took(tiny_dataset, tmp_path):
    """Before its first epoch a distilled run waits for its teacher's pass over the training photos
    (and their augmented views): the row reads it from the teacher's caches, which record it, and
    the table adds it."""
    import shutil

    from recipes import SMOKE_EXPORT_FLAGS, TINY_TRAIN_FLAGS, make_teacher

    from bench.compare import measure, render, seed_means
    from bench.record import cpu_info
    from export.cli import main as export_main
    from training.train import main as train_main

    data = tmp_path / "office20"
    shutil.copytree(tiny_dataset, data)  # the teacher's cache goes beside the dataset
    teacher = make_teacher(tmp_path / "small.keras", seed=0)
    flags = [*TINY_TRAIN_FLAGS, "--epochs", "1", "--teacher", str(teacher), "--teacher-views", "3"]
    assert train_main(["--data", str(data), "--out", str(tmp_path / "run"), *flags]) == 0
    assert export_main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "bundle"), *SMOKE_EXPORT_FLAGS]) == 0
    row = measure("distilled", tmp_path / "bundle")
    [features] = (data / "teacher").glob("small-features-*.json")
    took = json.loads(features.read_text())["extraction"]
    [head] = (data / "teacher").glob("small-fitted-views3-*.json")
    views_s = json.loads(head.read_text())["views_extraction"]["seconds"]
    assert row["teacher_targets"] == {**took, "views": 3, "views_seconds": views_s} and took["images_per_s"] > 0
    md = render({"cpu": cpu_info(), "recipes": [row], "means": seed_means([row])})
    plain = f"min + {took['seconds'] / 60:.0f} min teacher's targets ({took['images_per_s']:.0f} images/s)"
    assert f"{plain} + 1 augmented views ({views_s / 60:.0f} min) |" in md
    # Training served from bench.teacher's every-split cache: the time is read from that one.
    from bench.compare import teacher_targets
    from training.data.dataset import SPLITS, load_dataset
    from training.run import load_run
    from training.teacher import load_teacher
    from training.teacher.targets import cache_path

    cfg, ds = load_run(tmp_path / "run").config.teacher, load_dataset(data)
    features.rename(cache_path(ds, load_teacher(cfg.name, cfg.input_size), "features", SPLITS).with_suffix(".json"))
    assert teacher_targets(cfg, ds) == row["teacher_targets"]
