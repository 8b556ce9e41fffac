"""The tf.data pipeline: the same pixels as the reference preprocessing, augmentation only in training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from bundle.images import decode_image
from bundle.preprocess import PreprocessSpec, preprocess
from training.config import DataConfig
from training.data.dataset import load_dataset
from training.pipeline import Pipeline, crop_and_resize, decode, mix_batch
from training.tfenv import tf


def reference(path, size, crop_fraction=1.0) -> np.ndarray:
    return preprocess(decode_image(path.read_bytes()), PreprocessSpec(size, crop_fraction))


def images_of(ds: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([x.numpy() for x, _ in ds])


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return load_dataset(tiny_dataset)


def test_eval_pixels_are_exactly_the_reference_at_native_size_grayscale_included(dataset):
    pipe = Pipeline(dataset, DataConfig(), image_size=64, num_classes=20, batch_size=50)
    items = dataset.items("val")
    got = images_of(pipe.evaluation("val"))
    want = np.stack([reference(path, 64) for path, _ in items]).astype(np.float32)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert any(Image.open(path).mode == "L" for path, _ in items), "no grayscale JPEG among the val images"
    labels = np.concatenate([y.numpy().argmax(1) for _, y in pipe.evaluation("val")])
    assert labels.tolist() == pipe.labels("val")


@pytest.mark.parametrize("size, crop_fraction", [(64, 1.0), (128, 0.875), (224, 1.0)])
def test_large_photos_match_the_reference_within_one_level(sample_photos, size, crop_fraction):
    """Decoding is exact; TF's antialiased bilinear resize is within 1 of 255 of Pillow's BILINEAR."""
    worst = 0
    for path in sample_photos[:12]:
        got = crop_and_resize(decode(tf.constant(path.read_bytes())), size, crop_fraction).numpy()
        want = reference(path, size, crop_fraction)
        assert got.shape == want.shape == (size, size, 3)
        worst = max(worst, int(np.abs(got.astype(int) - want).max()))
    assert worst <= 1


def test_jpeg_decode_is_pillows(sample_photos):
    for path in sample_photos[:12]:
        data = path.read_bytes()
        np.testing.assert_array_equal(decode(tf.constant(data)).numpy(), np.asarray(decode_image(data)))


def test_augmentation_is_active_in_training_seeded_by_epoch_and_absent_in_evaluation(dataset):
    pipe = Pipeline(dataset, DataConfig(), image_size=32, num_classes=20, batch_size=64, seed=3)
    plain = images_of(pipe.evaluation("train"))
    assert np.array_equal(plain, images_of(pipe.evaluation("train")))

    epoch0 = images_of(pipe.train(0))
    assert np.array_equal(epoch0, images_of(pipe.train(0))), "an epoch's batches must be reproducible"
    assert not np.array_equal(epoch0, images_of(pipe.train(1)))
    # Augmented images are new pictures: none equals an original.
    originals = {img.tobytes() for img in plain}
    assert sum(img.tobytes() in originals for img in epoch0) < 0.05 * len(epoch0)
    assert epoch0.min() >= 0 and epoch0.max() <= 255

    shuffled_only = images_of(pipe.train(0, augment_images=False))
    assert {img.tobytes() for img in shuffled_only} == originals
    assert not np.array_equal(shuffled_only, plain), "training batches are shuffled"


@pytest.mark.parametrize("option", ["translate", "flip", "brightness", "contrast", "crop_scale"])
def test_each_augmentation_changes_images_on_its_own(dataset, option):
    off = dict(translate=0.0, flip=False, brightness=0.0, contrast=0.0, crop_scale=0.0)
    on = {"translate": 0.125, "flip": True, "brightness": 0.2, "contrast": 0.3, "crop_scale": 0.35}[option]
    cfg = dataclasses.replace(DataConfig(), **{**off, option: on})
    pipe = Pipeline(dataset, cfg, image_size=32, num_classes=20, batch_size=256)
    x = next(iter(pipe.train(0)))[0].numpy()
    plain = next(iter(pipe.train(0, augment_images=False)))[0].numpy()
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(x, plain)])
    assert changed > 0.3, f"{option} changed only {changed:.0%} of the images"


def _photos_and_onehots(dataset, n=8):
    """The first ``n`` val photos (float32, 32 px) and their one-hot targets, labels all distinct."""
    pipe = Pipeline(dataset, DataConfig(), image_size=32, num_classes=20, batch_size=256)
    x, y = next(iter(pipe.evaluation("val")))
    labels = y.numpy().argmax(1)
    keep = [i for i in range(len(labels)) if labels[i] not in labels[:i]][:n]
    assert len(keep) == n, "the tiny dataset's val split should hold photos of n classes"
    return tf.gather(x, keep), tf.gather(y, keep), labels[keep]


def test_mixup_blends_each_photo_with_its_partner_by_the_weight_its_target_carries(dataset):
    x, y, labels = _photos_and_onehots(dataset)
    mixed, targets = (t.numpy() for t in mix_batch(x, y, tf.constant([5, 7], tf.int64), mixup=0.4, cutmix=0.0))
    partner = x.numpy()[::-1]
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    for i, label in enumerate(labels):
        lam = targets[i, label]
        assert 0 < lam < 1 and targets[i, labels[::-1][i]] == pytest.approx(1 - lam, abs=1e-6)
        np.testing.assert_allclose(mixed[i], lam * x.numpy()[i] + (1 - lam) * partner[i], atol=1e-3)
    # One lam per batch (timm's Mixup): every photo keeps the same share of itself.
    assert np.ptp([targets[i, label] for i, label in enumerate(labels)]) < 1e-6
    again = mix_batch(x, y, tf.constant([5, 7], tf.int64), mixup=0.4, cutmix=0.0)[1].numpy()
    other = mix_batch(x, y, tf.constant([5, 8], tf.int64), mixup=0.4, cutmix=0.0)[1].numpy()
    assert np.array_equal(targets, again) and not np.array_equal(targets, other), "seeded, and only by its seed"


def test_cutmix_pastes_a_box_of_the_partner_whose_area_is_the_partners_target_share(dataset):
    x, y, labels = _photos_and_onehots(dataset)
    for seed in range(6):
        mixed, targets = (t.numpy() for t in mix_batch(x, y, tf.constant([seed, 1], tf.int64), mixup=0.0, cutmix=1.0))
        own, partner = x.numpy(), x.numpy()[::-1]
        for i, label in enumerate(labels):
            from_partner = np.all(mixed[i] == partner[i], axis=-1) & ~np.all(own[i] == partner[i], axis=-1)
            from_self = np.all(mixed[i] == own[i], axis=-1)
            assert np.all(from_partner | from_self), "every pixel is the photo's own or its partner's"
            rows, cols = np.nonzero(from_partner)
            if len(rows):  # one rectangle
                box = np.zeros_like(from_partner)
                box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
                assert np.array_equal(box, from_partner)
            assert targets[i, labels[::-1][i]] == pytest.approx(from_partner.mean(), abs=1e-6)
            assert targets[i, label] == pytest.approx(1 - from_partner.mean(), abs=1e-6)


def test_mixed_batches_are_reproducible_per_epoch_and_only_in_augmented_training(dataset):
    cfg = dataclasses.replace(DataConfig(), mixup=0.2, cutmix=1.0)
    pipe = Pipeline(dataset, cfg, image_size=32, num_classes=20, batch_size=64, seed=3)
    targets = np.concatenate([y.numpy() for _, y in pipe.train(0)])
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-5)
    assert (targets.max(1) < 1).mean() > 0.5, "most training targets are mixes"
    assert np.array_equal(targets, np.concatenate([y.numpy() for _, y in pipe.train(0)]))
    assert not np.array_equal(targets, np.concatenate([y.numpy() for _, y in pipe.train(1)]))
    unmixed = np.concatenate([y.numpy() for _, y in pipe.train(0, augment_images=False)])
    assert set(np.unique(unmixed)) == {0.0, 1.0}
    assert set(np.unique(np.concatenate([y.numpy() for _, y in pipe.evaluation("val")]))) == {0.0, 1.0}
    with pytest.raises(ValueError, match="--mixup and --cutmix are Beta alphas"):
        Pipeline(dataset, dataclasses.replace(cfg, cutmix=-1.0), image_size=32, num_classes=20, batch_size=64)


def test_uncached_pipeline_gives_the_same_pixels(dataset):
    cached = Pipeline(dataset, DataConfig(), image_size=32, num_classes=20, batch_size=64)
    streamed = Pipeline(dataset, DataConfig(cache=False), image_size=32, num_classes=20, batch_size=64)
    assert cached.cached and not streamed.cached
    np.testing.assert_array_equal(images_of(cached.evaluation("test")), images_of(streamed.evaluation("test")))
    np.testing.assert_array_equal(images_of(cached.train(2)), images_of(streamed.train(2)))


def test_other_class_mixes_a_fresh_seeded_draw_of_non_office_photos_into_each_epoch(others_dataset):
    ds = load_dataset(others_dataset)
    cfg = dataclasses.replace(DataConfig(), other_class="on", other_fraction=0.25, augment=False)
    pipe = Pipeline(ds, cfg, image_size=32, num_classes=20, batch_size=64, seed=1)
    office, k = pipe.count("train"), pipe.others_per_epoch()
    assert pipe.outputs == 21 and k == round(office / 3) and pipe.epoch_size() == office + k

    def epoch(n):
        x, y = zip(*[(x.numpy(), y.numpy()) for x, y in pipe.train(n)])
        return np.concatenate(x), np.concatenate(y).argmax(1)

    x0, y0 = epoch(0)
    assert len(y0) == office + k and (y0 == 20).sum() == k
    assert np.bincount(y0[y0 < 20], minlength=20).tolist() == np.bincount(pipe.labels("train"), minlength=20).tolist()
    others_pixels = {img.tobytes() for img in images_of(pipe.evaluation("others_train"))}
    drawn0 = {img.tobytes() for img in x0[y0 == 20]}
    assert drawn0 <= others_pixels and len(drawn0) == k, "the 'other' images are non-office train photos, no repeats"
    x0_again, y0_again = epoch(0)
    assert np.array_equal(x0, x0_again) and np.array_equal(y0, y0_again)
    x1, y1 = epoch(1)
    assert {img.tobytes() for img in x1[y1 == 20]} != drawn0, "each epoch draws other non-office photos"
    # The evaluation split of non-office photos is all class 20 and shares no class with training.
    assert set(pipe.labels("others_test")) == {20} and pipe.count("others_test") == len(ds.others_items("test"))
    assert not {w for _, w in ds.others_items("test")} & {w for _, w in ds.others_items("train")}
    assert pipe.items["others_test"] == [(p, 20) for p, _ in ds.others_items("test")]

    plain = Pipeline(
        ds, dataclasses.replace(DataConfig(), other_class="off"), image_size=32, num_classes=20, batch_size=64
    )
    assert plain.outputs == 20 and plain.epoch_size() == office and "others_train" not in plain.items
    assert Pipeline(ds, DataConfig(), 32, 20, 64).outputs == 21  # auto, with non-office photos: on


def test_other_class_epochs_are_the_same_cached_or_streamed(others_dataset):
    ds = load_dataset(others_dataset)
    cfg = dataclasses.replace(DataConfig(), other_class="on")
    cached = Pipeline(ds, cfg, image_size=32, num_classes=20, batch_size=64, seed=2)
    streamed = Pipeline(ds, dataclasses.replace(cfg, cache=False), image_size=32, num_classes=20, batch_size=64, seed=2)
    assert cached.cached and not streamed.cached
    for epoch in (0, 1):
        a, b = list(cached.train(epoch)), list(streamed.train(epoch))
        np.testing.assert_array_equal(np.concatenate([x for x, _ in a]), np.concatenate([x for x, _ in b]))
        np.testing.assert_array_equal(np.concatenate([y for _, y in a]), np.concatenate([y for _, y in b]))
