"""What the pruning fine-tune trains on: the run's own pipeline, without its mixup/CutMix unless
``--prune-mix`` asks for them."""

from __future__ import annotations

import dataclasses

import numpy as np

from export.config import build_parser, config_from_args
from export.inputs import load_source
from export.pipeline import train_pipeline


def _mixup_source(run):
    """The tiny run as if it had trained with --mixup 0.4 (the data settings are all export reads)."""
    src = load_source(run)
    data = dataclasses.replace(src.run.config.data, mixup=0.4)
    config = dataclasses.replace(src.run.config, data=data)
    return dataclasses.replace(src, run=dataclasses.replace(src.run, config=config))


def _first_batch_targets(src, mix: bool) -> np.ndarray:
    _, targets = next(iter(train_pipeline(src, 64, mix).train(0)))
    return targets.numpy()


def test_the_fine_tune_of_a_mixup_run_sees_unmixed_batches_unless_asked(tiny_run):
    src = _mixup_source(tiny_run)
    plain = _first_batch_targets(src, mix=False)
    mixed = _first_batch_targets(src, mix=True)
    # The tiny run has no teacher and no label smoothing in its targets: unmixed rows are one-hot.
    assert np.array_equal(plain.max(1), np.ones(len(plain))) and np.array_equal(plain.sum(1), plain.max(1))
    # Mixed rows share their weight between a photo's class and its partner's.
    blended = (mixed > 0).sum(1) == 2
    assert blended.sum() >= len(mixed) // 2, "mixup 0.4 blends most rows of two different classes"
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-6)


def test_prune_mix_is_off_by_default_and_a_flag_turns_it_on():
    parser = build_parser()
    assert config_from_args(parser.parse_args(["--run", "r", "--out", "b"])).prune.mix is False
    assert config_from_args(parser.parse_args(["--run", "r", "--out", "b", "--prune-mix"])).prune.mix is True
