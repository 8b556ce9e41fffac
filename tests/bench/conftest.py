"""Fixtures of the bench tests: a teacher-sweep pack of the tiny dataset with non-office photos,
shared by the teacher sweep's and the student probe's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.teacher_sweep import main
from training.teacher import TeacherError, load_teacher

TEACHER = "efficientnet-lite0"


@pytest.fixture(scope="session")
def packed(others_dataset, tmp_path_factory) -> Path:
    try:
        load_teacher(TEACHER)
    except TeacherError as e:
        pytest.skip(f"{TEACHER} not installed: {e}")
    out = tmp_path_factory.mktemp("sweep") / "pack"
    assert (
        main(
            ["pack", "--data", str(others_dataset), "--teachers", TEACHER, "--out", str(out), "--others", "2", "1", "3"]
        )
        == 0
    )
    return out
