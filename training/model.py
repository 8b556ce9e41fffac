"""The classifier: a reduced AlexNet that takes raw RGB pixels (0..255) and returns probabilities.

Shape (AlexNet's, scaled down for 20 classes and small photos)::

    raw pixels -> Normalization(dataset mean/std)
    conv1 (large kernel, strided) -> pool1 -> conv2 (5x5) -> pool2 -> conv3, conv4, conv5 (3x3) -> pool3
    -> fc1 -> fc2 -> fc3 (N classes) -> softmax (float32)

Every conv and hidden dense layer has no bias and is followed by BatchNorm, then ReLU: export
folds each BatchNorm into the kernel before it. The first conv's stride is chosen from the input
side so that its output is about 32 px wide whatever the input (32, 64, 128, 224 px all work),
which keeps the rest of the network, and the parameter count, the same. The logits get a bias
instead of a BatchNorm: the hidden BatchNorms already keep them tame (the seed's exploding logits).

Only standard Keras layers, so ``keras.models.load_model`` needs no custom objects and export can
wrap every Conv2D/Dense with ``tfmot.sparsity.keras.prune_low_magnitude``.

    from training.model import build_model
    model = build_model(ModelConfig(), image_size=64, num_classes=20, mean=ds.mean, std=ds.std)
    probs = model(raw_pixels_float32)        # [B, 64, 64, 3] in 0..255 -> [B, 20]
"""

from __future__ import annotations

from training.config import ModelConfig
from training.model_shape import BN_MOMENTUM, conv_channels, first_conv_geometry
from training.tfenv import keras


def build_model(
    cfg: ModelConfig, image_size: int, num_classes: int, mean, std, name: str = "alexnet_reduced"
) -> keras.Model:
    """The model under the current global dtype policy (float32, or mixed_float16 on a GPU)."""
    kernel, stride = first_conv_geometry(image_size)
    channels = conv_channels(cfg.width)
    reg = keras.regularizers.L2(cfg.weight_decay) if cfg.weight_decay > 0 else None

    def conv_bn_relu(x, i, filters, size, strides=1):
        x = keras.layers.Conv2D(
            filters,
            size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            kernel_regularizer=reg,
            name=f"conv{i}",
        )(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{i}_bn")(x)
        return keras.layers.ReLU(name=f"conv{i}_relu")(x)

    def dense_bn_relu(x, i, units):
        x = keras.layers.Dense(
            units,
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            kernel_regularizer=reg,
            name=f"fc{i}",
        )(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"fc{i}_bn")(x)
        x = keras.layers.ReLU(name=f"fc{i}_relu")(x)
        return keras.layers.Dropout(cfg.dropout, name=f"fc{i}_dropout")(x)

    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="pixels")
    # float32 even under mixed precision: raw 0..255 values minus the mean lose digits in float16.
    std = [float(s) for s in std]
    x = keras.layers.Normalization(
        mean=[float(m) for m in mean], variance=[s * s for s in std], dtype="float32", name="normalize"
    )(inputs)
    x = conv_bn_relu(x, 1, channels[0], kernel, stride)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = conv_bn_relu(x, 2, channels[1], 5)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    x = conv_bn_relu(x, 3, channels[2], 3)
    x = conv_bn_relu(x, 4, channels[3], 3)
    x = conv_bn_relu(x, 5, channels[4], 3)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = dense_bn_relu(x, 1, cfg.fc_units)
    x = dense_bn_relu(x, 2, cfg.fc_units)
    x = keras.layers.Dense(
        num_classes, kernel_initializer=keras.initializers.GlorotUniform(), kernel_regularizer=reg, name="fc3"
    )(x)
    # Softmax in float32: float16 probabilities of 20 classes round visibly and can underflow.
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)
