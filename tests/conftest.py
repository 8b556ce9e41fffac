"""Session fixtures: one tiny real dataset -> trained run -> exported bundle, shared by all tests.

Each fixture calls the stage's own CLI entry point in-process, exactly as `make data train export`
does, on real photos from ../shared/datasets, at tiny settings so the chain takes about a minute
on 2 cores. Tests that need a model depend on ``tiny_run`` or ``tiny_bundle`` and are marked slow.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from recipes import TINY_TRAIN_FLAGS

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OFFICENET_SHARED", REPO.parent / "shared")) / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (real ImageNet photos); tests needing it skip outside this workplace."""
    if not (SHARED / "tiny-imagenet-office20").is_dir():
        pytest.skip(f"real photos not found at {SHARED} (set OFFICENET_SHARED to the shared/ folder)")
    return SHARED


@pytest.fixture(scope="session")
def sample_photos(shared_datasets) -> list[Path]:
    """Full-size golden ImageNet photos, one per class (imagenet-samples/images)."""
    return sorted((shared_datasets / "imagenet-samples" / "images").glob("*.JPEG"))


@pytest.fixture(scope="session")
def tiny_dataset(shared_datasets, tmp_path_factory) -> Path:
    """20 office classes x 60 real Tiny ImageNet photos, imported by the data stage's CLI."""
    from training.data.cli import main

    root = tmp_path_factory.mktemp("data") / "office20"
    rc = main(
        ["import", "--from", str(shared_datasets / "tiny-imagenet-office20"), "--out", str(root), "--per-class", "60"]
    )
    assert rc == 0 and (root / "dataset.json").is_file()
    return root


@pytest.fixture(scope="session")
def others_dataset(tiny_dataset, shared_datasets, tmp_path_factory) -> Path:
    """A copy of the tiny dataset plus 5 photos of each non-office class (``import-others``): the
    first 5 by Tiny ImageNet index, the same photos however many the shared set holds per class."""
    import shutil

    from data_cli import import_others

    root = tmp_path_factory.mktemp("others") / "office20"
    shutil.copytree(tiny_dataset, root)
    assert import_others(shared_datasets, root, "--per-class", "5", "--subset", "first") == 0
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """A real model trained for a few epochs at 32 px by the trainer's CLI."""
    from training.train import main

    run = tmp_path_factory.mktemp("run") / "run"
    rc = main(["--data", str(tiny_dataset), "--out", str(run), *TINY_TRAIN_FLAGS])
    assert rc == 0 and (run / "model.keras").is_file()
    return run


@pytest.fixture(scope="session")
def other_run(others_dataset, tmp_path_factory) -> Path:
    """The tiny run's recipe with the hidden "other" output trained on the non-office photos."""
    from training.train import main

    run = tmp_path_factory.mktemp("run-other") / "run"
    rc = main(["--data", str(others_dataset), "--out", str(run), *TINY_TRAIN_FLAGS, "--other-class", "on"])
    assert rc == 0 and (run / "model.keras").is_file()
    return run


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, tmp_path_factory) -> Path:
    """The tiny run pruned, int8-quantized, parity-gated and published by export's CLI."""
    from export.cli import main

    bundle = tmp_path_factory.mktemp("bundle") / "bundle"
    rc = main(
        [
            "--run",
            str(tiny_run),
            "--out",
            str(bundle),
            "--prune-epochs",
            "3",
            "--prune-lr",
            "0.001",
            "--batch-size",
            "32",
            "--calibration-images",
            "100",
            "--min-agreement",
            "0.9",
            "--max-accuracy-drop",
            "5",
        ]
    )
    assert rc == 0 and (bundle / "manifest.json").is_file()
    return bundle
