"""export's CLI contract without a model: help, usage errors (exit 2), a missing run (exit 2)."""

from __future__ import annotations

import pytest

from export.cli import main
from export.config import build_parser, config_from_args


def test_help_lists_grouped_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--run",
        "--out",
        "--data",
        "--target-sparsity",
        "--prune-epochs",
        "--prune-lr",
        "--batch-size",
        "--calibration-images",
        "--min-agreement",
        "--max-accuracy-drop",
        "--model-name",
        "--model-version",
    ):
        assert flag in out
    for group in ("prune:", "quantize:", "gate:", "model:"):
        assert group in out


def test_flags_reach_the_typed_config(tmp_path):
    args = build_parser().parse_args(
        [
            "--run",
            str(tmp_path),
            "--out",
            str(tmp_path / "b"),
            "--target-sparsity",
            "0.5",
            "--prune-epochs",
            "2",
            "--calibration-images",
            "42",
            "--min-agreement",
            "0.9",
        ]
    )
    cfg = config_from_args(args)
    assert (cfg.prune.target_sparsity, cfg.prune.epochs) == (0.5, 2)
    assert cfg.quantize.calibration_images == 42 and cfg.gate.min_agreement == 0.9
    assert cfg.gate.max_accuracy_drop == 1.5 and cfg.to_dict()["run"] == str(tmp_path)


@pytest.mark.parametrize(
    "flags", [["--target-sparsity", "1.5"], ["--calibration-images", "0"], ["--min-agreement", "98"]]
)
def test_impossible_settings_are_usage_errors(tmp_path, flags, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--run", str(tmp_path), "--out", str(tmp_path / "bundle"), *flags])
    assert e.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "nope"), "--out", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err
    assert "model.keras is missing" in err and "Traceback" not in err
    assert not (tmp_path / "bundle").exists()
