"""Train the classifier on an officenet dataset and write the run directory that export reads.

    python -m training.train --data data/office20 --out artifacts/run            # defaults
    python -m training.train --data data/office20 --out artifacts/run --resume   # after a crash
    python -m training.train --help                                              # every flag, grouped

The story of a run:
1. Resolve the config (defaults <- saved config on --resume <- flags) and the input size from
   the data (64 px for Tiny ImageNet-sized photos, else 128), and save it as config.json.
2. Pick the hardware setup: on GPUs, MirroredStrategy over all of them (the global batch is
   ``--batch-size`` times the number of replicas), mixed_float16 and XLA; on the CPU, float32
   without XLA (float16 is emulated there and ~3x slower). Several machines: run the same command
   on each with TF_CONFIG set and swap MirroredStrategy for MultiWorkerMirroredStrategy
   (``tf.distribute.MultiWorkerMirroredStrategy()``); each worker then reads the whole dataset
   and tf.data auto-shards it by data.
3. Train epoch by epoch. After each one: history.csv, the best-val weights when val accuracy
   improves (checkpoints/best), then checkpoints/ckpt-N with model, optimizer state (moments,
   iteration count, loss scale) and the epoch counter. A run killed at any moment (kill -9)
   resumes from the last complete checkpoint and loses at most the epoch in progress; because
   data order and augmentation are seeded by (seed, epoch), the resumed epochs see the same batches.
4. Restore the best-val weights, rebuild the model in float32 and save model.keras (raw 0..255
   RGB in, float32 probabilities out, normalization inside), then evaluate train/val/test into
   metrics.json and draw curves.png, confusion.png (test) and filters.png.

Non-office photos (issue 8): with ``--other-class on`` (or ``auto`` and a dataset that has them)
the model gets one more output, "other", trained on the train-side non-office classes mixed into
every epoch (``--other-fraction``); office accuracy in metrics.json is over the office outputs, as
users see it, and export cuts "other" off the shipped model.

Determinism: with ``--deterministic`` (default) a seed gives the same run on the same machine
and TF build. Not covered: a different CPU/GPU model or thread count (different kernels and
reduction orders), and multi-GPU all-reduce order.

Expected errors (missing or malformed dataset, a class with no train images, an image size too
small, out of memory) print one ``error:`` line and return 2.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.preprocess import PreprocessSpec
from training.config import TrainConfig, build_parser, config_from_args
from training.data.dataset import Dataset, DatasetError, load_dataset

# Tiny ImageNet photos are 64 px; anything with a median side up to this trains at 64 px.
SMALL_DATA_MAX_SIDE = 80
# What TF's image decoders say about a broken file (inside tf.data's longer error message).
BROKEN_IMAGE = re.compile(r"Invalid JPEG data[^\n\]]*|Unknown image file format[^\n\]]*|"
                          r"Input is not a valid[^\n\]]*|[^:\n]*[Cc]orrupt[^\n\]]*")
HISTORY_FIELDS = ["epoch", "lr", "loss", "accuracy", "top3", "val_loss", "val_accuracy", "val_top3", "seconds"]


class UsageError(Exception):
    """A problem with the command line or the run directory (not with TF)."""


def resolve_image_size(cfg: TrainConfig, ds: Dataset) -> int:
    if cfg.data.image_size:
        return cfg.data.image_size
    sizes = ds.meta.get("image_size", {})
    side = min(sizes.get("median_width", 0), sizes.get("median_height", 0))
    return 64 if 0 < side <= SMALL_DATA_MAX_SIDE else 128


def resolve_for_dataset(cfg: TrainConfig, ds: Dataset) -> None:
    """Fill in what the config leaves to the data: the input size and whether "other" is trained
    (config.json records the resolved values). ValueError for an impossible --other-class."""
    from training.pipeline import resolve_other_class
    cfg.data.image_size = resolve_image_size(cfg, ds)
    cfg.data.other_class = resolve_other_class(cfg.data, ds)


def resolve_config(argv: list[str] | None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    out = Path(args.out).resolve()
    base = None
    if getattr(args, "resume", False):
        saved = out / "config.json"
        if not saved.is_file():
            raise UsageError(f"--resume: {saved} not found (nothing to resume; drop --resume to start a run)")
        base = TrainConfig.from_dict(json.loads(saved.read_text()))
    cfg = config_from_args(args, base)
    cfg.data.root = str(Path(args.data).resolve())
    cfg.runtime.out = str(out)
    cfg.runtime.resume = getattr(args, "resume", False)
    # Per invocation, not part of the run: a resumed run must not inherit the last one's limit.
    cfg.runtime.stop_after = vars(args).get("runtime.stop_after", 0)
    if not cfg.runtime.resume and (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        raise UsageError(f"{out} already holds a run's checkpoints: pass --resume to continue it, "
                         f"or choose another --out")
    if cfg.schedule.epochs < 1 or cfg.optim.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be at least 1")
    return cfg


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = resolve_config(argv)
    except SystemExit as e:  # argparse's --help and usage errors, as a return code for in-process callers
        return int(e.code or 0)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        ds = load_dataset(cfg.data.root)
        resolve_for_dataset(cfg, ds)
        if not ds.items("val"):
            raise DatasetError(f"{cfg.data.root} has no val images: early stopping and best-model "
                               f"selection need some (rebuild the dataset with a val fraction > 0)")
        from training.model import first_conv_geometry
        first_conv_geometry(cfg.data.image_size)
    except (UsageError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from training.tfenv import tf
    try:
        train(cfg, ds)
    except (tf.errors.ResourceExhaustedError, MemoryError) as e:
        print(f"error: out of memory ({type(e).__name__}). Lower --batch-size (now "
              f"{cfg.optim.batch_size}) or --image-size (now {cfg.data.image_size}), or pass --no-cache; "
              f"then continue with --resume.", file=sys.stderr)
        return 2
    except (DatasetError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except tf.errors.InvalidArgumentError as e:
        # tf.data names the failing op, not the file: say what failed and where to look.
        found = BROKEN_IMAGE.search(str(e))
        if found is None:
            raise
        reason = found.group(0).strip()
        print(f"error: an image of {cfg.data.root} can't be decoded ({reason}); re-import the dataset "
              f"(the importer checks every file) or remove the broken file", file=sys.stderr)
        return 2
    return 0


def _hardware(cfg: TrainConfig):
    """(strategy, mixed precision on?, jit on?) from the visible devices and the auto/on/off flags."""
    from training.tfenv import tf
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    on = lambda flag: bool(gpus) if flag == "auto" else flag == "on"  # noqa: E731
    return strategy, on(cfg.runtime.mixed_precision), on(cfg.runtime.jit_compile)


def _read_history(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return [r for r in rows if r["epoch"] <= upto]


def _write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buf.getvalue().encode())


def _tensorboard(keras, log_dir: Path) -> list:
    """The TensorBoard callback, or none (with a note) where the tensorboard package is absent."""
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        print("note: tensorboard is not installed; no TensorBoard logs (pip install tensorboard==2.21.0)")
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="epoch", profile_batch=0)]


def _progress_bar(keras, epochs: int, steps: int):
    """Keras' progress bar, headed with this run's epoch count (fit is called once per epoch)."""
    class ProgressBar(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"epoch {epoch + 1}/{epochs}", flush=True)
            self.bar = keras.utils.Progbar(steps, verbose=1 if sys.stdout.isatty() else 2,
                                           stateful_metrics=["loss", "accuracy", "top3"])

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 < steps:  # the last step is drawn by on_epoch_end, with the val figures
                self.bar.update(batch + 1, list((logs or {}).items()))

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(steps, list((logs or {}).items()), finalize=True)

    return ProgressBar()


def _save_keras_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.part.keras")
    model.save(tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, ds: Dataset) -> dict:
    """The whole run (steps 1-4 of the module docstring); returns metrics.json's content
    ({} when --stop-after ended it early)."""
    from training.tfenv import keras, tf

    started = time.time()
    out = Path(cfg.runtime.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", cfg.to_dict())

    keras.utils.set_random_seed(cfg.runtime.seed)
    if cfg.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy, mixed, jit = _hardware(cfg)
    # Dropout draws from a tf.random.Generator whose state is a variable of the model, so the
    # checkpoint holds it and a resumed run draws the masks the uninterrupted run would have.
    keras.backend.experimental.enable_tf_random_generator()
    try:
        return _fit_and_save(cfg, ds, strategy, mixed, jit, started)
    finally:
        keras.backend.experimental.disable_tf_random_generator()


def _fit_and_save(cfg: TrainConfig, ds: Dataset, strategy, mixed: bool, jit: bool, started: float) -> dict:
    from training.model import build_model
    from training.pipeline import Pipeline
    from training.schedule import WarmupSchedule, make_optimizer
    from training.tfenv import keras, tf

    out = Path(cfg.runtime.out)
    size, num_classes = cfg.data.image_size, len(ds.classes)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.optim.batch_size * replicas

    pipe = Pipeline(ds, cfg.data, size, num_classes, global_batch, seed=cfg.runtime.seed)
    steps_per_epoch = math.ceil(pipe.epoch_size() / global_batch)
    print(f"data: {ds.id}, {num_classes} classes, train/val/test = {pipe.count('train')}/"
          f"{pipe.count('val')}/{pipe.count('test')} images at {size} px "
          f"({'cached in memory' if pipe.cached else 'decoded every epoch'})")
    if pipe.other_class:
        print(f"other class: output {num_classes} ('other', hidden from users) trained on "
              f"{pipe.others_per_epoch()} of {pipe.count('others_train')} non-office train photos per epoch "
              f"({cfg.data.other_fraction:.0%} of each epoch)")
    print(f"hardware: {replicas} replica(s) ({'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}), "
          f"global batch {global_batch}, mixed precision {'on' if mixed else 'off'}, XLA {'on' if jit else 'off'}")

    with strategy.scope():
        model = build_model(cfg.model, size, pipe.outputs, ds.mean, ds.std)
        schedule = WarmupSchedule(cfg.optim.lr, cfg.schedule, steps_per_epoch)
        model.compile(
            optimizer=make_optimizer(cfg.optim, schedule),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.optim.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                     keras.metrics.TopKCategoricalAccuracy(3, name="top3")],
            jit_compile=jit)
        # Create the optimizer's slots now so that a restore fills them instead of deferring.
        optimizer = model.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        inner.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        best_val = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val_accuracy")
        best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
    params = model.count_params()
    print(f"model: {model.name}, {params:,} parameters, conv1 {model.get_layer('conv1').kernel_size} "
          f"stride {model.get_layer('conv1').strides}")

    ckpt_dir = out / "checkpoints"
    # Keras leaves the Dropout layers' generators out of the model's checkpoint: add them.
    dropout_rngs = {layer.name: layer._random_generator for layer in model.layers
                    if isinstance(layer, keras.layers.Dropout)}
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var, dropout_rngs=dropout_rngs),
        ckpt_dir, max_to_keep=2)
    best_manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, best_val=best_val, best_epoch=best_epoch), ckpt_dir / "best",
        max_to_keep=1)
    if cfg.runtime.resume and best_manager.latest_checkpoint:
        # Only its bookkeeping: the weights come from the last checkpoint just below.
        tf.train.Checkpoint(best_val=best_val, best_epoch=best_epoch).read(
            best_manager.latest_checkpoint).expect_partial()
    if cfg.runtime.resume and manager.latest_checkpoint:
        try:
            manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
            raise UsageError(f"{manager.latest_checkpoint} does not fit this model ({str(e).splitlines()[0]}); "
                             f"resume with the run's own model flags") from e
        print(f"resumed from {manager.latest_checkpoint}: epoch {int(epoch_var.numpy())}, "
              f"optimizer step {int(optimizer.iterations.numpy())}")
    history_path = out / "history.csv"
    rows = _read_history(history_path, int(epoch_var.numpy())) if cfg.runtime.resume else []

    val_data = pipe.evaluation("val")
    callbacks = _tensorboard(keras, out / "logs")
    if cfg.runtime.progress:
        callbacks.append(_progress_bar(keras, cfg.schedule.epochs, steps_per_epoch))
    first = int(epoch_var.numpy())
    for epoch in range(first, cfg.schedule.epochs):
        if cfg.runtime.stop_after and epoch - first >= cfg.runtime.stop_after:
            print(f"stopped after {cfg.runtime.stop_after} epoch(s) as asked; continue with --resume")
            return {}
        if cfg.schedule.patience and epoch - int(best_epoch.numpy()) >= cfg.schedule.patience:
            print(f"early stop: no better val accuracy for {cfg.schedule.patience} epochs "
                  f"(best {best_val.numpy():.4f} at epoch {int(best_epoch.numpy())})")
            break
        t0 = time.time()
        logs = model.fit(pipe.train(epoch), validation_data=val_data, initial_epoch=epoch, epochs=epoch + 1,
                         verbose=0, callbacks=callbacks).history
        row = {"epoch": epoch + 1, "lr": float(schedule(optimizer.iterations)),
               **{k: float(logs[k][-1]) for k in HISTORY_FIELDS[2:-1]}, "seconds": round(time.time() - t0, 2)}
        rows.append(row)
        _write_history(history_path, rows)
        if row["val_accuracy"] > best_val.numpy():
            best_val.assign(row["val_accuracy"])
            best_epoch.assign(epoch + 1)
            best_manager.save(checkpoint_number=epoch + 1)
        epoch_var.assign(epoch + 1)
        manager.save(checkpoint_number=epoch + 1)

    best_manager.checkpoint.read(best_manager.latest_checkpoint).expect_partial()
    print(f"best val accuracy {best_val.numpy():.4f} at epoch {int(best_epoch.numpy())}; saving float32 model")
    final = _float32_copy(model, cfg, size, pipe.outputs, ds)
    _save_keras_atomic(final, out / "model.keras")
    write_json_atomic(out / "preprocess.json", PreprocessSpec(size, cfg.data.crop_fraction).to_dict())
    metrics = evaluate_run(final, pipe, ds, cfg, rows, params, int(best_epoch.numpy()), time.time() - started)
    write_json_atomic(out / "metrics.json", metrics)
    print(f"val top-1 {metrics['val']['top1']:.4f}  test top-1 {metrics['test']['top1']:.4f}  "
          f"top-3 {metrics['test']['top3']:.4f}  ({metrics['wall_time_s']:.0f} s) -> {out}")
    return metrics


def _float32_copy(model, cfg: TrainConfig, size: int, outputs: int, ds: Dataset):
    """The trained weights in a fresh float32 model with plain (stateless-at-rest) Dropout layers:
    what export loads. Copied layer by layer, because the training model's Dropout layers also
    hold their random generator's state."""
    from training.model import build_model
    from training.tfenv import keras

    keras.mixed_precision.set_global_policy("float32")
    keras.backend.experimental.disable_tf_random_generator()
    final = build_model(cfg.model, size, outputs, ds.mean, ds.std)
    for layer in final.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return final


