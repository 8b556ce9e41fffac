"""The reduced AlexNet's shape, framework-free: channel counts, the first conv's geometry and the
BatchNorm momentum that ``training.model`` builds the Keras model from, and that the PyTorch replica
of the GPU recipe probe (``bench.student_probe``) builds its copy from, so the two are one network.

    from training.model_shape import conv_channels, first_conv_geometry
    first_conv_geometry(64)   # (5, 2): conv1's kernel and stride for 64 px photos
    conv_channels(48)         # [48, 128, 192, 192, 128]
"""

from __future__ import annotations

# AlexNet's channel ratios (96, 256, 384, 384, 256) relative to its first conv.
CONV_RATIOS = (1, 8 / 3, 4, 4, 8 / 3)
MIN_IMAGE_SIZE = 16
# The first conv brings any input to about this side, like AlexNet's 224 -> 55.
FIRST_CONV_OUTPUT = 32
# Keras' default 0.99 needs hundreds of steps before the moving statistics used at evaluation
# are right; short runs (a few epochs of a small dataset) then evaluate a broken network.
BN_MOMENTUM = 0.9


class ImageSizeError(ValueError):
    """The input side is too small for three pooling stages."""


def first_conv_geometry(image_size: int) -> tuple[int, int]:
    """(kernel, stride) of conv1: stride ~ size/32, kernel ~ 2*stride+1 (AlexNet: 11, stride 4)."""
    if image_size < MIN_IMAGE_SIZE:
        raise ImageSizeError(
            f"image size {image_size} px is too small for the architecture "
            f"(three 2x poolings need at least {MIN_IMAGE_SIZE} px; use --image-size 32 or more)"
        )
    stride = max(1, round(image_size / FIRST_CONV_OUTPUT))
    kernel = 3 if stride == 1 else 2 * stride + 1
    return kernel, stride


def conv_channels(width: int) -> list[int]:
    return [max(8, round(width * r)) for r in CONV_RATIOS]
