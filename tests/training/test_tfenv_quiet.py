"""training.tfenv: a CPU-only machine's CUDA probe prints nothing, real messages still print."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.tfenv import no_nvidia_driver

REPO = Path(__file__).resolve().parents[2]
NOISE = ("Could not find cuda drivers", "failed call to cuInit", "absl::InitializeLog")


def stderr_of(*args: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.mark.skipif(not no_nvidia_driver(), reason="an NVIDIA driver is present: CUDA messages are real here")
def test_cuda_probe_is_silent_and_real_messages_are_kept():
    # at TF's most verbose C++ level the CPU feature note (a real info line) must still show
    err = stderr_of(
        "-c",
        "from training.tfenv import tf\n"
        "tf.get_logger().warning('a real warning')\n"
        "print(tf.reduce_sum(tf.ones(3)).numpy())",
        TF_CPP_MIN_LOG_LEVEL="0",
    )
    assert not [n for n in NOISE if n in err], err
    assert "a real warning" in err and "cpu_feature_guard" in err, err


@pytest.mark.skipif(not no_nvidia_driver(), reason="an NVIDIA driver is present: CUDA messages are real here")
def test_trainer_help_opens_without_cuda_noise():
    err = stderr_of("-m", "training.train", "--help")
    assert not [n for n in NOISE if n in err], err
