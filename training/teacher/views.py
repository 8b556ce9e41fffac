"""The two views of a photo that the teacher scores: as the trainer sees it, and mirrored.

View 0 is the photo decoded by ``bundle.images.decode_image`` (the pixels every stage uses),
centre-cropped by the manifest's rule (``bundle.preprocess``) at the photo's own size and
resized straight to the teacher's input size (a 64 px Tiny ImageNet photo is upsampled); view 1
is view 0 flipped left-right, the trainer's flip augmentation, so the trainer can take the
targets of the view it drew.

    from training.teacher.views import photo_views
    views = photo_views(path, size=128, crop_fraction=1.0)    # uint8 [2, 128, 128, 3]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, preprocess

VIEWS = ("as-is", "flipped")


def photo_views(path: str | Path, size: int, crop_fraction: float = 1.0) -> np.ndarray:
    pixels = preprocess(decode_image(Path(path).read_bytes()), PreprocessSpec(size, crop_fraction))
    return np.stack([pixels, pixels[:, ::-1]])
