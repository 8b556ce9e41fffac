"""The tiny training recipe the test fixtures and the trainer's tests share.

    from recipes import TINY_TRAIN_FLAGS
    training.train.main(["--data", DATA, "--out", RUN, *TINY_TRAIN_FLAGS])

A model that clearly beats chance after 8 epochs of 32 px photos on 2 CPU cores (~40 s); the
kill -9 resume test repeats this exact run, so it lives in one place. From scratch: the
distillation tests bring their own small teacher (``make_teacher``).
"""

from pathlib import Path

TINY_TRAIN_FLAGS = [
    "--image-size",
    "32",
    "--epochs",
    "8",
    "--seed",
    "0",
    "--batch-size",
    "32",
    "--width",
    "32",
    "--fc-units",
    "256",
    "--warmup-epochs",
    "1",
    "--dropout",
    "0.2",
    "--weight-decay",
    "1e-4",
    "--label-smoothing",
    "0",
    "--brightness",
    "0",
    "--contrast",
    "0",
    "--teacher",
    "none",
    "--no-progress",
]

# Export's gates loosened for a one-epoch model: the tests that use it check a path (a strategy, a
# cluster), not the model's quality.
SMOKE_EXPORT_FLAGS = ["--prune-epochs", "1", "--batch-size", "32", "--calibration-images", "40",
                      "--min-agreement", "0", "--max-accuracy-drop", "100"]  # fmt: skip


def make_teacher(path: Path, seed: int) -> Path:
    """A small real teacher saved at ``path``: a fixed random conv net, RGB 0..255 at 32 px ->
    32 pooled features (the fitted head turns them into class probabilities)."""
    from training.tfenv import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    x = keras.layers.Conv2D(16, 3, 2, activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, 2, activation="relu")(x)
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)).save(path)
    return path
