"""The trainer's configuration: typed dataclasses grouped by concern, and the CLI made from them.

Every field has a working default and a ``--flag`` of the same name (underscores become dashes),
grouped in ``--help`` like timm's train.py. The resolved configuration is saved as
``RUN/config.json``, and ``--resume`` reads it back so that a resumed run trains the same model.

    from training.config import TrainConfig, build_parser, config_from_args
    cfg = TrainConfig()                                    # defaults
    args = build_parser().parse_args(["--data", "data/office20", "--out", "artifacts/run", "--lr", "3e-3"])
    cfg = config_from_args(args)                           # defaults <- flags given
    cfg.to_dict()                                          # what config.json holds
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field, fields


def _f(default, help: str, choices: tuple | None = None):
    """A dataclass field that carries its CLI help (and choices) in its metadata."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class ModelConfig:
    width: int = _f(48, "channels of the first conv; the others follow AlexNet's ratios (x8/3, x4, x4, x8/3)")
    fc_units: int = _f(1024, "units of each of the two hidden fully-connected layers")
    dropout: float = _f(0.3, "dropout rate after each hidden fully-connected layer")
    weight_decay: float = _f(1e-4, "L2 penalty on conv/dense kernels (added to the loss; 0 disables)")


@dataclass
class DataConfig:
    root: str = _f("", "dataset folder holding dataset.json (set by --data; saved as an absolute path)")
    image_size: int | None = _f(None, "model input side in px; default: 64 for Tiny ImageNet-sized data "
                                      "(median side <= 80 px), else 128")
    crop_fraction: float = _f(1.0, "centre-crop side as a fraction of the shorter image side "
                                   "(train, eval and inference alike: it goes to preprocess.json)")
    cache: bool = _f(True, "keep decoded images in memory when they fit in --cache-limit-mb")
    cache_limit_mb: int = _f(2048, "largest decoded dataset (uint8, all splits) to cache in memory")
    augment: bool = _f(True, "augment training batches (never evaluation)")
    translate: float = _f(0.125, "random translation, as a fraction of the side (reflect-padded); 0 disables")
    flip: bool = _f(True, "random horizontal flip")
    brightness: float = _f(0.2, "random brightness shift, fraction of the 0..255 range; 0 disables")
    contrast: float = _f(0.2, "random contrast factor in [1-c, 1+c]; 0 disables")
    crop_scale: float = _f(0.0, "random-resized-crop: smallest crop area as a fraction of the image "
                                "(replaces translation when > 0; 0 disables)")
    workers: int | None = _f(None, "parallel calls for decode/augment; default: tf.data AUTOTUNE")
    other_class: str = _f("auto", "train an extra hidden 'other' output on the dataset's train-side "
                                 "non-office photos (import-others), so export can abstain on "
                                 "non-office objects; auto = when the dataset has them (config.json "
                                 "records on/off)", ("auto", "on", "off"))
    other_fraction: float = _f(0.25, "with --other-class: share of each epoch's training images drawn "
                                     "(afresh each epoch) from the non-office photos")


@dataclass
class OptimConfig:
    optimizer: str = _f("adam", "optimizer", ("adam", "sgd"))
    lr: float = _f(2e-3, "peak learning rate (reached at the end of warm-up)")
    momentum: float = _f(0.9, "SGD momentum (Nesterov); Adam's beta_1")
    batch_size: int = _f(128, "batch per replica; the global batch is this times the number of GPUs")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy loss; 0 disables")


@dataclass
class ScheduleConfig:
    epochs: int = _f(30, "maximum number of epochs")
    schedule: str = _f("cosine", "learning-rate schedule after warm-up", ("cosine", "step", "constant"))
    warmup_epochs: float = _f(2.0, "linear warm-up from 0 to --lr, in epochs")
    step_epochs: int = _f(10, "step schedule: multiply the LR by --step-gamma every this many epochs")
    step_gamma: float = _f(0.1, "step schedule: LR factor at each step")
    min_lr_ratio: float = _f(0.0, "cosine schedule: final LR as a fraction of --lr")
    patience: int = _f(0, "early stopping: stop after this many epochs without a better val accuracy; 0 disables")


