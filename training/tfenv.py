"""Import TensorFlow the one way this project allows: Keras 2 (tf_keras), quiet logs.

tfmot refuses Keras 3 objects, so ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first
imported anywhere in the process. Every module that needs TF imports it from here:

    from training.tfenv import tf, keras
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
