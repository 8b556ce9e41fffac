"""``python -m training.data``: build an officenet dataset (``ROOT/<wnid>/*`` + ``ROOT/dataset.json``).

    python -m training.data fetch --out data/office20                     # the default (make data)
    python -m training.data import --from ~/imagenet/train --out data/desk --classes office20-imagenet
    python -m training.data download --urls urls.tsv --out data/office20
    python -m training.data stats data/office20
    python -m training.data import-others --out data/office20   # non-office photos: local folder, else the zip

In-process (tests, fixtures): ``main(["import", "--from", DIR, "--out", ROOT, "--per-class", "60"])``.
Expected failures (a missing class, an offline machine, a bad flag) print one ``error:`` line and
return 2; no traceback. Each subcommand's flags are the fields of its source's config dataclass
(``ImportConfig``, ``DownloadConfig``, ``FetchConfig``, ``OthersConfig``, ``StatsConfig``) made
with ``bundle.flags.setting``: a new flag is one field, its help beside it.
"""

from __future__ import annotations

import argparse
import sys

from bundle.flags import add_group, given
from training.data.dataset import DatasetError, load_dataset
from training.data.download import REPORT_FILE, DownloadConfig, download
from training.data.errors import SourceError
from training.data.fetch import DEFAULT_LOCAL, LOCAL_ENV, FetchConfig, fetch
from training.data.importer import ImportConfig, import_images
from training.data.others import NoOthers, OthersConfig, import_others
from training.data.stats import StatsConfig, contact_sheet, describe

EPILOG = """\
examples:
  python -m training.data fetch --out data/office20
  python -m training.data import --from ~/imagenet/train --out data/desk --classes office20-imagenet
  python -m training.data import --from ../shared/datasets/tiny-imagenet-office20 --out /tmp/tiny --per-class 60
  python -m training.data download --urls urls.tsv --out data/office20 --workers 8 --per-host 2
  python -m training.data stats data/office20
  python -m training.data import-others --out data/office20

Every source writes ROOT/<wnid>/<photo> and ROOT/dataset.json (classes in model order,
a deterministic train/val/test split, train-only mean/std, sha256 of every file).
Run `python -m training.data SUBCOMMAND --help` for the flags of each source."""


def _subcommand(sub, name: str, cls: type, title: str, run, **texts) -> None:
    """A subcommand whose flags are ``cls``'s fields (bundle.flags); ``run(cfg)`` does the work."""
    p = sub.add_parser(name, **texts)
    add_group(p, name, cls, title=title)
    p.set_defaults(run=lambda args: run(cls(**given(args, name))))


def _add_import(sub) -> None:
    _subcommand(
        sub,
        "import",
        ImportConfig,
        "input, selection and how",
        _run_import,
        help="copy a catalog's classes out of a local folder (ImageNet, Tiny ImageNet, class folders)",
        description="Pick the catalog's classes out of a local photo folder, fully decode every photo, "
        "and write them to ROOT/<wnid>/ with dataset.json. Layouts: an extracted Tiny "
        "ImageNet (train/<wnid>/images + val/val_annotations.txt, both used), an ImageNet "
        "train tree (<wnid>/*.JPEG), or any <class>/<images> folder named by wnid or label. "
        "ROOT's class folders end up holding exactly this import; re-running is a no-op.",
    )


def _run_import(cfg: ImportConfig) -> int:
    _print_summary(import_images(cfg))
    return 0


def _add_download(sub) -> None:
    _subcommand(
        sub,
        "download",
        DownloadConfig,
        "input and output",
        _run_download,
        help="download photos from a wnid<TAB>url list (ImageNet's URL lists)",
        description="Download the photos of a 'wnid<TAB>url' list (ImageNet's 'n02769748_1234<TAB>url' "
        "lines work too) for the catalog's classes, with bounded concurrency, a per-host "
        "limit, timeouts and retries with backoff. A photo is kept only if it is HTTP 200, "
        "image/*, not a placeholder, big enough, fully decodable and not a duplicate; "
        f"ROOT/{REPORT_FILE} counts the rest by reason, overall and per class. Resumable: "
        "re-run the same command after a crash or Ctrl-C (files are written atomically).",
    )


