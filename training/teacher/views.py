"""The two views of a photo that the teacher scores: as the trainer sees it, and mirrored.

View 0 is the photo decoded by ``bundle.images.decode_image`` (the pixels every stage uses),
centre-cropped by the manifest's rule (``bundle.preprocess``) at the photo's own size and
resized straight to the teacher's input size (a 64 px Tiny ImageNet photo is upsampled); view 1
is view 0 flipped left-right, the trainer's flip augmentation, so the trainer can take the
targets of the view it drew. More views (``--teacher-views``) are the trainer's augmentation drawn
with a seed per photo (``photo_seed``) and view, by ``training.pipeline.teacher_view``.

    from training.teacher.views import photo_seed, photo_views
    views = photo_views(path, size=128, crop_fraction=1.0)    # uint8 [2, 128, 128, 3]
    photo_seed("n02769748/n02769748_0.JPEG")                   # the photo's augmented views' seed
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, preprocess

VIEWS = ("as-is", "flipped")


def photo_views(path: str | Path, size: int, crop_fraction: float = 1.0) -> np.ndarray:
    pixels = preprocess(decode_image(Path(path).read_bytes()), PreprocessSpec(size, crop_fraction))
    return np.stack([pixels, pixels[:, ::-1]])


def photo_seed(relative_path: str) -> int:
    """A photo's seed (below 2**62) from its path relative to the dataset root: the same on every
    machine and run, so the trainer redraws the very views the teacher's cache labelled."""
    return int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:8], "big") >> 2
