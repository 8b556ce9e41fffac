"""``python -m training.data``: build an officenet dataset (``ROOT/<wnid>/*`` + ``ROOT/dataset.json``).

    python -m training.data fetch --out data/office20                     # the default (make data)
    python -m training.data import --from ~/imagenet/train --out data/desk --classes office20-imagenet
    python -m training.data download --urls urls.tsv --out data/office20
    python -m training.data stats data/office20
    python -m training.data import-others --out data/office20   # non-office photos: local folder, else the zip

In-process (tests, fixtures): ``main(["import", "--from", DIR, "--out", ROOT, "--per-class", "60"])``.
Expected failures (a missing class, an offline machine, a bad flag) print one ``error:`` line and
return 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys

from training.data.catalog import DEFAULT_CATALOG, catalog_names
from training.data.dataset import SPLITS, DatasetError, load_dataset
from training.data.download import DEFAULT_PLACEHOLDERS, REPORT_FILE, DownloadConfig, download
from training.data.errors import SourceError
from training.data.fetch import DEFAULT_LOCAL, LOCAL_ENV, ArchiveConfig, FetchConfig, fetch
from training.data.importer import SUBSETS, ImportConfig, import_images
from training.data.others import LOCAL_ENV as OTHERS_ENV
from training.data.others import SHARED_FOLDER, NoOthers, OthersConfig, import_others
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


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default worth showing."""

    def _get_help_string(self, action):
        if action.required or action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
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
        formatter_class=_Help)
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


