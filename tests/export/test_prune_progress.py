"""Pruning says what it is doing: one line per fine-tuning epoch with loss, sparsity and an ETA."""

from __future__ import annotations

import re

import pytest

from export.config import PruneConfig
from export.prune import overall_sparsity, prune_model
from training.config import DataConfig, ModelConfig
from training.data.dataset import load_dataset
from training.model import build_model
from training.pipeline import Pipeline

LINE = re.compile(
    r"^pruning fine-tune epoch (\d+)/3: loss (\d+\.\d{4}), accuracy (0\.\d{4}|1\.0000), "
    r"sparsity (0\.\d\d), (\d+) s/epoch, ETA (\d+m\d\ds|\d+s)$"
)


@pytest.mark.slow  # ~1.5 min on 2 busy cores: a real 3-epoch pruning fine-tune
def test_each_fine_tuning_epoch_prints_loss_sparsity_and_eta(tiny_dataset, capsys):
    ds = load_dataset(tiny_dataset)
    pipe = Pipeline(ds, DataConfig(), image_size=32, num_classes=20, batch_size=64)
    model = build_model(ModelConfig(width=16, fc_units=64), 32, 20, ds.mean, ds.std)
    capsys.readouterr()
    pruned, rows = prune_model(
        model, pipe.train, pipe.epoch_size(), PruneConfig(target_sparsity=0.5, epochs=3, batch_size=64)
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("pruning")]
    found = [LINE.match(line) for line in lines]
    assert len(lines) == 3 and all(found), lines
    assert [int(m.group(1)) for m in found] == [1, 2, 3]
    sparsity = [float(m.group(4)) for m in found]
    # The masks ramp up to the target (0.5), which the stripped kernels then hold.
    assert sparsity[0] < sparsity[-1] and abs(sparsity[-1] - 0.5) <= 0.01
    assert abs(overall_sparsity(rows) - sparsity[-1]) <= 0.01
    assert found[-1].group(6) == "0s", "after the last epoch nothing is left to wait for"
