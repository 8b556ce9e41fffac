"""Distillation: a run's training targets mixed from the hard labels and an ImageNet teacher's soft targets.

    from training.distill import resolve_teacher, soft_targets_for
    resolve_teacher(cfg, ds)                        # cfg.teacher.name: "auto" -> a teacher or "none"
    soft = soft_targets_for(cfg, ds, outputs=21)    # None without a teacher
    soft.probs(paths, labels)                       # float32 [n, views, outputs], tempered
    soft.mix(onehot, view)                          # (1 - w) * hard label + w * teacher view (in tf.data)

The teacher (training.teacher) gives log-probabilities over the dataset's classes plus "other" for
every train and val photo, as it is and mirrored (and, with ``--teacher-views`` N > 2, for N - 2
augmented views of each train photo drawn once: ``training.pipeline.teacher_view``); they are
computed once and cached beside the dataset, so every run, and export's pruning fine-tune, reads
the same targets. A run with the hidden
"other" output learns all of them for non-office photos, and for office photos
(``--distill-drop-other``, the default) only the office columns, renormalized: their label already
says they are office objects, and a teacher head fitted where non-office photos outnumber office
ones puts "other" first on many of them (about a quarter of the office20 train photos for Lite0's
fitted head). An office-only run learns the office columns, renormalized. The student is trained
with one cross-entropy against the mixed target (with ``--label-smoothing`` applied to it as to a
hard label), so accuracy and loss in the logs keep their meaning, and it learns that target as it
is: a temperature T > 1 (p^(1/T), renormalized) gives the teacher's second guesses more weight but
also makes the student itself flat, which int8 pays for at the parity gate
(bench/results/compare.md), hence the default T = 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.data.dataset import Dataset

NO_TEACHER = "none"
# What --teacher auto uses: EfficientNet-Lite0 (bench/results/teacher-sweep.md: the fastest of the
# registered teachers to run over every photo; the Lite1 teacher's student was no better, compare.md).
DEFAULT_TEACHER = "efficientnet-lite0"


class DistillTargets:
    """The teacher's views of each training photo, restricted to a run's outputs and tempered."""

    def __init__(
        self,
        teacher_targets,
        num_classes: int,
        outputs: int,
        weight: float,
        temperature: float,
        drop_other: bool = False,
    ):
        self.teacher, self.num_classes, self.outputs = teacher_targets, num_classes, outputs
        self.weight, self.temperature, self.drop_other = weight, temperature, drop_other

    @property
    def views(self) -> int:
        return self.teacher.views

    def seeds(self, paths) -> np.ndarray:
        """int64 [n]: each photo's seed of its augmented views (``training.teacher.views.photo_seed``)."""
        return self.teacher.seeds(paths)

    def probs(self, paths, labels) -> np.ndarray:
        """[n, views, outputs]: the teacher's tempered probabilities for these photos (labels: their
        class indices, ``num_classes`` for a non-office photo)."""
        logp = np.asarray(self.teacher.log_probs(paths), np.float64)[..., : self.outputs]
        z = logp / self.temperature
        if self.drop_other and self.outputs > self.num_classes:
            office = np.asarray(labels) < self.num_classes
            z[office, :, self.num_classes] = -np.inf
        z -= z.max(-1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(-1, keepdims=True)).astype(np.float32)

    def mix(self, onehot, view):
        return (1.0 - self.weight) * onehot + self.weight * view


def resolve_teacher(cfg: TrainConfig, ds: Dataset) -> None:
    """``--teacher auto``: the default teacher when its package is installed, else none (said once).
    A named teacher whose package is missing is a TeacherError naming the install command."""
    if cfg.teacher.name == NO_TEACHER:
        return
    from training.teacher import TeacherError, load_teacher

    if not 0 < cfg.teacher.weight <= 1 or cfg.teacher.temperature <= 0:
        raise ValueError(
            f"--distill-weight must be in (0, 1] and --distill-temperature > 0, got "
            f"{cfg.teacher.weight} and {cfg.teacher.temperature}"
        )
    if cfg.teacher.name == "auto":
        try:
            load_teacher(DEFAULT_TEACHER)
        except TeacherError as e:
            print(f"note: training without a teacher ({e}); --teacher none silences this")
            cfg.teacher.name = NO_TEACHER
            return
        cfg.teacher.name = DEFAULT_TEACHER
    if cfg.teacher.name.endswith(".keras"):  # a teacher file: config.json records where it is
        cfg.teacher.name = str(Path(cfg.teacher.name).resolve())
    try:
        teacher_hash = load_teacher(cfg.teacher.name, cfg.teacher.input_size).hash
    except TeacherError as e:  # a named teacher that can't be had: one error line, the fix in it
        raise ValueError(str(e)) from None
    if cfg.teacher.hash and cfg.teacher.hash != teacher_hash:  # --resume after the teacher changed
        raise ValueError(
            f"teacher {cfg.teacher.name} is not the one this run was trained with (hash "
            f"{teacher_hash[:12]} vs {cfg.teacher.hash[:12]} in config.json)"
        )
    cfg.teacher.hash = teacher_hash
    # Compute (or read) the soft targets now: "auto" resolves to the head measured better, which
    # config.json must record before training starts.
    cfg.teacher.head = _targets(cfg, ds).head


def _targets(cfg: TrainConfig, ds: Dataset):
    from training.teacher import TeacherError, soft_targets

    try:
        return soft_targets(
            ds,
            cfg.teacher.name,
            head=cfg.teacher.head,
            input_size=cfg.teacher.input_size,
            crop_fraction=cfg.data.crop_fraction,
            views=_views(cfg),
        )
    except TeacherError as e:
        raise ValueError(str(e)) from None


def _views(cfg: TrainConfig):
    """The augmented views ``--teacher-views`` asks for, drawn as the run's pipeline draws them."""
    from training.pipeline import teacher_view_renderer
    from training.teacher.targets import AugmentedViews
    from training.teacher.views import VIEWS

    if cfg.teacher.views < len(VIEWS):
        raise ValueError(f"--teacher-views counts the photo and its mirror too: at least 2, got {cfg.teacher.views}")
    if cfg.teacher.views == len(VIEWS):
        return None
    d, size = cfg.data, cfg.data.image_size
    if not d.augment:  # the pipeline shows only the plain views then: the teacher's pass would be wasted
        raise ValueError(f"--teacher-views {cfg.teacher.views} needs augmentation, which --no-augment turns off")
    # What the views look like depends on these settings: a change makes a new cache.
    key = {
        "augmentation": {
            k: getattr(d, k) for k in ("augment", "translate", "flip", "brightness", "contrast", "crop_scale")
        }
    }
    return AugmentedViews(cfg.teacher.views, size, teacher_view_renderer(d, size), key)


def soft_targets_for(cfg: TrainConfig, ds: Dataset, outputs: int) -> DistillTargets | None:
    """The run's soft targets (computed once per dataset and teacher, then read from the cache)."""
    if cfg.teacher.name == NO_TEACHER:
        return None
    t = cfg.teacher
    return DistillTargets(_targets(cfg, ds), len(ds.classes), outputs, t.weight, t.temperature, t.drop_other)
