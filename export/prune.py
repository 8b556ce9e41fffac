"""Step 1: magnitude pruning with tfmot, fine-tuned on the train split, then stripped.

    from export.prune import prune_model, kernel_sparsity
    pipe = training.pipeline.Pipeline(dataset, run_cfg.data, size, num_classes, batch_size=64)
    pruned, layers = prune_model(model, pipe.train, pipe.epoch_size(), PruneConfig(target_sparsity=0.8))
    # prints, after each fine-tuning epoch:
    # pruning fine-tune epoch 3/8: loss 1.9021, accuracy 0.4410, sparsity 0.47, 112 s/epoch, ETA 9m20s
    layers   # [{"layer": "conv1", "kind": "Conv2D", "weights": 3600, "zeros": 2880, "sparsity": 0.8}, ...]

Fine-tuning reads the trainer's own tf.data pipeline (``batches(epoch)``: that epoch's shuffled,
augmented (float32 pixels, target) batches: the one-hot label, or for a distilled run the same
mixed teacher target it trained on), so the pruned network sees the same inputs and targets it was
trained on. It minimizes plain cross-entropy against them (the trainer adds its label smoothing;
the fine-tune starts from a converged model at a low LR and only heals pruning's damage).

Only Conv2D and Dense kernels are wrapped (a clone_function, because wrapping the whole model
fails on layers tfmot can't prune, e.g. Normalization). Sparsity ramps with PolynomialDecay from 0
to the target over most of the fine-tuning, and ``strip_pruning`` removes the wrappers so the
converter sees plain layers whose kernels simply contain zeros.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from export.config import PruneConfig

PRUNABLE = ("Conv2D", "Dense")


def prune_model(model, batches, train_images: int, cfg: PruneConfig, log: Callable[[str], None] = print):
    """Return (stripped pruned model, per-layer sparsity list); ``model`` itself is left intact.
    ``log`` gets one progress line per fine-tuning epoch (an export of the default run fine-tunes
    for a quarter of an hour on 2 cores: it must not look hung)."""
    # tfenv first: it selects Keras 2 (tf_keras), which must happen before TensorFlow's first import.
    from training.tfenv import keras  # isort: skip

    import tensorflow_model_optimization as tfmot

    if cfg.target_sparsity == 0:
        return model, kernel_sparsity(model)
    steps_per_epoch = max(1, int(np.ceil(train_images / cfg.batch_size)))
    total = steps_per_epoch * cfg.epochs
    # Prune at ~20 points of the ramp; end_step is a multiple of the frequency so the final
    # pruning event fires exactly at the target, and the last quarter of steps heals the damage.
    frequency = max(1, total // 20)
    end_step = max(frequency, (int(total * 0.75) // frequency) * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=cfg.target_sparsity, begin_step=0, end_step=end_step, frequency=frequency
    )

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
    pruned.compile(keras.optimizers.Adam(cfg.lr), "categorical_crossentropy", ["accuracy"])
    # One fit per epoch because the trainer's pipeline seeds its shuffling and augmentation by
    # epoch; the pruning step counter lives in the wrappers, so it carries across the calls.
    started = time.monotonic()
    for epoch in range(cfg.epochs):
        logs = pruned.fit(
            batches(epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        ).history
        per_epoch = (time.monotonic() - started) / (epoch + 1)
        log(
            f"pruning fine-tune epoch {epoch + 1}/{cfg.epochs}: loss {logs['loss'][-1]:.4f}, "
            f"accuracy {logs['accuracy'][-1]:.4f}, sparsity {_mask_sparsity(pruned):.2f}, "
            f"{per_epoch:.0f} s/epoch, ETA {_duration(per_epoch * (cfg.epochs - epoch - 1))}"
        )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return stripped, kernel_sparsity(stripped)


def _mask_sparsity(pruned) -> float:
    """Share of the wrapped kernels' weights the pruning masks zero now."""
    masks = [mask.numpy() for layer in pruned.layers for _, mask, _ in getattr(layer, "pruning_vars", [])]
    return 1 - sum(float(m.sum()) for m in masks) / sum(m.size for m in masks)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def kernel_sparsity(model) -> list[dict]:
    """Fraction of exactly-zero kernel weights in every Conv2D/Dense layer."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ in PRUNABLE:
            kernel = layer.kernel.numpy()
            zeros = int((kernel == 0).sum())
            rows.append(
                {
                    "layer": layer.name,
                    "kind": type(layer).__name__,
                    "weights": int(kernel.size),
                    "zeros": zeros,
                    "sparsity": round(zeros / kernel.size, 4),
                }
            )
    return rows


def overall_sparsity(rows: list[dict]) -> float:
    weights = sum(r["weights"] for r in rows)
    return sum(r["zeros"] for r in rows) / weights if weights else 0.0
