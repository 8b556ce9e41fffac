"""The ported EfficientNet-Lite teachers classify real full-size ImageNet photos correctly.

Golden classes live in tests/data/teacher_golden.json; the teachers' wheels are pinned in
requirements/train.txt, and the tests skip (saying so) only where a wheel is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.teacher import TEACHERS, TeacherError, load_teacher
from training.teacher.registry import IMAGENET_WNIDS
from training.teacher.views import photo_views

GOLDEN = json.loads((Path(__file__).parents[2] / "data" / "teacher_golden.json").read_text())


def imagenet_top(name: str, photos: list[Path], k: int = 5) -> list[list[str]]:
    try:
        teacher = load_teacher(name, GOLDEN["input_size"])
    except TeacherError as e:
        pytest.skip(f"{name} not installed: {e}")
    x = np.stack([photo_views(p, teacher.input_size, GOLDEN["crop_fraction"])[0] for p in photos])
    logits = teacher.imagenet_logits(teacher.features(x))
    return [[IMAGENET_WNIDS[i] for i in row[:k]] for row in np.argsort(-logits, axis=1)]


def test_imagenet_class_order():
    assert len(IMAGENET_WNIDS) == 1000 and IMAGENET_WNIDS == sorted(set(IMAGENET_WNIDS))
    assert IMAGENET_WNIDS[0] == "n01440764" and IMAGENET_WNIDS[508] == "n03085013"  # tench, keyboard


def test_every_sample_and_tiny_imagenet_class_is_an_imagenet_class(shared_datasets, sample_photos):
    wnids = {p.name.split("_")[0] for p in sample_photos}
    for name in ("tiny-imagenet-office20", "tiny-imagenet-others"):
        wnids |= set((shared_datasets / name / "wnids.txt").read_text().split())
    assert len(wnids) >= 200 and wnids <= set(IMAGENET_WNIDS)


@pytest.mark.slow
def test_lite0_top1_on_all_sample_photos(sample_photos):
    tops = imagenet_top("efficientnet-lite0", sample_photos)
    truth = [p.name.split("_")[0] for p in sample_photos]
    top1 = np.mean([t[0] == w for t, w in zip(tops, truth)])
    top5 = np.mean([w in t for t, w in zip(tops, truth)])
    assert top1 >= GOLDEN["min_top1"] and top5 >= top1
    for p, t in zip(sample_photos, tops):
        if p.name in GOLDEN["photos"]:
            assert t[0] == GOLDEN["photos"][p.name], f"{p.name}: top-5 {t}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TEACHERS if n != "efficientnet-lite0"])
def test_larger_lites_port_with_the_same_code(name, shared_datasets):
    """Lite1/2 through the tf_keras port itself (the TFLite runner is covered by lite0 above)."""
    try:
        teacher = load_teacher(name, GOLDEN["input_size"])
    except TeacherError as e:
        pytest.skip(f"{name} not installed: {e}")
    model, (w, b) = teacher.build()
    photos = [shared_datasets / "imagenet-samples" / "images" / f for f in GOLDEN["photos"]]
    x = np.stack([photo_views(p, teacher.input_size, GOLDEN["crop_fraction"])[0] for p in photos])
    logits = model.predict(x.astype(np.float32), verbose=0) @ w + b
    assert [IMAGENET_WNIDS[i] for i in logits.argmax(axis=1)] == list(GOLDEN["photos"].values())
