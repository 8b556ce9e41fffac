"""The hardware choice: strategies and switches resolved and recorded, and the GPU configuration
(mixed_float16, XLA, MirroredStrategy over two replicas) run for real on the CPU and exported.

A CPU split into logical devices must happen before TensorFlow initializes its devices, so the
runs that split it are fresh processes (``python -m training.train``), as a user runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipes import SMOKE_EXPORT_FLAGS, TINY_TRAIN_FLAGS

from training.config import RuntimeConfig
from training.hardware import HardwareError, cluster, setup

REPO = Path(__file__).resolve().parents[2]
# One epoch of the tiny recipe: enough to prove the path, not to learn much.
ONE_EPOCH = [
    *TINY_TRAIN_FLAGS[: TINY_TRAIN_FLAGS.index("--epochs")],
    "--epochs",
    "1",
    *TINY_TRAIN_FLAGS[TINY_TRAIN_FLAGS.index("--epochs") + 2 :],
]


def env(**extra) -> dict:
    return {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO), **extra}


def test_on_the_cpu_auto_is_one_device_in_float32_without_xla_and_config_records_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    runtime = RuntimeConfig()
    hw = setup(runtime)
    assert (hw.kind, hw.replicas, hw.mixed_precision, hw.jit_compile, hw.is_chief) == ("default", 1, False, False, True)
    assert (runtime.strategy, runtime.replicas, runtime.mixed_precision, runtime.jit_compile) == (
        "default",
        1,
        "off",
        "off",
    )
    assert hw.write_dir(Path("/run/checkpoints")) == Path("/run/checkpoints")


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}', "TF_CONFIG's task must be"),
    ],
)
def test_a_malformed_tf_config_is_a_clear_error(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(HardwareError, match=message):
        cluster()


def test_tf_config_without_a_cluster_is_a_single_machine(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{}")
    assert cluster() is None


def test_xla_with_deterministic_ops_is_refused_with_the_way_out():
    with pytest.raises(HardwareError, match="--jit-compile on needs --no-deterministic"):
        setup(RuntimeConfig(jit_compile="on"))


def test_xla_over_logical_cpu_replicas_is_refused_before_touching_devices():
    """XLA compiles every replica's step for the first CPU device: TF fails on the second one's
    variables, so the combination is refused (each half is tested below)."""
    with pytest.raises(HardwareError, match="--jit-compile on can't mirror over --cpu-replicas"):
        setup(RuntimeConfig(jit_compile="on", deterministic=False, strategy="mirrored", cpu_replicas=2))


def test_cli_errors_name_the_setting(tiny_dataset, tmp_path):
    """Wrong hardware flags stop before training with one error line and exit code 2."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "run"),
            *ONE_EPOCH,
            "--cpu-replicas",
            "-1",
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: --cpu-replicas must be 0 (off) or more, got -1" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def train_and_export(tiny_dataset, tmp_path, flags: list[str]) -> tuple[dict, str]:
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    trained = subprocess.run(
        [sys.executable, "-m", "training.train", "--data", str(tiny_dataset), "--out", str(run), *ONE_EPOCH, *flags],
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    exported = subprocess.run(
        [sys.executable, "-m", "export", "--run", str(run), "--out", str(bundle), *SMOKE_EXPORT_FLAGS],
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert exported.returncode == 0, exported.stdout[-2000:] + exported.stderr[-3000:]
    assert (bundle / "manifest.json").is_file() and (bundle / "model.tflite").is_file()
    return json.loads((run / "config.json").read_text())["runtime"], trained.stdout


@pytest.mark.slow
def test_gpu_configuration_mirrored_over_two_cpu_replicas_in_mixed_float16_trains_and_exports(tiny_dataset, tmp_path):
    runtime, out = train_and_export(
        tiny_dataset, tmp_path, ["--strategy", "mirrored", "--cpu-replicas", "2", "--mixed-precision", "on"]
    )
    assert {k: runtime[k] for k in ("strategy", "cpu_replicas", "replicas", "mixed_precision", "jit_compile")} == {
        "strategy": "mirrored",
        "cpu_replicas": 2,
        "replicas": 2,
        "mixed_precision": "on",
        "jit_compile": "off",
    }
    # The global batch is the per-replica batch times the replicas.
    assert "hardware: mirrored strategy, 2 replica(s) (CPU), mixed precision on, XLA off, global batch 64" in out


@pytest.mark.slow
def test_gpu_configuration_xla_in_mixed_float16_trains_and_exports(tiny_dataset, tmp_path):
    runtime, out = train_and_export(
        tiny_dataset, tmp_path, ["--mixed-precision", "on", "--jit-compile", "on", "--no-deterministic"]
    )
    assert {k: runtime[k] for k in ("strategy", "replicas", "mixed_precision", "jit_compile", "deterministic")} == {
        "strategy": "default",
        "replicas": 1,
        "mixed_precision": "on",
        "jit_compile": "on",
        "deterministic": False,
    }
    assert "hardware: default strategy, 1 replica(s) (CPU), mixed precision on, XLA on, global batch 32" in out