@dataclass
class RuntimeConfig:
    out: str = _f("", "run directory (set by --out; saved as an absolute path)")
    seed: int = _f(0, "seed of weights, data order and augmentation")
    deterministic: bool = _f(True, "TF op determinism (same seed -> same run on the same machine)")
    mixed_precision: str = _f("auto", "mixed_float16 training: auto = on when a GPU is present",
                              ("auto", "on", "off"))
    jit_compile: str = _f("auto", "XLA-compile the train step: auto = on when a GPU is present",
                          ("auto", "on", "off"))
    resume: bool = _f(False, "continue the run in --out from its last complete checkpoint")
    stop_after: int = _f(0, "train at most this many epochs in this invocation, then exit leaving a "
                            "checkpoint to --resume from (time-sliced or preemptible jobs); 0 = no limit")
    progress: bool = _f(True, "show a progress bar per epoch (one line per epoch when not a terminal)")
    train_eval: bool = _f(True, "evaluate the final model on the (unaugmented) train split too")


GROUPS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
          "schedule": ScheduleConfig, "runtime": RuntimeConfig}
# Fields set by dedicated positional-style flags, not by their own --field flag.
SPECIAL = {("data", "root"), ("runtime", "out"), ("runtime", "resume")}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Rebuild from config.json; unknown keys (from another version) are an error, missing ones default."""
        groups = {}
        for name, group_cls in GROUPS.items():
            values = dict(d.get(name, {}))
            known = {f.name for f in fields(group_cls)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"config group {name!r} has unknown keys {sorted(unknown)}")
            groups[name] = group_cls(**values)
        return cls(**groups)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation) -> type:
    """int | None -> int; the dataclass annotations are strings under ``from __future__``."""
    t = eval(annotation, {}) if isinstance(annotation, str) else annotation  # noqa: S307 (our own literals)
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def build_parser() -> argparse.ArgumentParser:
    """The CLI: ``--data`` and ``--out`` plus one flag per config field, grouped by concern.

    Flags default to SUPPRESS so that the parsed namespace holds only what was typed: that is what
    lets ``--resume`` take the saved config and override only the flags given again.
    """
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train the reduced AlexNet on an officenet dataset and write a run directory "
                    "(model.keras, preprocess.json, config.json, metrics.json, history.csv, plots, "
                    "checkpoints/, logs/).",
        epilog="Example: python -m training.train --data data/office20 --out artifacts/run --epochs 30",
        argument_default=argparse.SUPPRESS)
    p.add_argument("--data", required=True, metavar="ROOT", help="dataset folder (with dataset.json)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last complete checkpoint (with its saved "
                        "config; flags given again override it, e.g. a larger --epochs)")
    for group_name, group_cls in GROUPS.items():
        group = p.add_argument_group(f"{group_name} options")
        for f in fields(group_cls):
            if (group_name, f.name) in SPECIAL:
                continue
            kind = _base_type(f.type)
            dest = f"{group_name}.{f.name}"
            if kind is bool:
                group.add_argument(_flag(f.name), dest=dest, action=argparse.BooleanOptionalAction,
                                   help=f.metadata["help"] + ("" if f.default is None else f" (default: {f.default})"))
            else:
                group.add_argument(_flag(f.name), dest=dest, type=kind, choices=f.metadata["choices"],
                                   metavar=None if f.metadata["choices"] else kind.__name__.upper(),
                                   help=f.metadata["help"] + ("" if f.default is None else f" (default: {f.default})"))
    return p


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (defaults, or the saved config on --resume) with the flags given on top."""
    cfg = TrainConfig.from_dict(base.to_dict()) if base else TrainConfig()
    for key, value in vars(args).items():
        if "." in key:
            group, name = key.split(".", 1)
            setattr(getattr(cfg, group), name, value)
    return cfg
