"""The tf.data input pipeline: files -> decoded, cropped, resized uint8 images -> (augmented) batches.

Preprocessing follows ``bundle.images.decode_image`` + ``bundle.preprocess`` (what inference
does): decode (JPEG with ``dct_method="INTEGER_ACCURATE"``, libjpeg's ISLOW DCT, which is what
Pillow uses, at full size, so the decoded pixels are the same; grayscale becomes RGB), centre-crop a square of side
``round(min(W, H) * crop_fraction)``, resize to ``size x size`` with antialiased bilinear, round to
uint8. When no resize is needed (64 px Tiny ImageNet photos at 64 px) the pixels are exactly the
reference's. When resizing, TF's antialiased bilinear is close to Pillow's BILINEAR but not
bit-identical: at most 1 of 255 apart, ~0.1 on average (tests/training/test_pipeline.py
measures it on full-size ImageNet photos at 64, 128 and 224 px).
TF does not apply EXIF orientation: the dataset importer stores upright images.

Decoded images are cached in memory (uint8) when they fit, so only the first epoch reads files.
Augmentation runs here, per image, on the CPU, with stateless random ops seeded by
``(seed, epoch, position)``: an epoch's batches are the same whether or not the run was resumed.
It never runs for evaluation. Kept out of the model because XLA can't compile
``ImageProjectiveTransformV3`` and because the exported model must not carry it.

    from training.pipeline import Pipeline
    pipe = Pipeline(ds, cfg.data, image_size=64, num_classes=20, batch_size=128, seed=0)
    for x, y in pipe.train(epoch=0): ...       # x float32 [B, 64, 64, 3] in 0..255, y one-hot
    pipe.evaluation("val")                      # unaugmented, in file order
    pipe.epoch_size()                           # train images per epoch (office + "other" draw)
"""
from __future__ import annotations

from training.config import DataConfig
from training.data.dataset import Dataset
from training.tfenv import tf

AUTOTUNE = tf.data.AUTOTUNE


def decode(data: tf.Tensor) -> tf.Tensor:
    """Encoded bytes -> uint8 RGB [H, W, 3], the pixels ``bundle.images.decode_image`` gives:
    JPEGs with libjpeg's ISLOW DCT, as Pillow decodes them; other formats via decode_image."""
    return tf.cond(tf.io.is_jpeg(data),
                   lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_image(data, channels=3, expand_animations=False))


