"""ImageNet teachers for distillation: a registry of ported models and their cached soft targets.

    from training.teacher import TEACHERS, TeacherError, load_teacher, soft_targets
    teacher = load_teacher("efficientnet-lite0")   # or a path to a .keras feature model
    teacher.name, teacher.hash
    t = soft_targets(ds, "efficientnet-lite0")      # ds: training.data.dataset.Dataset
    t.log_probs(paths)                              # float32 [N, views, len(ds.classes) + 1]

Modules: ``registry`` (names, packages, hashes), ``torchfile`` (PyTorch weights without PyTorch),
``lite_plan`` (EfficientNet-Lite's block plan, framework-free), ``efficientnet_lite`` (the
architecture in tf_keras + weight port), ``runner`` (fast CPU
inference through float TFLite), ``views`` (the photo as the trainer sees it, and flipped),
``heads`` (ImageNet head, fitted linear head), ``targets`` (soft targets and their cache).
"""

from training.teacher.registry import TEACHERS, Teacher, TeacherError, load_teacher
from training.teacher.targets import HEADS, SoftTargets, soft_targets

__all__ = ["TEACHERS", "HEADS", "Teacher", "TeacherError", "SoftTargets", "load_teacher", "soft_targets"]