def evaluate_run(model, pipe, ds: Dataset, cfg: TrainConfig, rows: list[dict], params: int,
                 best_epoch: int, wall_time: float) -> dict:
    """Metrics of the saved (float32, best-val) model on every split, plus the run's plots."""
    import numpy as np

    from training.report import confusion_matrix, plot_confusion, plot_curves, plot_filters, split_metrics

    out = Path(cfg.runtime.out)
    labels = [c.label for c in ds.classes]
    wnids = [c.wnid for c in ds.classes]
    splits = ("train", "val", "test") if cfg.runtime.train_eval else ("val", "test")
    metrics = {"dataset": {"id": ds.id, "sha256": ds.sha256}, "classes": labels, "image_size": cfg.data.image_size,
               "params": int(params), "epochs": len(rows), "best_epoch": best_epoch,
               "wall_time_s": round(wall_time, 1)}
    test_cm = None
    called_other = {}
    for split in splits + (("others_val", "others_test") if pipe.other_class else ()):
        y = np.asarray(pipe.labels(split), dtype=np.int64)
        probs = model.predict(pipe.evaluation(split), verbose=0) if len(y) else np.zeros((0, pipe.outputs))
        if pipe.other_class:
            called_other[split] = round(float((probs.argmax(1) == len(labels)).mean()), 4) if len(y) else None
            if split.startswith("others_"):
                continue
            # What users see: the best office label, whatever "other" scored (export decides abstaining).
            probs = probs[:, :len(labels)]
        metrics[split] = split_metrics(probs, y, labels, wnids)
        if split == "test":
            test_cm = confusion_matrix(probs, y, len(labels))
    if pipe.other_class:
        metrics["other_class"] = {"index": len(labels), "fraction": cfg.data.other_fraction,
                                  "others_train_photos": pipe.count("others_train"),
                                  "share_called_other": called_other}
    if rows:
        plot_curves(rows, out / "curves.png")
    plot_confusion(test_cm, labels, out / "confusion.png",
                   title=f"test split, top-1 {metrics['test']['top1']:.3f}")
    plot_filters(model.get_layer("conv1").get_weights()[0], out / "filters.png")
    return metrics


if __name__ == "__main__":
    sys.exit(main())
