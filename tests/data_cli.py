"""The data CLI's imports from the shared photo sets, as many tests call them.

from data_cli import import_office, import_others
assert import_office(shared_datasets, tmp_path / "ds", "--per-class", "10") == 0
assert import_others(shared_datasets, tmp_path / "ds", "--per-class", "5", "--subset", "first") == 0
"""

from pathlib import Path

from training.data.cli import main


def import_office(shared_datasets: Path, out: Path, *flags: str) -> int:
    """``python -m training.data import`` of the shared Tiny ImageNet office photos into ``out``; its exit code."""
    return main(["import", "--from", str(shared_datasets / "tiny-imagenet-office20"), "--out", str(out), *flags])


def import_others(shared_datasets: Path, out: Path, *flags: str) -> int:
    """``python -m training.data import-others`` of the shared non-office photos into ``out``; its exit code."""
    return main(["import-others", "--from", str(shared_datasets / "tiny-imagenet-others"), "--out", str(out), *flags])
