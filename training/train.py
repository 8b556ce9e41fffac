"""Train the classifier on an officenet dataset and write the run directory that export reads.

    python -m training.train --data data/office20 --out artifacts/run            # defaults
    python -m training.train --data data/office20 --out artifacts/run --resume   # after a crash
    python -m training.train --help                                              # every flag, grouped

The story of a run:
1. Resolve the config (defaults <- saved config on --resume <- flags), the input size from the
   data (64 px for Tiny ImageNet-sized photos, else 128) and the teacher (``--teacher auto``:
   EfficientNet-Lite0 when installed; the first run on a dataset computes its soft targets, a
   few minutes on 2 cores, then every run reads them from the cache: training.distill), and save
   it as config.json.
2. Pick the hardware (training/hardware.py, before anything touches a device): on GPUs,
   MirroredStrategy over all of them (the global batch is ``--batch-size`` times the number of
   replicas), mixed_float16 and XLA; on the CPU, float32 without XLA (float16 is emulated there,
   and XLA's CPU kernels were slower). Several machines: the same command on each, with TF_CONFIG set, trains with
   MultiWorkerMirroredStrategy; only the chief writes the run directory.
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

import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bundle.preprocess import PreprocessSpec
from training import run as run_files
from training.config import TrainConfig, build_parser, config_from_args, invocation_from_args
from training.data.dataset import Dataset, DatasetError, load_dataset
from training.hardware import Hardware
from training.hardware import setup as setup_hardware
from training.run import RunMetrics

if TYPE_CHECKING:
    from training.pipeline import Pipeline
    from training.schedule import WarmupSchedule
    from training.tfenv import keras, tf

# Tiny ImageNet photos are 64 px; anything with a median side up to this trains at 64 px.
SMALL_DATA_MAX_SIDE = 80
# What TF's image decoders say about a broken file (inside tf.data's longer error message).
BROKEN_IMAGE = re.compile(
    r"Invalid JPEG data[^\n\]]*|Unknown image file format[^\n\]]*|"
    r"Input is not a valid[^\n\]]*|[^:\n]*[Cc]orrupt[^\n\]]*"
)


class UsageError(Exception):
    """A problem with the command line or the run directory (not with TF)."""


def resolve_image_size(cfg: TrainConfig, ds: Dataset) -> int:
    if cfg.data.image_size:
        return cfg.data.image_size
    sizes = ds.meta.get("image_size", {})
    side = min(sizes.get("median_width", 0), sizes.get("median_height", 0))
    return 64 if 0 < side <= SMALL_DATA_MAX_SIDE else 128


def resolve_for_dataset(cfg: TrainConfig, ds: Dataset) -> None:
    """Fill in what the config leaves to the data and the machine: the input size, whether "other"
    is trained, and the teacher (config.json records the resolved values). DatasetError or
    ValueError for data that can't train (no val photos, too small) or a setting that can't work
    (--other-class on without non-office photos, a teacher that can't be had)."""
    from training.distill import resolve_teacher
    from training.model_shape import first_conv_geometry
    from training.pipeline import resolve_other_class

    cfg.data.image_size = resolve_image_size(cfg, ds)
    cfg.data.other_class = resolve_other_class(cfg.data, ds)
    if not ds.items("val"):
        raise DatasetError(
            f"{ds.root} has no val images: early stopping and best-model "
            f"selection need some (rebuild the dataset with a val fraction > 0)"
        )
    first_conv_geometry(cfg.data.image_size)
    resolve_teacher(cfg, ds)  # last: the first run on a dataset computes the teacher's targets


def resolve_config(argv: list[str] | None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    asked = invocation_from_args(args)
    out = Path(asked.out).resolve()
    base = None
    if asked.resume:
        if not (out / run_files.CONFIG_JSON).is_file():
            raise UsageError(
                f"--resume: {out / run_files.CONFIG_JSON} not found (nothing to resume; drop --resume to start a run)"
            )
        try:
            base = run_files.read_config(out)
        except run_files.RunError as e:
            raise UsageError(f"--resume: {e}") from None
    cfg = config_from_args(args, base)
    cfg.data.root = str(Path(asked.data).resolve())
    cfg.runtime.out = str(out)
    cfg.runtime.resume = asked.resume
    # Per invocation, not part of the run: a resumed run must not inherit the last one's limit.
    cfg.runtime.stop_after = vars(args).get("runtime.stop_after", 0)
    checkpoints = out / run_files.CHECKPOINTS
    if not cfg.runtime.resume and checkpoints.is_dir() and any(checkpoints.iterdir()):
        raise UsageError(
            f"{out} already holds a run's checkpoints: pass --resume to continue it, or choose another --out"
        )
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
        # Before anything else touches a TF device: a CPU split or the multi-worker strategy
        # can only be set up first.
        hw = setup_hardware(cfg.runtime)
        resolve_for_dataset(cfg, ds)
    except (UsageError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from training.tfenv import tf

    try:
        train(cfg, ds, hw)
    except (tf.errors.ResourceExhaustedError, MemoryError) as e:
        print(
            f"error: out of memory ({type(e).__name__}). Lower --batch-size (now "
            f"{cfg.optim.batch_size}) or --image-size (now {cfg.data.image_size}), or pass --no-cache; "
            f"then continue with --resume.",
            file=sys.stderr,
        )
        return 2
    except (DatasetError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except tf.errors.UnavailableError as e:  # multi-worker: a peer died or is unreachable
        print(
            f"error: a worker of the cluster stopped ({str(e).splitlines()[0][-300:]}); start every "
            f"worker again with --resume",
            file=sys.stderr,
        )
        return 2
    except tf.errors.InvalidArgumentError as e:
        # tf.data names the failing op, not the file: say what failed and where to look.
        found = BROKEN_IMAGE.search(str(e))
        if found is None:
            raise
        reason = found.group(0).strip()
        print(
            f"error: an image of {cfg.data.root} can't be decoded ({reason}); re-import the dataset "
            f"(the importer checks every file) or remove the broken file",
            file=sys.stderr,
        )
        return 2
    return 0


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
            self.bar = keras.utils.Progbar(
                steps, verbose=1 if sys.stdout.isatty() else 2, stateful_metrics=["loss", "accuracy", "top3"]
            )

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 < steps:  # the last step is drawn by on_epoch_end, with the val figures
                self.bar.update(batch + 1, list((logs or {}).items()))

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(steps, list((logs or {}).items()), finalize=True)

    return ProgressBar()


def train(cfg: TrainConfig, ds: Dataset, hw: Hardware | None = None) -> RunMetrics | None:
    """The run (steps 2-4 of the module docstring; ``main`` resolved step 1); returns what it wrote to metrics.json
    (None when --stop-after ended it early, and on a worker that is not the chief).
    ``hw``: training.hardware.setup's choice, made here when not given."""
    from training.tfenv import keras, tf

    started = time.time()
    hw = hw or setup_hardware(cfg.runtime)  # also records the resolved choice in cfg.runtime
    out = Path(cfg.runtime.out)
    if hw.is_chief:  # the one writer of the run directory (TF's multi-worker rule)
        out.mkdir(parents=True, exist_ok=True)
        run_files.save_config(out, cfg)

    keras.utils.set_random_seed(cfg.runtime.seed)
    if cfg.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Dropout draws from a tf.random.Generator whose state is a variable of the model, so the
    # checkpoint holds it and a resumed run draws the masks the uninterrupted run would have.
    keras.backend.experimental.enable_tf_random_generator()
    try:
        return _fit_and_save(cfg, ds, hw, started)
    finally:
        keras.backend.experimental.disable_tf_random_generator()


def _fit_and_save(cfg: TrainConfig, ds: Dataset, hw: Hardware, started: float) -> RunMetrics | None:
    """Steps 3-4: the data and the model, where the checkpoints stand, the epochs, the best model saved."""
    setup = _build(cfg, ds, hw)
    progress = _checkpoints(cfg, setup.model, hw)
    resumed_epochs = int(progress.epoch.numpy())
    rows = _fit(cfg, hw, setup, progress)
    if rows is None:  # --stop-after
        return None
    # A run resumed across sessions took its earlier invocations' epochs too (history.csv's seconds).
    earlier = sum(row["seconds"] for row in rows[:resumed_epochs])
    return _save_best(cfg, ds, hw, setup, progress, rows, started - earlier)


@dataclass(frozen=True)
class _Setup:
    """What the epochs train: the input pipeline and the compiled model with its learning-rate schedule."""

    pipe: Pipeline
    model: keras.Model
    schedule: WarmupSchedule
    steps_per_epoch: int
    params: int


@dataclass(frozen=True)
class _Progress:
    """Where training stands, in variables the checkpoints hold, and the two managers that save them."""

    epoch: tf.Variable  # epochs finished
    best_val: tf.Variable  # the best val accuracy so far...
    best_epoch: tf.Variable  # ...and the epoch that reached it
    manager: tf.train.CheckpointManager  # checkpoints/ckpt-N: model, optimizer, epoch, dropout generators
    best_manager: tf.train.CheckpointManager  # checkpoints/best: the best-val weights and their bookkeeping
    last_best: str | None  # the best-val checkpoint found at the start (a resumed run's)

    def restore_best(self) -> int:
        """The best-val weights (and bookkeeping) back into the model; the epoch they come from."""
        # A worker that resumed and found no better epoch since holds no best checkpoint of its own.
        self.best_manager.checkpoint.read(self.best_manager.latest_checkpoint or self.last_best).expect_partial()
        return int(self.best_epoch.numpy())


def _build(cfg: TrainConfig, ds: Dataset, hw: Hardware) -> _Setup:
    """The pipeline (with the teacher's soft targets, if any) and the model compiled under the
    hardware's strategy, each announced in a line."""
    from training.distill import soft_targets_for
    from training.model import build_model
    from training.pipeline import Pipeline
    from training.schedule import WarmupSchedule, make_optimizer
    from training.tfenv import keras

    size, num_classes = cfg.data.image_size, len(ds.classes)
    keras.mixed_precision.set_global_policy("mixed_float16" if hw.mixed_precision else "float32")
    global_batch = cfg.optim.batch_size * hw.strategy.num_replicas_in_sync

    outputs = num_classes + (cfg.data.other_class == "on")
    soft = soft_targets_for(cfg, ds, outputs)
    pipe = Pipeline(ds, cfg.data, size, num_classes, global_batch, seed=cfg.runtime.seed, soft_targets=soft)
    steps_per_epoch = math.ceil(pipe.epoch_size() / global_batch)
    print(
        f"data: {ds.id}, {num_classes} classes, train/val/test = {pipe.count('train')}/"
        f"{pipe.count('val')}/{pipe.count('test')} images at {size} px "
        f"({'cached in memory' if pipe.cached else 'decoded every epoch'})"
    )
    if pipe.other_class:
        print(
            f"other class: output {num_classes} ('other', hidden from users) trained on "
            f"{pipe.others_per_epoch()} of {pipe.count('others_train')} non-office train photos per epoch "
            f"({cfg.data.other_fraction:.0%} of each epoch)"
        )
    if soft:
        print(
            f"teacher: {cfg.teacher.name} ({cfg.teacher.head} head, {cfg.teacher.hash[:12]}): targets = "
            f"{1 - cfg.teacher.weight:.2g} x label + {cfg.teacher.weight:.2g} x its probabilities at T = "
            f"{cfg.teacher.temperature:g}, per view ("
            + (f"{cfg.teacher.views} views of each train photo" if cfg.teacher.views > 2 else "mirrored or not")
            + ")"
            + (", without 'other' for office photos" if cfg.teacher.drop_other and pipe.other_class else "")
        )
    print(f"hardware: {hw.describe()}, global batch {global_batch}")

    with hw.strategy.scope():
        model = build_model(cfg.model, size, pipe.outputs, ds.mean, ds.std)
        schedule = WarmupSchedule(cfg.optim.lr, cfg.schedule, steps_per_epoch)
        model.compile(
            optimizer=make_optimizer(cfg.optim, schedule),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.optim.label_smoothing),
            metrics=[
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                keras.metrics.TopKCategoricalAccuracy(3, name="top3"),
            ],
            jit_compile=hw.jit_compile,
        )
        # Create the optimizer's slots now so that a restore fills them instead of deferring.
        inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        inner.build(model.trainable_variables)
    params = model.count_params()
    print(
        f"model: {model.name}, {params:,} parameters, conv1 {model.get_layer('conv1').kernel_size} "
        f"stride {model.get_layer('conv1').strides}"
    )
    return _Setup(pipe, model, schedule, steps_per_epoch, params)


def _checkpoints(cfg: TrainConfig, model, hw: Hardware) -> _Progress:
    """The epoch counter and best-val bookkeeping with their checkpoint managers; on --resume,
    restored from the run's last checkpoint (UsageError when it does not fit the model)."""
    from training.tfenv import keras, tf

    with hw.strategy.scope():
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        best_val = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val_accuracy")
        best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
    ckpt_dir = Path(cfg.runtime.out) / run_files.CHECKPOINTS
    # Every worker saves (TF's multi-worker rule), the chief into the run, others to scratch;
    # every worker resumes from the chief's checkpoints.
    write_dir = hw.write_dir(ckpt_dir)
    last, last_best = tf.train.latest_checkpoint(str(ckpt_dir)), tf.train.latest_checkpoint(str(ckpt_dir / "best"))
    # Keras leaves the Dropout layers' generators out of the model's checkpoint: add them.
    dropout_rngs = {
        layer.name: layer._random_generator for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    }
    optimizer = model.optimizer
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch, dropout_rngs=dropout_rngs),
        write_dir,
        max_to_keep=2,
    )
    best_manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, best_val=best_val, best_epoch=best_epoch), write_dir / "best", max_to_keep=1
    )
    if cfg.runtime.resume and last_best:
        # Only its bookkeeping: the weights come from the last checkpoint just below.
        tf.train.Checkpoint(best_val=best_val, best_epoch=best_epoch).read(last_best).expect_partial()
    if cfg.runtime.resume and last:
        try:
            manager.checkpoint.restore(last).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
            raise UsageError(
                f"{last} does not fit this model ({str(e).splitlines()[0]}); resume with the run's own model flags"
            ) from e
        print(f"resumed from {last}: epoch {int(epoch.numpy())}, optimizer step {int(optimizer.iterations.numpy())}")
    return _Progress(epoch, best_val, best_epoch, manager, best_manager, last_best)


