"""``python -m training.data``: build an officenet dataset (``ROOT/<wnid>/*`` + ``ROOT/dataset.json``).

    python -m training.data fetch --out data/office20                     # the default (make data)
    python -m training.data import --from ~/imagenet/train --out data/desk --classes office20-imagenet
    python -m training.data download --urls urls.tsv --out data/office20
    python -m training.data stats data/office20

In-process (tests, fixtures): ``main(["import", "--from", DIR, "--out", ROOT, "--per-class", "60"])``.
Expected failures (a missing class, an offline machine, a bad flag) print one ``error:`` line and
return 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys

from training.data.catalog import DEFAULT_CATALOG, catalog_names
from training.data.dataset import DatasetError
from training.data.errors import SourceError
from training.data.importer import ImportConfig, import_images

EPILOG = """\
Every source writes ROOT/<wnid>/<photo> and ROOT/dataset.json (classes in model order,
a deterministic train/val/test split, train-only mean/std, sha256 of every file).
Run `python -m training.data SUBCOMMAND --help` for the flags of each source."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_classes(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--classes", default=DEFAULT_CATALOG, metavar="CATALOG",
                       help=f"class catalog: one of {', '.join(catalog_names())}, or a path to a "
                            f"wnid<TAB>label file (default: %(default)s)")


def _add_import(sub) -> None:
    p = sub.add_parser(
        "import", help="copy a catalog's classes out of a local folder (ImageNet, Tiny ImageNet, class folders)",
        description="Pick the catalog's classes out of a local photo folder, fully decode every photo, "
                    "and write them to ROOT/<wnid>/ with dataset.json. Layouts: an extracted Tiny "
                    "ImageNet (train/<wnid>/images + val/val_annotations.txt, both used), an ImageNet "
                    "train tree (<wnid>/*.JPEG), or any <class>/<images> folder named by wnid or label. "
                    "ROOT's class folders end up holding exactly this import; re-running is a no-op.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    io = p.add_argument_group("input and output")
    io.add_argument("--from", dest="source", required=True, metavar="DIR", help="folder to read")
    io.add_argument("--out", required=True, metavar="ROOT", help="dataset folder to write")
    sel = p.add_argument_group("selection")
    _add_classes(sel)
    sel.add_argument("--per-class", type=_positive, default=None, metavar="N",
                     help="keep a deterministic subset of N decodable photos per class (default: all)")
    sel.add_argument("--seed", type=int, default=0, help="seed of the subset and of the train/val/test split")
    how = p.add_argument_group("how")
    how.add_argument("--link", action="store_true",
                     help="hard-link the photos (symlink across filesystems) instead of copying")
    how.add_argument("--workers", type=_positive, default=4, help="decoding threads")
    p.set_defaults(run=_run_import)


def _run_import(args: argparse.Namespace) -> int:
    cfg = ImportConfig(source=args.source, out=args.out, classes=args.classes, per_class=args.per_class,
                       seed=args.seed, link=args.link, workers=args.workers)
    ds = import_images(cfg)
    _print_summary(ds)
    return 0


def _print_summary(ds) -> None:
    counts = ds.meta["counts"]
    total = {s: sum(counts[s].values()) for s in counts}
    src = ds.meta["source"]
    rejected = sum(src.get("rejected", {}).values())
    print(f"dataset {ds.id} at {ds.root}: {len(ds.classes)} classes, "
          f"{total['train']} train / {total['val']} val / {total['test']} test images"
          + (f", {rejected} photos rejected ({src['rejected']})" if rejected else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.data", description="Build an officenet dataset from one source.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="sources and tools", metavar="SUBCOMMAND", required=True)
    _add_import(sub)
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
