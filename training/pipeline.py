"""The tf.data input pipeline: files -> decoded, cropped, resized uint8 images -> (augmented) batches.

Preprocessing follows ``bundle.images.decode_image`` + ``bundle.preprocess`` (what inference
does): decode to the reference's exact pixels (see ``decode``), centre-crop a square of side
``round(min(W, H) * crop_fraction)``, resize to ``size x size`` with antialiased bilinear, round to
uint8. When no resize is needed (64 px Tiny ImageNet photos at 64 px) the pixels are exactly the
reference's. When resizing, TF's antialiased bilinear is close to Pillow's BILINEAR but not
bit-identical: at most 1 of 255 apart, ~0.1 on average (tests/training/test_pipeline.py
measures it on full-size ImageNet photos at 64, 128 and 224 px).

Decoded images are cached in memory (uint8) when they fit, so only the first epoch reads files.
Augmentation runs here, per image, on the CPU, with stateless random ops seeded by
``(seed, epoch, position)``: an epoch's batches are the same whether or not the run was resumed.
With ``--mixup`` / ``--cutmix`` each augmented batch is then mixed with itself reversed
(``mix_batch``). With a teacher of more than two views a photo (``--teacher-views``), each epoch
shows a photo as one of them, drawn at random: view 0 or 1 is a fresh augmentation of the photo
(the teacher's target: the photo as it is, or mirrored), view v >= 2 the augmentation drawn with
the photo's own seed (``teacher_view``), the picture the teacher labelled. Augmentation never
runs for evaluation. Kept out of the model because XLA can't compile ``ImageProjectiveTransformV3``
and because the exported model must not carry it.

    from training.pipeline import Pipeline
    pipe = Pipeline(ds, cfg.data, image_size=64, num_classes=20, batch_size=128, seed=0)
    for x, y in pipe.train(epoch=0): ...       # x float32 [B, 64, 64, 3] in 0..255, y one-hot
    pipe.evaluation("val")                      # unaugmented, in file order
    pipe.epoch_size()                           # train images per epoch (office + "other" draw)
"""

from __future__ import annotations

import numpy as np

from bundle.images import decode_image
from training.config import DataConfig
from training.data.dataset import Dataset
from training.tfenv import tf

AUTOTUNE = tf.data.AUTOTUNE
TRAIN_SPLITS = ("train", "others_train")  # the splits a run learns from (and a teacher labels)
# JPEG's APP1 marker: the segment that holds EXIF and XMP, hence any orientation tag.
APP1_MARKER = b"\xff\xe1"


def decode(data: tf.Tensor) -> tf.Tensor:
    """Encoded bytes -> uint8 RGB [H, W, 3], exactly the pixels ``bundle.images.decode_image`` gives
    (what the server, the phone page, calibration and parity see).

    Stored photos keep their original bytes (import and download copy them, so dataset hashes
    name the user's files), and the decode rule stays the bundle's, written once: the one kind of
    file TF decodes to Pillow's pixels by itself, a plain JPEG (gray or YCbCr, no APP1 segment),
    takes TF's decoder (libjpeg's ISLOW DCT, what Pillow uses: the bulk of every ImageNet-style
    dataset, at graph speed); everything else runs ``decode_image`` itself. That covers the EXIF
    or XMP orientation (both live in an APP1 segment, which TF ignores: a phone photo would train
    sideways), alpha composited over white (TF drops it, leaving what transparent pixels hide),
    CMYK, 16-bit and palette images. 0xFF 0xE1 can't occur in a JPEG's entropy-coded data (0xFF
    is stuffed there), so looking for it anywhere only ever errs towards the exact path.
    """
    no_app1 = tf.size(tf.strings.split(data, sep=APP1_MARKER)) == 1
    plain_jpeg = tf.cond(
        tf.logical_and(tf.io.is_jpeg(data), no_app1),
        lambda: tf.io.extract_jpeg_shape(data)[2] != 4,  # 4 channels: CMYK
        lambda: tf.constant(False),
    )
    return tf.cond(
        plain_jpeg,
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: _reference_decode(data),
    )