def _add_download(sub) -> None:
    d = DownloadConfig(urls="", out="")
    p = sub.add_parser(
        "download", help="download photos from a wnid<TAB>url list (ImageNet's URL lists)",
        description="Download the photos of a 'wnid<TAB>url' list (ImageNet's 'n02769748_1234<TAB>url' "
                    "lines work too) for the catalog's classes, with bounded concurrency, a per-host "
                    "limit, timeouts and retries with backoff. A photo is kept only if it is HTTP 200, "
                    "image/*, not a placeholder, big enough, fully decodable and not a duplicate; "
                    f"ROOT/{REPORT_FILE} counts the rest by reason, overall and per class. Resumable: "
                    "re-run the same command after a crash or Ctrl-C (files are written atomically).",
        formatter_class=_Help)
    io = p.add_argument_group("input and output")
    io.add_argument("--urls", required=True, metavar="FILE", help="the wnid<TAB>url list")
    io.add_argument("--out", required=True, metavar="ROOT", help="dataset folder to write")
    _add_classes(io)
    io.add_argument("--seed", type=int, default=d.seed, help="seed of the train/val/test split")
    net = p.add_argument_group("network")
    net.add_argument("--workers", type=_positive, default=d.workers, help="concurrent downloads in all")
    net.add_argument("--per-host", type=_positive, default=d.per_host, metavar="N",
                     help="concurrent downloads per host (politeness)")
    net.add_argument("--timeout", type=float, default=d.timeout, metavar="SECONDS",
                     help="limit for one attempt, from connecting to the last byte")
    net.add_argument("--retries", type=int, default=d.retries, metavar="N",
                     help="extra attempts after a transient failure (5xx, 429, timeout, reset)")
    net.add_argument("--backoff", type=float, default=d.backoff, metavar="SECONDS",
                     help="wait before the first retry, doubled for each next one (or the server's Retry-After)")
    keep = p.add_argument_group("what is kept")
    keep.add_argument("--min-bytes", type=_positive, default=d.min_bytes, metavar="N",
                      help="smaller files are rejected as too_small")
    keep.add_argument("--max-bytes", type=_positive, default=d.max_bytes, metavar="N",
                      help="larger responses are abandoned")
    keep.add_argument("--placeholders", default=str(DEFAULT_PLACEHOLDERS), metavar="FILE",
                      help="JSON with sha256, url_markers and sizes ([w, h]) of 'photo unavailable' images")
    p.set_defaults(run=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    cfg = DownloadConfig(urls=args.urls, out=args.out, classes=args.classes, workers=args.workers,
                         per_host=args.per_host, timeout=args.timeout, retries=args.retries,
                         backoff=args.backoff, min_bytes=args.min_bytes, max_bytes=args.max_bytes,
                         placeholders=args.placeholders, seed=args.seed)
    ds = download(cfg)
    counts = ds.meta["source"]["counts"]
    print("download: " + ", ".join(f"{reason} {n}" for reason, n in counts.items()))
    _print_summary(ds)
    return 0


def _add_fetch(sub) -> None:
    d = FetchConfig(out="")
    p = sub.add_parser(
        "fetch", help="the default dataset: Tiny ImageNet's office classes (local copy, else the public zip)",
        description="Build the default dataset (what `make data` runs). If a local Tiny ImageNet copy "
                    f"exists (--local, else ${LOCAL_ENV}, else {DEFAULT_LOCAL}) it is imported; "
                    "otherwise the public Tiny ImageNet zip is downloaded into the cache, its checksum "
                    "verified, and only the catalog's classes extracted and imported. Offline, it "
                    "says how to import a local folder instead. `make data` then adds the non-office "
                    "classes with import-others (a local folder, else the same zip).",
        formatter_class=_Help)
    io = p.add_argument_group("output and classes")
    io.add_argument("--out", required=True, metavar="ROOT", help="dataset folder to write")
    _add_classes(io)
    io.add_argument("--per-class", type=_positive, default=None, metavar="N",
                    help="keep a deterministic subset of N photos per class (default: all)")
    io.add_argument("--seed", type=int, default=d.seed, help="seed of the subset and of the split")
    src = p.add_argument_group("where from")
    src.add_argument("--local", metavar="DIR", default=None,
                     help=f"a local Tiny ImageNet folder (default: ${LOCAL_ENV}, else the shared copy if present)")
    src.add_argument("--no-local", dest="use_local", action="store_false",
                     help="ignore local copies: always use the archive")
    _add_archive(src)
    p.set_defaults(run=_run_fetch)


def _add_archive(group: argparse._ArgumentGroup) -> None:
    """The Tiny ImageNet archive's flags (fetch and import-others share the archive and its cache)."""
    d = ArchiveConfig()
    group.add_argument("--url", default=d.url, help="the archive to download")
    group.add_argument("--checksum", default=d.checksum, metavar="ALGO:HEX",
                       help="expected md5:... or sha256:... of the archive")
    group.add_argument("--cache", default=d.cache, metavar="DIR",
                       help="where the archive and the extracted classes are kept ($OFFICENET_CACHE)")
    group.add_argument("--timeout", type=float, default=d.timeout, metavar="SECONDS",
                       help="how long a stalled download may wait for data")
    group.add_argument("--retries", type=int, default=d.retries, metavar="N", help="download retries")


def _archive_args(args: argparse.Namespace) -> dict:
    return {"url": args.url, "checksum": args.checksum, "cache": args.cache, "timeout": args.timeout,
            "retries": args.retries}


def _run_fetch(args: argparse.Namespace) -> int:
    cfg = FetchConfig(out=args.out, classes=args.classes, local=args.local, use_local=args.use_local,
                      per_class=args.per_class, seed=args.seed, **_archive_args(args))
    _print_summary(fetch(cfg))
    return 0


def _add_others(sub) -> None:
    d = OthersConfig(out="")
    p = sub.add_parser(
        "import-others", help="add non-office photos (split by class) to an existing dataset",
        description="Add non-office photos to an existing dataset, for the 'not an office object' "
                    "decision (make data runs this after the office source): a Tiny ImageNet layout "
                    "folder is copied into ROOT/others/<wnid>/ and recorded in dataset.json under 'others', "
                    "split BY CLASS: train-side classes (files split train/val) and evaluation-only "
                    "classes (files split test), never sharing a class. When it adds none (--from none, "
                    "or offline with no local folder) it says so and leaves the dataset as it was.",
        formatter_class=_Help)
    io = p.add_argument_group("input and output")
    io.add_argument("--from", dest="source", default=d.source, metavar="DIR|auto|archive|none",
                    help=f"a Tiny ImageNet layout folder; 'archive': every class of the Tiny ImageNet zip "
                         f"that the dataset lacks (the zip fetch downloads, same cache); 'auto': ${OTHERS_ENV}, "
                         f"else the shared {SHARED_FOLDER} folder if present, else the archive; 'none': add nothing")
    io.add_argument("--out", required=True, metavar="ROOT", help="an existing dataset (made by fetch/import/download)")
    sel = p.add_argument_group("selection and split")
    sel.add_argument("--per-class", type=_positive, default=None, metavar="N",
                     help="keep a deterministic subset of N photos per class (default: all)")
    sel.add_argument("--subset", choices=SUBSETS, default=d.subset,
                     help="which N: 'hash' a seeded sample of the class; 'first' the first N by Tiny ImageNet "
                          "index, the same photos however many the class holds (for fixtures)")
    sel.add_argument("--eval-fraction", type=float, default=d.eval_fraction, metavar="F",
                     help="share of the classes kept for evaluation only")
    sel.add_argument("--val-fraction", type=float, default=d.val_fraction, metavar="F",
                     help="share of a train-side class's photos held out for calibration")
    sel.add_argument("--seed", type=int, default=d.seed, help="seed of the class split and the subset")
    how = p.add_argument_group("how")
    how.add_argument("--link", action="store_true", help="hard-link (or symlink) instead of copying")
    how.add_argument("--workers", type=_positive, default=d.workers, help="decoding threads")
    _add_archive(p.add_argument_group("the archive (--from archive, or auto without a local folder)"))
    p.set_defaults(run=_run_others)


def _run_others(args: argparse.Namespace) -> int:
    cfg = OthersConfig(source=args.source, out=args.out, per_class=args.per_class, subset=args.subset,
                       eval_fraction=args.eval_fraction, val_fraction=args.val_fraction, seed=args.seed,
                       link=args.link, workers=args.workers, **_archive_args(args))
    try:
        others = import_others(cfg).meta["others"]
    except NoOthers as e:
        earlier = load_dataset(cfg.out).others
        print(f"no non-office photos added: {e}. "
              + (f"{cfg.out} keeps the {len(earlier['files'])} of an earlier import-others."
                 if earlier else "Without them the model can't learn to say 'not an office object'; "
                 f"add them with: python -m training.data import-others --from DIR --out {cfg.out}"))
        return 0
    print(f"others: {len(others['classes'])} classes ({others['counts']['classes']}), "
          f"files by split {others['counts']['files']}, in {cfg.out}/others")
    return 0


def _add_stats(sub) -> None:
    d = StatsConfig(root="")
    p = sub.add_parser(
        "stats", help="per-class/per-split counts, train mean/std, and a contact sheet PNG",
        description="Print what a dataset holds (counts per class and split, the train-only mean/std "
                    "from dataset.json, image sizes) and draw a contact sheet: one row of sample "
                    "photos per class.",
        formatter_class=_Help)
    p.add_argument("root", metavar="ROOT", help="dataset folder (with dataset.json)")
    sheet = p.add_argument_group("contact sheet")
    sheet.add_argument("--sheet", metavar="FILE", default=None, help="PNG to write (default: ROOT/contact_sheet.png)")
    sheet.add_argument("--no-sheet", action="store_true", help="print the table only")
    sheet.add_argument("--samples", type=_positive, default=d.samples, metavar="N", help="photos per class")
    sheet.add_argument("--thumb", type=_positive, default=d.thumb, metavar="PX", help="size of each photo")
    sheet.add_argument("--split", choices=SPLITS, default=d.split, help="which split's photos to show")
    p.set_defaults(run=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    ds = load_dataset(args.root)
    print(describe(ds))
    if not args.no_sheet:
        cfg = StatsConfig(root=args.root, sheet=args.sheet, samples=args.samples, thumb=args.thumb,
                          split=args.split)
        print(f"contact sheet: {contact_sheet(ds, cfg)}")
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