def _fit(cfg: TrainConfig, hw: Hardware, setup: _Setup, progress: _Progress) -> list[dict] | None:
    """Step 3: the epochs from where the checkpoints stand, each one ending in history.csv and a
    checkpoint; history.csv's rows, or None when --stop-after ended the run early."""
    from training.tfenv import keras

    out = Path(cfg.runtime.out)
    model, schedule = setup.model, setup.schedule
    rows = run_files.read_history(out, int(progress.epoch.numpy())) if cfg.runtime.resume else []
    val_data = setup.pipe.evaluation("val")
    callbacks = _tensorboard(keras, out / run_files.LOGS) if hw.is_chief else []
    if cfg.runtime.progress:
        callbacks.append(_progress_bar(keras, cfg.schedule.epochs, setup.steps_per_epoch))
    first = int(progress.epoch.numpy())
    for epoch in range(first, cfg.schedule.epochs):
        if cfg.runtime.stop_after and epoch - first >= cfg.runtime.stop_after:
            print(f"stopped after {cfg.runtime.stop_after} epoch(s) as asked; continue with --resume")
            return None
        if cfg.schedule.patience and epoch - int(progress.best_epoch.numpy()) >= cfg.schedule.patience:
            print(
                f"early stop: no better val accuracy for {cfg.schedule.patience} epochs "
                f"(best {progress.best_val.numpy():.4f} at epoch {int(progress.best_epoch.numpy())})"
            )
            break
        t0 = time.time()
        logs = model.fit(
            setup.pipe.train(epoch),
            validation_data=val_data,
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,
            callbacks=callbacks,
        ).history
        row = {
            "epoch": epoch + 1,
            "lr": float(schedule(model.optimizer.iterations)),
            **{k: float(logs[k][-1]) for k in run_files.HISTORY_FIELDS[2:-1]},
            "seconds": round(time.time() - t0, 2),
        }
        rows.append(row)
        if hw.is_chief:
            run_files.write_history(out, rows)
        if row["val_accuracy"] > progress.best_val.numpy():
            progress.best_val.assign(row["val_accuracy"])
            progress.best_epoch.assign(epoch + 1)
            progress.best_manager.save(checkpoint_number=epoch + 1)
        progress.epoch.assign(epoch + 1)
        progress.manager.save(checkpoint_number=epoch + 1)
    return rows


