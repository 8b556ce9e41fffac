"""Step 1: magnitude pruning with tfmot, fine-tuned on the train split, then stripped.

    from export.prune import prune_model, kernel_sparsity
    pruned, layers = prune_model(model, x_train, y_train, PruneConfig(target_sparsity=0.8))
    layers   # [{"layer": "conv2d", "kind": "Conv2D", "weights": 432, "zeros": 346, "sparsity": 0.8009}, ...]

Only Conv2D and Dense kernels are wrapped (a clone_function, because wrapping the whole model
fails on layers tfmot can't prune, e.g. Normalization). Sparsity ramps with PolynomialDecay from 0
to the target over most of the fine-tuning, and ``strip_pruning`` removes the wrappers so the
converter sees plain layers whose kernels simply contain zeros.
"""
from __future__ import annotations

import numpy as np

from export.config import PruneConfig

PRUNABLE = ("Conv2D", "Dense")


def prune_model(model, x_train: np.ndarray, y_train: np.ndarray, cfg: PruneConfig):
    """Return (stripped pruned model, per-layer sparsity list)."""
    import tensorflow_model_optimization as tfmot

    from training.tfenv import keras, tf

    if cfg.target_sparsity == 0:
        return model, kernel_sparsity(model)
    steps_per_epoch = max(1, int(np.ceil(len(x_train) / cfg.batch_size)))
    total = steps_per_epoch * cfg.epochs
    # Prune at ~20 points of the ramp; end_step is a multiple of the frequency so the final
    # pruning event fires exactly at the target, and the last quarter of steps heals the damage.
    frequency = max(1, total // 20)
    end_step = max(frequency, (int(total * 0.75) // frequency) * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=cfg.target_sparsity,
        begin_step=0, end_step=end_step, frequency=frequency)

    def wrap(layer):
        if type(layer).__name__ in PRUNABLE:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())

    pruned = keras.models.clone_model(model, clone_function=wrap)
    # clone_model builds fresh weights: copy the trained ones layer by layer (wrappers hold the
    # same kernel/bias variables plus their mask and threshold, which keep their initial values).
    for src, dst in zip(model.layers, pruned.layers):
        target = dst.layer if hasattr(dst, "layer") else dst
        target.set_weights(src.get_weights())
    pruned.compile(keras.optimizers.Adam(cfg.lr), "sparse_categorical_crossentropy", ["accuracy"])
    data = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shuffle(len(x_train), seed=0, reshuffle_each_iteration=True)
            .map(lambda x, y: (tf.cast(x, tf.float32), y))
            .batch(cfg.batch_size).prefetch(2))
    pruned.fit(data, epochs=cfg.epochs, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return stripped, kernel_sparsity(stripped)


def kernel_sparsity(model) -> list[dict]:
    """Fraction of exactly-zero kernel weights in every Conv2D/Dense layer."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ in PRUNABLE:
            kernel = layer.kernel.numpy()
            zeros = int((kernel == 0).sum())
            rows.append({"layer": layer.name, "kind": type(layer).__name__, "weights": int(kernel.size),
                         "zeros": zeros, "sparsity": round(zeros / kernel.size, 4)})
    return rows


def overall_sparsity(rows: list[dict]) -> float:
    weights = sum(r["weights"] for r in rows)
    return sum(r["zeros"] for r in rows) / weights if weights else 0.0
