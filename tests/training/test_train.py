"""training.train end to end on real photos: the run directory contract, learning, reload, resume after kill -9."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chance import assert_beats_chance
from recipes import TINY_TRAIN_FLAGS

from bundle.preprocess import PreprocessSpec
from training.config import build_parser, config_from_args
from training.data.dataset import load_dataset
from training.train import main

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = [
    "model.keras",
    "preprocess.json",
    "config.json",
    "metrics.json",
    "history.csv",
    "curves.png",
    "confusion.png",
    "filters.png",
]


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def latest_checkpoint_number(run: Path) -> int:
    """N of the last complete ckpt-N (from the CheckpointManager's state file), 0 if none yet."""
    try:
        state = (run / "checkpoints" / "checkpoint").read_text()
    except FileNotFoundError:
        return 0
    found = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', state, re.M)
    return int(found.group(1)) if found else 0


def checkpoint_counters(run: Path) -> tuple[int, int]:
    """(epoch, optimizer iterations) stored in the run's latest checkpoint."""
    from training.tfenv import tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    return (
        int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")),
        int(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")),
    )


@pytest.mark.slow
def test_tiny_run_writes_the_run_directory_export_reads(tiny_run, tiny_dataset):
    for name in RUN_FILES:
        assert (tiny_run / name).is_file(), name
    if importlib.util.find_spec("tensorboard"):  # optional package: without it the run notes "no logs"
        assert any((tiny_run / "logs").rglob("events.out.tfevents.*"))
    config = json.loads((tiny_run / "config.json").read_text())
    assert Path(config["data"]["root"]).is_absolute() and config["data"]["image_size"] == 32
    assert config["model"]["width"] == 32 and config["model"]["fc_units"] == 256
    assert json.loads((tiny_run / "preprocess.json").read_text()) == PreprocessSpec(32, 1.0).to_dict()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    ds = load_dataset(tiny_dataset)
    assert metrics["dataset"] == {"id": ds.id, "sha256": ds.sha256}
    assert metrics["epochs"] == 8 and len(history(tiny_run)) == 8 and metrics["params"] > 0
    for split in ("train", "val", "test"):
        assert metrics[split]["count"] == len(ds.items(split))
        assert [c["wnid"] for c in metrics[split]["per_class"]] == [c.wnid for c in ds.classes]


@pytest.mark.slow
def test_other_class_run_has_a_hidden_output_that_learns_non_office_photos(other_run, others_dataset):
    from training.tfenv import keras

    ds = load_dataset(others_dataset)
    config = json.loads((other_run / "config.json").read_text())
    assert (config["data"]["other_class"], config["data"]["other_fraction"]) == ("on", 0.25)
    assert keras.models.load_model(other_run / "model.keras", compile=False).output_shape == (None, 21)
    metrics = json.loads((other_run / "metrics.json").read_text())
    # Office accuracy is over the 20 office outputs, as users see it; "other" is not a class there.
    assert [c["wnid"] for c in metrics["test"]["per_class"]] == [c.wnid for c in ds.classes]
    assert metrics["test"]["count"] == len(ds.items("test"))
    assert_beats_chance(metrics, ("val", "test"), k=1, classes=20)
    other = metrics["other_class"]
    assert other["index"] == 20 and other["others_train_photos"] == len(ds.others_items("train"))
    called = other["share_called_other"]
    # Non-office photos of classes it never saw are called "other" more often than office photos.
    assert called["others_test"] > called["test"] + 0.1, called
    assert set(called) == {"train", "val", "test", "others_val", "others_test"}


def test_other_class_auto_follows_the_dataset(tiny_dataset, others_dataset):
    from training.pipeline import resolve_other_class

    cfg = config_from_args(build_parser().parse_args(["--data", "d", "--out", "o"]))
    assert cfg.data.other_class == "auto"  # the default: method b whenever the photos are there
    assert resolve_other_class(cfg.data, load_dataset(others_dataset)) == "on"
    assert resolve_other_class(cfg.data, load_dataset(tiny_dataset)) == "off"
    cfg.data.other_class = "off"
    assert resolve_other_class(cfg.data, load_dataset(others_dataset)) == "off"


@pytest.mark.slow
def test_tiny_run_beats_chance_clearly(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # 20 classes: chance is 5 % top-1 and 15 % top-3. Clearly: a guesser gets this far with p < 1e-6.
    for k in (1, 3):
        assert_beats_chance(metrics, ("val", "test"), k=k, classes=20, alpha=1e-6)


@pytest.mark.slow
def test_saved_model_is_float32_reloads_without_custom_objects_and_predicts_identically(tiny_run, tiny_dataset):
    from training.config import DataConfig
    from training.pipeline import Pipeline
    from training.report import top_k_accuracy
    from training.tfenv import keras

    model = keras.models.load_model(tiny_run / "model.keras")
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    assert model.input_shape == (None, 32, 32, 3) and model.input.dtype == "float32"
    assert model.output_shape == (None, 20) and model.output.dtype == "float32"
    pipe = Pipeline(load_dataset(tiny_dataset), DataConfig(), 32, 20, batch_size=64)
    probs = model.predict(pipe.evaluation("val"), verbose=0)
    again = keras.models.load_model(tiny_run / "model.keras").predict(pipe.evaluation("val"), verbose=0)
    np.testing.assert_array_equal(probs, again)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # It is the model the metrics were computed with (the best-val weights).
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert round(top_k_accuracy(probs, np.array(pipe.labels("val")), 1), 4) == metrics["val"]["top1"]


@pytest.mark.slow
def test_resume_after_kill_9_continues_from_the_checkpoint_and_ends_like_an_uninterrupted_run(
    tiny_run, tiny_dataset, tmp_path, capsys
):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.train", "--data", str(tiny_dataset), "--out", str(run), *TINY_TRAIN_FLAGS],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        # Wait for the checkpoint *state* file to name epoch 2: ckpt-2.index appears before the
        # checkpoint is complete, and resume (rightly) only trusts complete ones.
        while latest_checkpoint_number(run) < 2:
            assert proc.poll() is None and time.time() < deadline, "the run ended before its second checkpoint"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_epoch, killed_step = checkpoint_counters(run)
    assert 2 <= killed_epoch < 8 and not (run / "model.keras").exists()
    steps_per_epoch = killed_step // killed_epoch

    assert main(["--data", str(tiny_dataset), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert (
        f"resumed from {run / 'checkpoints'}/ckpt-{killed_epoch}: epoch {killed_epoch}, "
        f"optimizer step {killed_step}" in out
    )
    assert checkpoint_counters(run) == (8, 8 * steps_per_epoch)
    resumed, reference = history(run), history(tiny_run)
    assert [int(r["epoch"]) for r in resumed] == list(range(1, 9))
    # Seeded per epoch, the resumed epochs saw the same batches: the same numbers as tiny_run.
    for key in ("loss", "val_loss", "val_accuracy"):
        assert [r[key] for r in resumed] == [r[key] for r in reference], key
    # The run's wall time counts the killed invocation's epochs too, not only the resumed ones.
    assert json.loads((run / "metrics.json").read_text())["wall_time_s"] >= sum(float(r["seconds"]) for r in resumed)


def test_a_run_with_checkpoints_is_not_overwritten_without_resume(tmp_path, capsys):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\n')
    assert main(["--data", "unused", "--out", str(tmp_path / "run")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_every_config_field_is_a_grouped_cli_flag_and_resume_keeps_the_saved_config():
    parser = build_parser()
    help_text = parser.format_help()
    for group in ("model options", "data options", "optim options", "schedule options", "runtime options"):
        assert group in help_text
    args = parser.parse_args(
        [
            "--data",
            "d",
            "--out",
            "o",
            "--width",
            "64",
            "--no-flip",
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--schedule",
            "step",
            "--image-size",
            "96",
            "--seed",
            "7",
        ]
    )
    cfg = config_from_args(args)
    assert (cfg.model.width, cfg.data.flip, cfg.optim.optimizer, cfg.optim.lr) == (64, False, "sgd", 0.05)
    assert (cfg.schedule.schedule, cfg.data.image_size, cfg.runtime.seed) == ("step", 96, 7)
    assert cfg.model.fc_units == 1024 and cfg.data.brightness == 0.2  # untouched: defaults
    resumed = config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--epochs", "50"]), base=cfg)
    assert resumed.model.width == 64 and resumed.schedule.epochs == 50
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--out", "o", "--optimizer", "rmsprop"])


@pytest.mark.parametrize(
    "problem",
    [
        "missing",
        "no_manifest",
        "class_without_train_images",
        "tiny_images",
        "broken_jpeg",
        "other_class_without_others",
        "other_fraction_out_of_range",
    ],
)
def test_bad_input_is_one_clear_error_with_exit_code_2(problem, tiny_dataset, tmp_path, capsys):
    root = tmp_path / "data"
    args = []
    if problem == "no_manifest":
        root.mkdir()
    elif problem == "class_without_train_images":
        root.mkdir()
        meta = json.loads((tiny_dataset / "dataset.json").read_text())
        for f in meta["files"]:
            if f["class"] == 3:
                f["split"] = "val"
        for wnid in {f["path"].split("/")[0] for f in meta["files"]}:
            (root / wnid).symlink_to(tiny_dataset / wnid)
        (root / "dataset.json").write_text(json.dumps(meta))
    elif problem == "tiny_images":
        root, args = tiny_dataset, ["--image-size", "8"]
    elif problem == "broken_jpeg":  # passes the manifest checks, fails when TF decodes it
        root.mkdir()
        meta = json.loads((tiny_dataset / "dataset.json").read_text())
        broken = next(f["path"] for f in meta["files"] if f["split"] == "train")
        for wnid in {f["path"].split("/")[0] for f in meta["files"]}:
            (root / wnid).mkdir()
            for photo in (tiny_dataset / wnid).iterdir():
                (root / wnid / photo.name).symlink_to(photo)
        (root / broken).unlink()
        (root / broken).write_bytes((tiny_dataset / broken).read_bytes()[:300])
        (root / "dataset.json").write_text(json.dumps(meta))
        args = ["--image-size", "32", "--epochs", "1", "--teacher", "none", "--no-progress"]
    elif problem == "other_class_without_others":
        root, args = tiny_dataset, ["--other-class", "on"]
    elif problem == "other_fraction_out_of_range":
        root, args = tiny_dataset, ["--other-fraction", "1"]
    assert main(["--data", str(root), "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert {
        "missing": "does not exist",
        "no_manifest": "dataset.json is missing",
        "class_without_train_images": "has no train images",
        "tiny_images": "too small",
        "broken_jpeg": "can't be decoded (Invalid JPEG data",
        "other_class_without_others": "--other-class on: " + str(root) + " has no non-office train photos",
        "other_fraction_out_of_range": "--other-fraction is a share in (0, 1), got 1.0",
    }[problem] in err


@pytest.mark.slow
def test_resuming_with_other_model_flags_is_a_clear_error(tiny_run, tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["--data", str(tiny_dataset), "--out", str(run), "--resume", "--width", "48"]) == 2
    assert "does not fit this model" in capsys.readouterr().err


def test_keep_epoch_last_resaves_a_finished_run_from_its_last_checkpoint(tiny_run, tiny_dataset, tmp_path, capsys):
    from training.tfenv import keras

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = json.loads((tiny_run / "metrics.json").read_text())["best_epoch"]
    assert main(["--data", str(tiny_dataset), "--out", str(run), "--resume", "--keep-epoch", "last"]) == 0
    assert "saving the last epoch's (8) as a float32 model" in capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text())["best_epoch"] == 8
    assert json.loads((run / "config.json").read_text())["schedule"]["keep_epoch"] == "last"
    # model.keras now holds epoch 8's weights: the same as the last checkpoint's, and (unless the
    # tiny run's best epoch was its last) not the best-val weights it held before.
    saved = keras.models.load_model(run / "model.keras", compile=False)
    reference = keras.models.load_model(tiny_run / "model.keras", compile=False)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    differs = not np.allclose(saved.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert differs == (best != 8)
