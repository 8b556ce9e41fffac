"""Training sees what the server sees: the tf.data decode gives bundle.images' pixels for photos
stored sideways (all 8 EXIF orientations, and XMP), with alpha, CMYK, 16-bit or a palette.

Every variant is made from a real ImageNet photo (../shared/datasets/imagenet-samples); the
trainer's pixels come from a dataset imported the way users import theirs.
"""

from __future__ import annotations

import io

import image_variants as iv
import numpy as np
import pytest
from PIL import Image

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, preprocess
from training.config import DataConfig
from training.data.importer import ImportConfig, import_images
from training.pipeline import Pipeline, decode
from training.tfenv import tf

# Landscape, so that a missed rotation changes the shape, not only the pixels.
W, H = 72, 48


def photo(path) -> Image.Image:
    return Image.open(path).convert("RGB").resize((W, H), Image.Resampling.BILINEAR)


def variants(img: Image.Image) -> dict[str, bytes]:
    out = {f"exif{o}.jpg": iv.exif_oriented_jpeg(img, o) for o in range(1, 9)}
    out.update(
        {
            "xmp6.jpg": iv.xmp_oriented_jpeg(img),
            "rgba.png": iv.transparent_png(img),
            "la.png": iv.transparent_png(img, "LA"),
            "palette_alpha.png": iv.palette_png_with_transparency(img),
            "rgba.webp": iv.encode(Image.open(io.BytesIO(iv.transparent_png(img))), "WEBP", lossless=True),
            "cmyk.jpg": iv.cmyk_jpeg(img),
            "gray16.png": iv.png16_gray(img),
        }
    )
    return out


@pytest.fixture(scope="module")
def photos(sample_photos):
    return [photo(p) for p in sample_photos[:4]]


def test_each_variant_decodes_to_the_bundles_pixels_and_upright(photos):
    for img in photos:
        upright = np.asarray(img, dtype=np.int16)
        for name, data in variants(img).items():
            want = np.asarray(decode_image(data))
            got = decode(tf.constant(data)).numpy()
            assert got.dtype == np.uint8 and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
            if name.endswith(".jpg") and name != "cmyk.jpg":  # upright: the photo, up to JPEG noise
                assert got.shape == (H, W, 3), name
                assert np.abs(got.astype(np.int16) - upright).mean() < 4, name


def test_the_variants_are_ones_tensorflows_own_decoders_get_wrong(photos):
    """TF's decoders alone (the trainer's decode before) would train these sideways, with hidden
    colours, or stop the run (TF refuses some of them)."""
    img = photos[0]
    wrong = []
    for name, data in variants(img).items():
        want = np.asarray(decode_image(data))
        try:
            tf_pixels = (
                tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
                if data[:2] == b"\xff\xd8"
                else tf.io.decode_image(data, channels=3, expand_animations=False)
            ).numpy()
        except tf.errors.InvalidArgumentError:
            wrong.append(name)
            continue
        if tf_pixels.shape != want.shape or not np.array_equal(tf_pixels, want):
            wrong.append(name)
    assert {f"exif{o}.jpg" for o in range(2, 9)} | {"xmp6.jpg", "rgba.png", "la.png"} <= set(wrong)
    assert "exif1.jpg" not in wrong  # orientation 1 is upright already: TF's fast path is exact


def test_pipeline_images_of_an_imported_variant_dataset_equal_the_reference(photos, tmp_path):
    """Import keeps each file's bytes; the trainer's cached pixels equal decode + preprocess."""
    source = tmp_path / "phone"
    classes = tmp_path / "classes.tsv"
    classes.write_text("n00000001\tfirst\nn00000002\tsecond\n")
    for k, wnid in enumerate(("n00000001", "n00000002")):
        (source / wnid).mkdir(parents=True)
        for i, img in enumerate(photos[2 * k : 2 * k + 2]):
            for name, data in variants(img).items():
                (source / wnid / f"{i}_{name}").write_bytes(data)
    ds = import_images(ImportConfig(source=str(source), out=str(tmp_path / "data"), classes=str(classes)))
    pipe = Pipeline(ds, DataConfig(), image_size=H, num_classes=2, batch_size=16)
    checked = 0
    for split in ("train", "val", "test"):
        if not pipe.count(split):
            continue
        got = np.concatenate([x.numpy() for x, _ in pipe.evaluation(split)]).astype(np.uint8)
        for (path, _), image in zip(pipe.items[split], got):
            assert path.read_bytes() == (source / path.parent.name / path.name).read_bytes()
            want = preprocess(decode_image(path.read_bytes()), PreprocessSpec(H, 1.0))
            np.testing.assert_array_equal(image, want, err_msg=path.name)
            checked += 1
    assert checked == 4 * len(variants(photos[0]))
