"""The ``stats`` tool: what a dataset holds, as a table and as a contact sheet of sample photos.

The table gives per-class counts per split and the train-only mean/std recorded in dataset.json;
the contact sheet (PNG, Pillow only) shows one row per class of evenly spaced photos of a split,
so wrong classes, placeholders or near-empty folders are visible at a glance.

    from training.data.stats import StatsConfig, describe, contact_sheet
    print(describe(load_dataset("data/office20")))
    contact_sheet(load_dataset("data/office20"), StatsConfig(root="data/office20"))
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from bundle.atomic import write_bytes_atomic
from bundle.flags import REQUIRED, positive, setting
from bundle.images import ImageError, decode_image
from training.data.dataset import SPLITS, Dataset

LABEL_WIDTH = 160
GAP = 2


@dataclass
class StatsConfig:
    root: str = setting(REQUIRED, "dataset folder (with dataset.json)", metavar="ROOT", positional=True)
    sheet: str | None = setting(None, "PNG to write (default: ROOT/contact_sheet.png)", metavar="FILE")
    samples: int = setting(8, "photos per class", type=positive, metavar="N")
    thumb: int = setting(64, "size of each photo", type=positive, metavar="PX")
    split: str = setting("train", "which split's photos to show", SPLITS)
    draw: bool = setting(True, "print the table only", flag="--no-sheet")  # read by the stats command


def describe(ds: Dataset) -> str:
    """A plain-text table: counts per class and split, totals, mean/std, sizes, source."""
    counts = ds.meta["counts"]
    width = max(len(c.label) for c in ds.classes)
    head = f"{'#':>3}  {'wnid':<9}  {'label':<{width}}  " + "  ".join(f"{s:>6}" for s in SPLITS) + f"  {'total':>6}"
    lines = [
        f"dataset {ds.id} ({ds.meta['catalog']}, source: {ds.meta['source'].get('kind', '?')}) at {ds.root}",
        head,
        "-" * len(head),
    ]
    for i, c in enumerate(ds.classes):
        row = [counts[s][c.wnid] for s in SPLITS]
        lines.append(
            f"{i:>3}  {c.wnid:<9}  {c.label:<{width}}  " + "  ".join(f"{n:>6}" for n in row) + f"  {sum(row):>6}"
        )
    totals = [sum(counts[s].values()) for s in SPLITS]
    lines += [
        "-" * len(head),
        f"{'':>3}  {'all':<9}  {'':<{width}}  " + "  ".join(f"{n:>6}" for n in totals) + f"  {sum(totals):>6}",
        f"mean RGB {ds.mean}  std RGB {ds.std}  (0..255, {ds.meta['stats']['images']} train images only)",
        "image size: median {median_width}x{median_height}, smallest side {min_side} px".format(
            **ds.meta["image_size"]
        ),
    ]
    if "others" in ds.meta:
        others = ds.meta["others"]
        lines.append(
            f"others (not office objects, split by class): {len(others['classes'])} classes "
            f"{others['counts']['classes']}, photos {others['counts']['files']}"
        )
    return "\n".join(lines)


def _evenly(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / max(n - 1, 1)
    return [items[round(i * step)] for i in range(n)]


def contact_sheet(ds: Dataset, cfg: StatsConfig) -> Path:
    """Write the sheet PNG atomically; returns its path."""
    by_class: dict[int, list[Path]] = {}
    for path, label in ds.items(cfg.split):
        by_class.setdefault(label, []).append(path)
    cell = cfg.thumb + GAP
    sheet = Image.new("RGB", (LABEL_WIDTH + cfg.samples * cell, len(ds.classes) * cell + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, c in enumerate(ds.classes):
        y = GAP + row * cell
        shown = _evenly(by_class.get(row, []), cfg.samples)
        draw.text((4, y + cfg.thumb // 2 - 12), f"{row} {c.label}", fill="black", font=font)
        draw.text(
            (4, y + cfg.thumb // 2 + 2), f"{c.wnid} ({len(by_class.get(row, []))} {cfg.split})", fill="gray", font=font
        )
        for col, path in enumerate(shown):
            try:
                img = decode_image(path.read_bytes())
            except ImageError:  # the dataset was edited after it was built: show a red tile, go on
                img = Image.new("RGB", (cfg.thumb, cfg.thumb), (200, 0, 0))
            sheet.paste(ImageOps.fit(img, (cfg.thumb, cfg.thumb)), (LABEL_WIDTH + col * cell, y))
    out = Path(cfg.sheet) if cfg.sheet else ds.root / "contact_sheet.png"
    buf = io.BytesIO()
    sheet.save(buf, "PNG", optimize=True)
    write_bytes_atomic(out, buf.getvalue())
    return out