def crop_and_resize(image: tf.Tensor, size: int, crop_fraction: float) -> tf.Tensor:
    """bundle.preprocess's rule in TF: centre square of round(min side * fraction), then resize."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    # tf.round and Python's round both round half to even.
    side = tf.maximum(1, tf.cast(tf.round(tf.cast(tf.minimum(h, w), tf.float64) * crop_fraction), tf.int32))
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top:top + side, left:left + side]

    def resize():
        out = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    return tf.cond(tf.equal(side, size), lambda: image, resize)


def augment(image: tf.Tensor, seed: tf.Tensor, cfg: DataConfig, size: int) -> tf.Tensor:
    """One training image (float32 0..255) -> a random variant; ``seed`` is a stateless [2] seed."""
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    if cfg.crop_scale > 0:
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), bounding_boxes=tf.zeros([1, 0, 4]), seed=seeds[0],
            area_range=(cfg.crop_scale, 1.0), aspect_ratio_range=(3 / 4, 4 / 3),
            min_object_covered=0.0, use_image_if_no_bounding_boxes=True)
        image = tf.slice(image, begin, crop_size)
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    elif cfg.translate > 0:
        pad = max(1, round(cfg.translate * size))
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    if cfg.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    if cfg.brightness > 0:
        image = tf.image.stateless_random_brightness(image, cfg.brightness * 255.0, seed=seeds[2])
    if cfg.contrast > 0:
        image = tf.image.stateless_random_contrast(image, 1 - cfg.contrast, 1 + cfg.contrast, seed=seeds[3])
    return tf.clip_by_value(image, 0.0, 255.0)


def resolve_other_class(cfg: DataConfig, dataset: Dataset) -> str:
    """"on" or "off": whether a run trains the hidden "other" output (``--other-class``; auto =
    when the dataset has non-office train photos). What config.json records."""
    has_others = bool(dataset.others_items("train"))
    if cfg.other_class == "on" and not has_others:
        raise ValueError(f"--other-class on: {dataset.root} has no non-office train photos "
                         f"(add them with `python -m training.data import-others`)")
    if not 0 < cfg.other_fraction < 1:
        raise ValueError(f"--other-fraction is a share in (0, 1), got {cfg.other_fraction}")
    return "on" if cfg.other_class == "on" or (cfg.other_class == "auto" and has_others) else "off"


class Pipeline:
    """The train and evaluation datasets of one run; decoded images are shared by all epochs.

    With ``cfg.other_class`` on (or auto, and a dataset with non-office photos) the labels have one
    more class, index ``num_classes`` ("other"): each training epoch mixes ``other_fraction`` of non-office photos of the train-side
    classes (a fresh seeded draw every epoch) into the office ones, and ``others_val`` /
    ``others_test`` are evaluation splits of the non-office photos.
    """

    def __init__(self, dataset: Dataset, cfg: DataConfig, image_size: int, num_classes: int,
                 batch_size: int, seed: int = 0):
        self.cfg, self.size, self.num_classes = cfg, image_size, num_classes
        self.batch_size, self.seed = batch_size, seed
        self.items = {split: dataset.items(split) for split in ("train", "val", "test")}
        self.other_class = resolve_other_class(cfg, dataset) == "on"
        if self.other_class:
            for split in ("train", "val", "test"):
                self.items[f"others_{split}"] = [(p, num_classes) for p, _ in dataset.others_items(split)]
        self.outputs = num_classes + self.other_class
        bytes_needed = sum(len(v) for v in self.items.values()) * image_size * image_size * 3
        self.cached = cfg.cache and bytes_needed <= cfg.cache_limit_mb * 2**20
        self.parallel = cfg.workers or AUTOTUNE
        self._files = {split: self._file_list(split) for split in self.items}
        self._images = {split: self._decoded(ds) for split, ds in self._files.items()}

    def count(self, split: str) -> int:
        return len(self.items[split])

    def others_per_epoch(self) -> int:
        """Non-office photos mixed into each training epoch: ``other_fraction`` of the epoch."""
        if not self.other_class:
            return 0
        f = self.cfg.other_fraction
        return round(self.count("train") * f / (1 - f))

    def epoch_size(self) -> int:
        return self.count("train") + self.others_per_epoch()

    def _file_list(self, split: str) -> tf.data.Dataset:
        items = self.items[split]
        return tf.data.Dataset.from_tensor_slices((tf.constant([str(p) for p, _ in items], tf.string),
                                                   tf.constant([label for _, label in items], tf.int32)))

    def _load(self, path, label):
        return crop_and_resize(decode(tf.io.read_file(path)), self.size, self.cfg.crop_fraction), label

    def _decoded(self, files: tf.data.Dataset) -> tf.data.Dataset:
        """(uint8 image, label) in file order, cached in memory when it fits."""
        ds = files.map(self._load, num_parallel_calls=self.parallel)
        return ds.cache() if self.cached else ds

    def _to_model(self, image, label):
        image = tf.ensure_shape(tf.cast(image, tf.float32), (self.size, self.size, 3))
        return image, tf.one_hot(label, self.outputs)

    def train(self, epoch: int, augment_images: bool | None = None) -> tf.data.Dataset:
        """Epoch ``epoch``'s shuffled (and augmented) batches; the same for the same seed and epoch."""
        do_augment = self.cfg.augment if augment_images is None else augment_images
        shuffle_seed = self.seed * 100_003 + epoch
        # Shuffle file names, not pictures, when nothing is cached: the first batch needn't wait
        # for every decode.
        source = self._images if self.cached else self._files
        ds, n = source["train"], self.count("train")
        if self.other_class:
            k = self.others_per_epoch()
            others = source["others_train"].shuffle(self.count("others_train"), seed=shuffle_seed + 1,
                                                    reshuffle_each_iteration=False)
            ds, n = ds.concatenate(others.repeat().take(k)), n + k
        ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=False)
        if not self.cached:
            ds = ds.map(self._load, num_parallel_calls=self.parallel)
        ds = ds.enumerate().map(lambda i, pair: (i, *self._to_model(*pair)), num_parallel_calls=self.parallel)
        if do_augment:
            cfg, size, seed = self.cfg, self.size, self.seed

            def random_variant(i, image, label):
                return augment(image, tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch, i]), cfg, size), label

            ds = ds.map(random_variant, num_parallel_calls=self.parallel)
        else:
            ds = ds.map(lambda i, image, label: (image, label))
        return ds.batch(self.batch_size).prefetch(AUTOTUNE)

    def evaluation(self, split: str, batch_size: int | None = None) -> tf.data.Dataset:
        """Unaugmented batches of one split, in the dataset's file order."""
        ds = self._images[split].map(self._to_model, num_parallel_calls=self.parallel)
        return ds.batch(batch_size or self.batch_size).prefetch(AUTOTUNE)

    def labels(self, split: str) -> list[int]:
        return [label for _, label in self.items[split]]
