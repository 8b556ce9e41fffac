"""The reference preprocessing: an RGB picture -> the model's input tensor, as the manifest says.

The trainer records a ``PreprocessSpec`` with its run, export copies it into the manifest, and the
server (Python) and the phone page (JavaScript) apply it. This file is the definition; the other
implementations are tested against the golden vectors that export computes with it.

    from bundle.preprocess import PreprocessSpec, preprocess, quantize, dequantize
    spec = PreprocessSpec(size=64, crop_fraction=1.0)
    pixels = preprocess(rgb_image, spec)          # uint8 array (64, 64, 3), RGB
    x = quantize(pixels, scale=1.0, zero_point=0, dtype="uint8")[None]   # model input
    probs = dequantize(raw_output, scale, zero_point)

The rule, step by step:
1. centre crop: a square of side ``round(min(W, H) * crop_fraction)`` (at least 1 px), at
   ``left = (W - side) // 2``, ``top = (H - side) // 2``;
2. resize that square to ``size x size`` with Pillow's BILINEAR filter, which is antialiased
   when shrinking (a triangle filter widened by the scale factor); no resize if already that size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

RESIZE_METHODS = {"bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class PreprocessSpec:
    size: int = 64
    crop_fraction: float = 1.0
    resize: str = "bilinear"
    channel_order: str = "RGB"

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"preprocess size must be >= 1, got {self.size}")
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.resize not in RESIZE_METHODS:
            raise ValueError(f"unknown resize method {self.resize!r}; known: {sorted(RESIZE_METHODS)}")
        if self.channel_order != "RGB":
            raise ValueError(f"only RGB channel order is supported, got {self.channel_order!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        known = {k: d[k] for k in ("size", "crop_fraction", "resize", "channel_order") if k in d}
        return cls(**known)


def crop_box(width: int, height: int, crop_fraction: float) -> tuple[int, int, int, int]:
    """The centre square (left, top, right, bottom) that step 1 of the rule keeps."""
    side = max(1, round(min(width, height) * crop_fraction))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def preprocess(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """RGB ``PIL.Image`` -> uint8 array of shape (size, size, 3)."""
    if img.mode != "RGB":
        raise ValueError(f"preprocess expects an RGB image (use bundle.images.decode_image), got {img.mode}")
    box = crop_box(img.width, img.height, spec.crop_fraction)
    if box != (0, 0, img.width, img.height):
        img = img.crop(box)
    if img.size != (spec.size, spec.size):
        img = img.resize((spec.size, spec.size), RESIZE_METHODS[spec.resize])
    return np.asarray(img, dtype=np.uint8)


def quantize(pixels: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Raw 0..255 pixel values -> the model's input dtype (identity for uint8 with scale 1, zp 0)."""
    if dtype == "float32":
        return pixels.astype(np.float32)
    info = np.iinfo(dtype)
    if dtype == "uint8" and scale == 1.0 and zero_point == 0:
        return pixels.astype(np.uint8)
    q = np.rint(pixels.astype(np.float64) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """A quantized output tensor -> float32 (a float output passes through unchanged)."""
    if values.dtype == np.float32:
        return values
    return ((values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