def _save_best(
    cfg: TrainConfig, ds: Dataset, hw: Hardware, setup: _Setup, progress: _Progress, rows: list[dict], started: float
) -> RunMetrics | None:
    """Step 4: the kept epoch's weights (best val, or the last with ``--keep-epoch last``) saved as
    model.keras (float32) with preprocess.json, evaluated into metrics.json and the plots; the
    metrics, or None on a worker that is not the chief."""
    out = Path(cfg.runtime.out)
    best = f"best val accuracy {progress.best_val.numpy():.4f} at epoch {int(progress.best_epoch.numpy())}"
    if cfg.schedule.keep_epoch == "last":
        best_epoch = int(progress.epoch.numpy())
        print(f"{best}; saving the last epoch's ({best_epoch}) as a float32 model, as asked (--keep-epoch last)")
    else:
        best_epoch = progress.restore_best()
        print(f"{best}; saving float32 model")
    # Reading a distributed model's weights takes every worker (an all-reduce): all make the copy.
    final = _float32_copy(setup.model, cfg, cfg.data.image_size, setup.pipe.outputs, ds)
    if not hw.is_chief:
        print(f"{hw.task}: training done; the chief saves the model and metrics")
        return None
    run_files.save_model(final, out)
    run_files.save_preprocess(out, PreprocessSpec(cfg.data.image_size, cfg.data.crop_fraction))
    metrics = evaluate_run(final, setup.pipe, ds, cfg, rows, setup.params, best_epoch, time.time() - started)
    run_files.save_metrics(out, metrics)
    print(
        f"val top-1 {metrics.splits['val']['top1']:.4f}  test top-1 {metrics.splits['test']['top1']:.4f}  "
        f"top-3 {metrics.splits['test']['top3']:.4f}  ({metrics.wall_time_s:.0f} s) -> {out}"
    )
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


