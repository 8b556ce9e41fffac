"""The trained-run seam (training.run): one reader, one rule for runs saved by older code."""

from __future__ import annotations

import json

import pytest

from bundle.preprocess import PreprocessSpec
from training import run as run_files
from training.config import TrainConfig
from training.run import ADDED_SINCE, RunError, RunMetrics, config_from_json, load_run


def metrics_with(**splits: dict) -> RunMetrics:
    """A metrics.json with these splits' figures (the rest is not read here)."""
    return RunMetrics({"id": "d", "sha256": ""}, [], 64, 0, 0, 0, 0.0, splits)


def write_run(path, config: dict, metrics: RunMetrics | None = None):
    """The files of a finished run as the trainer writes them (model.keras only needs to exist to
    be found: nothing here loads it)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / run_files.MODEL_FILE).write_bytes(b"not read by load_run")
    (path / run_files.CONFIG_JSON).write_text(json.dumps(config))
    run_files.save_preprocess(path, PreprocessSpec(64, 1.0))
    if metrics is not None:
        run_files.save_metrics(path, metrics)
    return path


def test_a_finished_run_is_parsed_once_into_types(tmp_path):
    cfg = TrainConfig()
    cfg.data.root, cfg.data.other_class, cfg.runtime.seed = "/data/office20", "on", 7
    run = load_run(write_run(tmp_path / "run", cfg.to_dict(), metrics_with(test={"top1": 0.5})))
    assert run.config == cfg and run.seed == 7 and run.other_output
    assert run.preprocess == PreprocessSpec(64, 1.0) and run.metrics["test"]["top1"] == 0.5
    assert str(run.data_root) == "/data/office20" and run.model_path == tmp_path / "run" / "model.keras"


def test_a_run_saved_before_other_class_means_off_not_todays_auto():
    saved = TrainConfig().to_dict()
    del saved["data"]["other_class"], saved["data"]["other_fraction"]
    assert TrainConfig().data.other_class == "auto"  # today's default...
    assert config_from_json(saved).data.other_class == "off"  # ...is not what the old run did


def test_every_added_setting_names_a_real_field_and_a_value_of_its_type():
    cfg = TrainConfig()
    for (group, name), value in ADDED_SINCE.items():
        current = getattr(getattr(cfg, group), name)
        assert type(value) is type(current), (group, name)


def test_a_missing_key_without_a_rule_is_an_error_not_a_default(tmp_path):
    saved = TrainConfig().to_dict()
    del saved["optim"]["label_smoothing"]
    with pytest.raises(RunError, match=r"lacks keys \['label_smoothing'\]"):
        load_run(write_run(tmp_path / "run", saved, metrics_with()))


def test_an_unknown_key_from_newer_code_is_an_error(tmp_path):
    saved = TrainConfig().to_dict()
    saved["data"]["random_erasing"] = 0.25
    with pytest.raises(RunError, match="unknown keys.*random_erasing"):
        load_run(write_run(tmp_path / "run", saved, metrics_with()))


def test_an_unfinished_run_says_how_to_finish_it(tmp_path):
    path = write_run(tmp_path / "run", TrainConfig().to_dict(), metrics=None)
    with pytest.raises(RunError, match="metrics.json is missing.*--resume"):
        load_run(path)


def test_a_torn_file_is_named(tmp_path):
    path = write_run(tmp_path / "run", TrainConfig().to_dict(), metrics_with())
    (path / run_files.METRICS_JSON).write_text('{"test": ')
    with pytest.raises(RunError, match="metrics.json is unreadable"):
        load_run(path)


def test_history_round_trips_and_drops_epochs_past_a_checkpoint(tmp_path):
    rows = [{"epoch": e, **{k: 0.5 for k in run_files.HISTORY_FIELDS[1:]}} for e in (1, 2, 3)]
    run_files.write_history(tmp_path, rows)
    assert run_files.read_history(tmp_path) == rows
    assert [r["epoch"] for r in run_files.read_history(tmp_path, upto=2)] == [1, 2]
