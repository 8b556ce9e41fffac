"""bundle.images: every awkward encoding of a real photo decodes to the same upright RGB picture."""

import io

import image_variants as v
import numpy as np
import pytest
from PIL import Image

from bundle.images import ImageError, decode_image


@pytest.fixture(scope="module")
def photo(sample_photos) -> Image.Image:
    # A landscape photo, so a missed EXIF rotation changes the shape.
    img = Image.open(next(p for p in sample_photos if "keyboard" in p.name)).convert("RGB")
    assert img.width > img.height
    return img


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


def test_plain_jpeg_is_rgb_and_unchanged(photo):
    data = v.encode(photo, "PNG")
    img = decode_image(data)
    assert img.mode == "RGB" and img.size == photo.size
    assert np.array_equal(np.asarray(img), np.asarray(photo))


def test_exif_orientation_is_applied(photo):
    img = decode_image(v.exif_rotated_jpeg(photo))
    assert img.size == photo.size
    assert mean_abs_diff(img, photo) < 3


def test_cmyk_jpeg_converts_to_rgb(photo):
    img = decode_image(v.cmyk_jpeg(photo))
    assert img.mode == "RGB" and img.size == photo.size
    assert mean_abs_diff(img, photo) < 6


def test_16bit_png_is_scaled_not_clipped(photo):
    img = decode_image(v.png16_gray(photo))
    expected = photo.convert("L").convert("RGB")
    assert np.array_equal(np.asarray(img), np.asarray(expected))


def test_transparent_pixels_become_white(photo):
    img = decode_image(v.palette_png_with_transparency(photo))
    arr = np.asarray(img)
    assert (arr[:, : photo.width // 2] == 255).all()
    assert arr[:, photo.width // 2 + 1 :].mean() < 250


def test_animated_gif_uses_first_frame(photo, sample_photos):
    other = Image.open(sample_photos[0])
    img = decode_image(v.animated_gif(photo, other))
    first = Image.open(io.BytesIO(v.animated_gif(photo, other))).convert("RGB")
    assert np.array_equal(np.asarray(img), np.asarray(first))


def test_large_jpeg_is_decoded_at_full_size_like_a_browser(photo):
    # No reduced-scale (draft) decoding: the phone page's decoder must see the same pixels.
    big = photo.resize((photo.width * 4, photo.height * 4))
    data = v.encode(big, "JPEG", quality=90)
    img = decode_image(data)
    assert img.size == big.size
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty"),
        (v.HTML, "unsupported_format"),
        (b"GIF89a" + b"\x00" * 3, "corrupt_image"),
        (v.bomb_png(), "image_too_large"),
    ],
)
def test_bad_bytes_are_named(data, code):
    with pytest.raises(ImageError) as e:
        decode_image(data)
    assert e.value.code == code


def test_truncated_jpeg_is_corrupt(photo):
    with pytest.raises(ImageError) as e:
        decode_image(v.truncated_jpeg(photo))
    assert e.value.code == "corrupt_image"


def test_pixel_limit_is_configurable(photo):
    data = v.encode(photo, "JPEG")
    with pytest.raises(ImageError) as e:
        decode_image(data, max_pixels=photo.width * photo.height - 1)
    assert e.value.code == "image_too_large"