def _reference_decode(data: tf.Tensor) -> tf.Tensor:
    """``bundle.images.decode_image`` as a tf.data op (its ImageError, a ValueError, surfaces as
    InvalidArgumentError with the reason, as TF's own decoders' errors do)."""

    def pixels(encoded):
        # A scalar string arrives as bytes in tf.data, as a 0-d object array when called eagerly
        # (not np.asarray(bytes): numpy's "S" type drops trailing NUL bytes, e.g. of a WebP).
        data = encoded if isinstance(encoded, bytes) else encoded.item()
        return np.asarray(decode_image(data), dtype=np.uint8)

    image = tf.numpy_function(pixels, [data], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def crop_and_resize(image: tf.Tensor, size: int, crop_fraction: float) -> tf.Tensor:
    """bundle.preprocess's rule in TF: centre square of round(min side * fraction), then resize."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    # tf.round and Python's round both round half to even.
    side = tf.maximum(1, tf.cast(tf.round(tf.cast(tf.minimum(h, w), tf.float64) * crop_fraction), tf.int32))
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]

    def resize():
        out = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    return tf.cond(tf.equal(side, size), lambda: image, resize)


def augment(image: tf.Tensor, seed: tf.Tensor, cfg: DataConfig, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One training image (float32 0..255) -> (a random variant, whether it was mirrored);
    ``seed`` is a stateless [2] seed. The mirror flag picks the teacher's matching soft target."""
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    if cfg.crop_scale > 0:
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.zeros([1, 0, 4]),
            seed=seeds[0],
            area_range=(cfg.crop_scale, 1.0),
            aspect_ratio_range=(3 / 4, 4 / 3),
            min_object_covered=0.0,
            use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, crop_size)
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    elif cfg.translate > 0:
        pad = max(1, round(cfg.translate * size))
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    mirrored = tf.constant(False)
    if cfg.flip:
        # tf.image.stateless_random_flip_left_right's own draw, kept so that runs stay reproducible,
        # spelled out because the caller needs to know the outcome.
        mirrored = tf.random.stateless_uniform([], seed=seeds[1], minval=0, maxval=1.0) < 0.5
        image = tf.cond(mirrored, lambda: tf.reverse(image, [1]), lambda: image)
    if cfg.brightness > 0:
        image = tf.image.stateless_random_brightness(image, cfg.brightness * 255.0, seed=seeds[2])
    if cfg.contrast > 0:
        image = tf.image.stateless_random_contrast(image, 1 - cfg.contrast, 1 + cfg.contrast, seed=seeds[3])
    return tf.clip_by_value(image, 0.0, 255.0), mirrored


def teacher_view(image: tf.Tensor, photo_seed: tf.Tensor, view: tf.Tensor, cfg: DataConfig, size: int) -> tf.Tensor:
    """Augmented view ``view`` (>= 2) of a photo (float32 0..255): the training augmentation drawn
    with the seed (photo, view), so the trainer shows the picture the teacher's cache labelled."""
    seed = tf.stack([tf.cast(photo_seed, tf.int64), tf.cast(view, tf.int64)])
    return augment(image, seed, cfg, size)[0]