def _run_download(cfg: DownloadConfig) -> int:
    ds = download(cfg)
    counts = ds.meta["source"]["counts"]
    print("download: " + ", ".join(f"{reason} {n}" for reason, n in counts.items()))
    _print_summary(ds)
    return 0


def _add_fetch(sub) -> None:
    _subcommand(
        sub,
        "fetch",
        FetchConfig,
        "output, classes and where from",
        _run_fetch,
        help="the default dataset: Tiny ImageNet's office classes (local copy, else the public zip)",
        description="Build the default dataset (what `make data` runs). If a local Tiny ImageNet copy "
        f"exists (--local, else ${LOCAL_ENV}, else {DEFAULT_LOCAL}) it is imported; "
        "otherwise the public Tiny ImageNet zip is downloaded into the cache, its checksum "
        "verified, and only the catalog's classes extracted and imported. Offline, it "
        "says how to import a local folder instead. `make data` then adds the non-office "
        "classes with import-others (a local folder, else the same zip).",
    )


def _run_fetch(cfg: FetchConfig) -> int:
    _print_summary(fetch(cfg))
    return 0


def _add_others(sub) -> None:
    _subcommand(
        sub,
        "import-others",
        OthersConfig,
        "input, selection and split",
        _run_others,
        help="add non-office photos (split by class) to an existing dataset",
        description="Add non-office photos to an existing dataset, for the 'not an office object' "
        "decision (make data runs this after the office source): a Tiny ImageNet layout "
        "folder is copied into ROOT/others/<wnid>/ and recorded in dataset.json under 'others', "
        "split BY CLASS: train-side classes (files split train/val) and evaluation-only "
        "classes (files split test), never sharing a class. When it adds none (--from none, "
        "or offline with no local folder) it says so and leaves the dataset as it was.",
    )


def _run_others(cfg: OthersConfig) -> int:
    try:
        others = import_others(cfg).meta["others"]
    except NoOthers as e:
        earlier = load_dataset(cfg.out).others
        print(
            f"no non-office photos added: {e}. "
            + (
                f"{cfg.out} keeps the {len(earlier['files'])} of an earlier import-others."
                if earlier
                else "Without them the model can't learn to say 'not an office object'; "
                f"add them with: python -m training.data import-others --from DIR --out {cfg.out}"
            )
        )
        return 0
    print(
        f"others: {len(others['classes'])} classes ({others['counts']['classes']}), "
        f"files by split {others['counts']['files']}, in {cfg.out}/others"
    )
    return 0


def _add_stats(sub) -> None:
    _subcommand(
        sub,
        "stats",
        StatsConfig,
        "dataset and contact sheet",
        _run_stats,
        help="per-class/per-split counts, train mean/std, and a contact sheet PNG",
        description="Print what a dataset holds (counts per class and split, the train-only mean/std "
        "from dataset.json, image sizes) and draw a contact sheet: one row of sample "
        "photos per class.",
    )


def _run_stats(cfg: StatsConfig) -> int:
    ds = load_dataset(cfg.root)
    print(describe(ds))
    if cfg.draw:
        print(f"contact sheet: {contact_sheet(ds, cfg)}")
    return 0


def _print_summary(ds) -> None:
    counts = ds.meta["counts"]
    total = {s: sum(counts[s].values()) for s in counts}
    src = ds.meta["source"]
    rejected = sum(src.get("rejected", {}).values())
    print(
        f"dataset {ds.id} at {ds.root}: {len(ds.classes)} classes, "
        f"{total['train']} train / {total['val']} val / {total['test']} test images"
        + (f", {rejected} photos rejected ({src['rejected']})" if rejected else "")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.data",
        description="Build an officenet dataset from one source.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="sources and tools", metavar="SUBCOMMAND", required=True)
    _add_fetch(sub)
    _add_import(sub)
    _add_download(sub)
    _add_stats(sub)
    _add_others(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage + error (or --help)
        return int(e.code or 0)
    try:
        return args.run(args)
    except (SourceError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
