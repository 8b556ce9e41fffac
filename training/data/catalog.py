"""Class catalogs: which WordNet ids a dataset holds, with human labels, in model output order.

Catalogs are data files beside this module (``catalogs/<name>.tsv``: ``wnid<TAB>label``), or any
such file given by path.

    from training.data.catalog import load_catalog
    classes = load_catalog("office20")        # [ClassInfo(wnid="n03085013", label="computer keyboard"), ...]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bundle.flags import setting

CATALOG_DIR = Path(__file__).parent / "catalogs"
DEFAULT_CATALOG = "office20"
WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class ClassInfo:
    wnid: str
    label: str


def catalog_names() -> list[str]:
    return sorted(p.stem for p in CATALOG_DIR.glob("*.tsv"))


def classes_setting():
    """The ``--classes`` field of every source's config (import, download, fetch)."""
    return setting(
        DEFAULT_CATALOG,
        f"class catalog: one of {', '.join(catalog_names())}, or a path to a wnid<TAB>label file",
        metavar="CATALOG",
    )


def load_catalog(name_or_path: str | Path = DEFAULT_CATALOG) -> list[ClassInfo]:
    """A catalog by name (see ``catalog_names()``) or by path to a ``wnid<TAB>label`` file."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CATALOG_DIR / f"{name_or_path}.tsv"
    if not path.is_file():
        raise ValueError(
            f"unknown class catalog {str(name_or_path)!r}: not a file, and not one of {', '.join(catalog_names())}"
        )
    classes, seen = [], set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not WNID.match(parts[0]) or not parts[1].strip():
            raise ValueError(f"{path}:{n}: expected 'wnid<TAB>label' (e.g. n03085013<TAB>computer keyboard)")
        if parts[0] in seen:
            raise ValueError(f"{path}:{n}: {parts[0]} is listed twice")
        seen.add(parts[0])
        classes.append(ClassInfo(parts[0], parts[1].strip()))
    if not classes:
        raise ValueError(f"{path}: the catalog lists no classes")
    return classes
