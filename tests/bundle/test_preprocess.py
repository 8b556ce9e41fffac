"""bundle.preprocess: the crop/resize/quantize rule every consumer must reproduce exactly."""

import numpy as np
import pytest
from PIL import Image

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, crop_box, dequantize, preprocess, quantize


@pytest.mark.parametrize(
    "w, h, frac, box",
    [
        (64, 64, 1.0, (0, 0, 64, 64)),
        (500, 375, 1.0, (62, 0, 437, 375)),
        (375, 500, 0.875, (23, 86, 351, 414)),
        (3, 2, 1.0, (0, 0, 2, 2)),
    ],
)
def test_crop_box_is_the_centre_square(w, h, frac, box):
    assert crop_box(w, h, frac) == box


def test_native_size_image_passes_through_untouched():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = preprocess(Image.fromarray(arr), PreprocessSpec(size=32))
    assert out.dtype == np.uint8 and np.array_equal(out, arr)


def test_real_photo_is_cropped_then_resized_with_pillow_bilinear(sample_photos):
    img = decode_image(sample_photos[0].read_bytes())
    spec = PreprocessSpec(size=64, crop_fraction=0.875)
    out = preprocess(img, spec)
    expected = np.asarray(img.crop(crop_box(img.width, img.height, 0.875)).resize((64, 64), Image.Resampling.BILINEAR))
    assert out.shape == (64, 64, 3) and np.array_equal(out, expected)


def test_quantize_identity_for_raw_uint8_and_affine_otherwise():
    px = np.array([0, 1, 128, 255], np.uint8)
    assert np.array_equal(quantize(px, 1.0, 0, "uint8"), px)
    assert np.array_equal(quantize(px, 1.0, -128, "int8"), np.array([-128, -127, 0, 127], np.int8))
    assert np.array_equal(quantize(px, 2.0, 0, "uint8"), np.array([0, 0, 64, 128], np.uint8))
    assert quantize(px, 1.0, 0, "float32").dtype == np.float32


def test_dequantize_output():
    q = np.array([0, 128, 255], np.uint8)
    assert np.allclose(dequantize(q, 1 / 256, 0), [0, 0.5, 255 / 256])
    f = np.array([0.25], np.float32)
    assert dequantize(f, 1.0, 0) is f


@pytest.mark.parametrize(
    "kw", [{"size": 0}, {"crop_fraction": 0}, {"crop_fraction": 1.5}, {"resize": "lanczos"}, {"channel_order": "BGR"}]
)
def test_invalid_specs_are_refused(kw):
    with pytest.raises(ValueError):
        PreprocessSpec(**kw)


def test_spec_round_trips_through_a_dict():
    spec = PreprocessSpec(size=128, crop_fraction=0.875)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
