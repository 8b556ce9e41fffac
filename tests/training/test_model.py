"""The reduced AlexNet: its shape at every input size, BatchNorm placement, raw-pixel input, float32 output."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import ModelConfig
from training.model import build_model
from training.model_shape import ImageSizeError, conv_channels, first_conv_geometry
from training.tfenv import keras

MEAN, STD = [125.0, 114.0, 104.0], [74.0, 73.5, 75.5]


@pytest.mark.parametrize("size, kernel, stride", [(32, 3, 1), (64, 5, 2), (128, 9, 4), (224, 15, 7)])
def test_first_conv_brings_every_size_to_about_32px_and_the_rest_stays_the_same(size, kernel, stride):
    assert first_conv_geometry(size) == (kernel, stride)
    model = build_model(ModelConfig(), size, 20, MEAN, STD)
    assert model.get_layer("pool3").output_shape[1:3] == (4, 4)
    assert model.output_shape == (None, 20)


def test_default_model_is_a_few_million_parameters_with_alexnet_layers():
    model = build_model(ModelConfig(), 64, 20, MEAN, STD)
    assert 2_000_000 < model.count_params() < 8_000_000
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 5 and kinds.count("MaxPooling2D") == 3 and kinds.count("Dense") == 3
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 6)] == conv_channels(48)
    # BatchNorm right after every conv and hidden dense (what export folds), ReLU after it.
    for name in ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2"]:
        layer = model.get_layer(name)
        assert not layer.use_bias and layer.kernel_regularizer is not None
        consumer = layer._outbound_nodes[0].outbound_layer
        assert isinstance(consumer, keras.layers.BatchNormalization)
        assert isinstance(consumer._outbound_nodes[0].outbound_layer, keras.layers.ReLU)
    assert model.get_layer("fc3").units == 20


def test_width_and_fc_size_are_configurable():
    small = build_model(ModelConfig(width=16, fc_units=64), 32, 5, MEAN, STD)
    assert small.get_layer("conv1").filters == 16 and small.get_layer("fc2").units == 64
    assert small.count_params() < 300_000


def test_model_takes_raw_pixels_and_normalizes_inside():
    model = build_model(ModelConfig(width=16, fc_units=32), 32, 4, MEAN, STD)
    norm = model.get_layer("normalize")
    x = np.full((1, 32, 32, 3), 255.0, np.float32)
    np.testing.assert_allclose(norm(x).numpy()[0, 0, 0], (255 - np.array(MEAN)) / np.array(STD), rtol=1e-5)
    probs = model.predict(np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_softmax_and_normalization_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(ModelConfig(width=16, fc_units=32), 32, 4, MEAN, STD)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("normalize").compute_dtype == "float32"
    assert model.get_layer("probs").compute_dtype == "float32"
    assert model.output.dtype == "float32"


def test_too_small_image_size_is_a_clear_error():
    with pytest.raises(ImageSizeError, match="too small"):
        first_conv_geometry(8)