def teacher_view_renderer(cfg: DataConfig, size: int):
    """``render(photos, seeds, view, teacher_size)``: uint8 [n, teacher_size, teacher_size, 3], view
    ``view`` of each photo (uint8 [n, size, size, 3]) as ``teacher_view`` draws it, resized for the
    teacher (``training.teacher.targets``). One traced function for every chunk and view."""

    @tf.function(reduce_retracing=True)
    def render(x, seeds, view, teacher_size):
        views = tf.map_fn(
            lambda a: teacher_view(a[0], a[1], view, cfg, size), (x, seeds), fn_output_signature=tf.float32
        )
        resized = tf.image.resize(views, tf.stack([teacher_size, teacher_size]), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    def run(photos: np.ndarray, seeds: np.ndarray, view: int, teacher_size: int) -> np.ndarray:
        args = (tf.constant(photos, tf.float32), tf.constant(seeds, tf.int64), tf.constant(view, tf.int64))
        return render(*args, tf.constant(teacher_size, tf.int32)).numpy()

    return run


def mix_batch(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor, mixup: float, cutmix: float):
    """One training batch (float32 images [B, H, W, 3], targets [B, C]) mixed with itself reversed,
    as timm's Mixup does: mixup blends whole images with weight lam ~ Beta(mixup, mixup); CutMix
    pastes a box of area ~ (1 - lam) of the partner in. The targets mix by the same lam (for CutMix
    the box's area once clipped to the image), so hard labels and teacher targets mix alike. With
    both alphas > 0 a fair coin picks one per batch. ``seed`` is a stateless [2] seed."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)

    def beta(alpha: float) -> tf.Tensor:
        g = tf.random.stateless_gamma([2], seed=seeds[1], alpha=alpha)
        return g[0] / (g[0] + g[1])

    partner, partner_targets = tf.reverse(images, [0]), tf.reverse(targets, [0])

    def blend():
        lam = beta(mixup)
        return lam * images + (1 - lam) * partner, lam

    def paste():
        lam = beta(cutmix)
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        cut = tf.sqrt(1 - lam)
        half_h = tf.cast(tf.cast(h, tf.float32) * cut, tf.int32) // 2
        half_w = tf.cast(tf.cast(w, tf.float32) * cut, tf.int32) // 2
        centre = tf.random.stateless_uniform([2], seed=seeds[2], minval=0, maxval=tf.int32.max, dtype=tf.int32)
        cy, cx = centre[0] % h, centre[1] % w
        y0, y1 = tf.maximum(cy - half_h, 0), tf.minimum(cy + half_h, h)
        x0, x1 = tf.maximum(cx - half_w, 0), tf.minimum(cx + half_w, w)
        rows, cols = tf.range(h)[:, None], tf.range(w)[None, :]
        box = tf.cast((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1), images.dtype)[..., None]
        area = tf.cast((y1 - y0) * (x1 - x0), tf.float32) / tf.cast(h * w, tf.float32)
        return images * (1 - box) + partner * box, 1 - area

    if mixup > 0 and cutmix > 0:
        use_cutmix = tf.random.stateless_uniform([], seed=seeds[0]) < 0.5
        mixed, lam = tf.cond(use_cutmix, paste, blend)
    else:
        mixed, lam = paste() if cutmix > 0 else blend()
    return mixed, lam * targets + (1 - lam) * partner_targets


def resolve_other_class(cfg: DataConfig, dataset: Dataset) -> str:
    """ "on" or "off": whether a run trains the hidden "other" output (``--other-class``; auto =
    when the dataset has non-office train photos). What config.json records."""
    has_others = bool(dataset.others_items("train"))
    if cfg.other_class == "on" and not has_others:
        raise ValueError(
            f"--other-class on: {dataset.root} has no non-office train photos "
            f"(add them with `python -m training.data import-others`)"
        )
    if not 0 < cfg.other_fraction < 1:
        raise ValueError(f"--other-fraction is a share in (0, 1), got {cfg.other_fraction}")
    return "on" if cfg.other_class == "on" or (cfg.other_class == "auto" and has_others) else "off"


class Pipeline:
    """The train and evaluation datasets of one run; decoded images are shared by all epochs.

    With ``cfg.other_class`` on (or auto, and a dataset with non-office photos) the labels have one
    more class, index ``num_classes`` ("other"): each training epoch mixes ``other_fraction`` of
    non-office photos of the train-side classes (a fresh seeded draw every epoch) into the office
    ones, and ``others_val`` / ``others_test`` are evaluation splits of the non-office photos.
    """

    def __init__(
        self,
        dataset: Dataset,
        cfg: DataConfig,
        image_size: int,
        num_classes: int,
        batch_size: int,
        seed: int = 0,
        soft_targets=None,
    ):
        self.cfg, self.size, self.num_classes = cfg, image_size, num_classes
        self.batch_size, self.seed = batch_size, seed
        # training.distill.DistillTargets: each training photo's target becomes a mix of its hard
        # label and the teacher's probabilities for the view it is shown (mirrored or not, or with
        # --teacher-views one of the augmented views the teacher saw).
        self.soft = soft_targets
        self.items = {split: dataset.items(split) for split in ("train", "val", "test")}
        self.other_class = resolve_other_class(cfg, dataset) == "on"
        if cfg.mixup < 0 or cfg.cutmix < 0:
            raise ValueError(f"--mixup and --cutmix are Beta alphas >= 0 (0 disables), got {cfg.mixup}, {cfg.cutmix}")
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
        """(path, label[, teacher probabilities of every view (and, with augmented views, the
        photo's view seed)]) per photo, in file order."""
        items = self.items[split]
        columns = (
            tf.constant([str(p) for p, _ in items], tf.string),
            tf.constant([label for _, label in items], tf.int32),
        )
        if self.soft is not None and split in TRAIN_SPLITS:
            paths = [p for p, _ in items]
            columns += (tf.constant(self.soft.probs(paths, [y for _, y in items]), tf.float32),)
            if self.soft.views > 2:
                columns += (tf.constant(self.soft.seeds(paths), tf.int64),)
        return tf.data.Dataset.from_tensor_slices(columns)

    def _load(self, path, label, *soft):
        return (crop_and_resize(decode(tf.io.read_file(path)), self.size, self.cfg.crop_fraction), label, *soft)

    def _decoded(self, files: tf.data.Dataset) -> tf.data.Dataset:
        """(uint8 image, label) in file order, cached in memory when it fits."""
        ds = files.map(self._load, num_parallel_calls=self.parallel)
        return ds.cache() if self.cached else ds

    def _to_model(self, image, label, *soft):
        image = tf.ensure_shape(tf.cast(image, tf.float32), (self.size, self.size, 3))
        return (image, tf.one_hot(label, self.outputs), *soft)

    def _target(self, image, onehot, mirrored, *soft):
        """(image, training target): the hard label, or its mix with the teacher's view."""
        if not soft:
            return image, onehot
        view = soft[0][tf.cast(mirrored, tf.int32)]
        return image, self.soft.mix(onehot, view)

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
            others = source["others_train"].shuffle(
                self.count("others_train"), seed=shuffle_seed + 1, reshuffle_each_iteration=False
            )
            ds, n = ds.concatenate(others.repeat().take(k)), n + k
        ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=False)
        if not self.cached:
            ds = ds.map(self._load, num_parallel_calls=self.parallel)
        ds = ds.enumerate().map(lambda i, row: (i, *self._to_model(*row)), num_parallel_calls=self.parallel)
        cfg, size = self.cfg, self.size
        epoch_key = tf.constant(self.seed * 1_000_003 + epoch, tf.int64)  # the augmentation seeds' first half

        views = self.soft.views if self.soft is not None else 2

        def variant(i, image, onehot, *soft):
            if not do_augment:
                return self._target(image, onehot, tf.constant(False), *soft)
            if views > 2 and soft:
                probs, photo_seed = soft
                # Its own key (negative, unlike every other seed here): which view this epoch shows.
                v = tf.random.stateless_uniform([], tf.stack([-1 - epoch_key, i]), 0, views, tf.int32)

                def fresh():  # views 0 and 1: as without augmented views
                    x, mirrored = augment(image, tf.stack([epoch_key, i]), cfg, size)
                    return self._target(x, onehot, mirrored, probs)

                def drawn():
                    return teacher_view(image, photo_seed, v, cfg, size), self.soft.mix(onehot, probs[v])

                return tf.cond(v >= 2, drawn, fresh)
            image, mirrored = augment(image, tf.stack([epoch_key, i]), cfg, size)
            return self._target(image, onehot, mirrored, *soft)

        ds = ds.map(variant, num_parallel_calls=self.parallel).batch(self.batch_size)
        if do_augment and (cfg.mixup > 0 or cfg.cutmix > 0):
            # Batch b's seed: the per-image ones are (.., position >= 0), so -1 - b never repeats one.
            ds = ds.enumerate().map(
                lambda b, batch: mix_batch(*batch, tf.stack([epoch_key, -1 - b]), cfg.mixup, cfg.cutmix),
                num_parallel_calls=self.parallel,
            )
        return ds.prefetch(AUTOTUNE)

    def evaluation(self, split: str, batch_size: int | None = None) -> tf.data.Dataset:
        """Unaugmented batches of one split, in the dataset's file order."""
        ds = self._images[split].map(
            lambda image, label, *soft: self._to_model(image, label)[:2], num_parallel_calls=self.parallel
        )
        return ds.batch(batch_size or self.batch_size).prefetch(AUTOTUNE)

    def labels(self, split: str) -> list[int]:
        return [label for _, label in self.items[split]]