def evaluate_run(
    model, pipe, ds: Dataset, cfg: TrainConfig, rows: list[dict], params: int, best_epoch: int, wall_time: float
) -> RunMetrics:
    """Metrics of the saved (float32, best-val) model on every split, plus the run's plots."""
    import numpy as np

    from training.report import confusion_matrix, plot_confusion, plot_curves, plot_filters, split_metrics

    out = Path(cfg.runtime.out)
    labels = [c.label for c in ds.classes]
    wnids = [c.wnid for c in ds.classes]
    splits = ("train", "val", "test") if cfg.runtime.train_eval else ("val", "test")
    figures = {}
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
            probs = probs[:, : len(labels)]
        figures[split] = split_metrics(probs, y, labels, wnids)
        if split == "test":
            test_cm = confusion_matrix(probs, y, len(labels))
    metrics = RunMetrics(
        dataset={"id": ds.id, "sha256": ds.sha256},
        classes=labels,
        image_size=cfg.data.image_size,
        params=int(params),
        epochs=len(rows),
        best_epoch=best_epoch,
        wall_time_s=round(wall_time, 1),
        splits=figures,
        other_class={
            "index": len(labels),
            "fraction": cfg.data.other_fraction,
            "others_train_photos": pipe.count("others_train"),
            "share_called_other": called_other,
        }
        if pipe.other_class
        else None,
    )
    if rows:
        plot_curves(rows, out / "curves.png")
    plot_confusion(test_cm, labels, out / "confusion.png", title=f"test split, top-1 {figures['test']['top1']:.3f}")
    plot_filters(model.get_layer("conv1").get_weights()[0], out / "filters.png")
    return metrics


if __name__ == "__main__":
    sys.exit(main())
