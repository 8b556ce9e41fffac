"""The ``download`` source: fetch photos from a ``wnid<TAB>url`` list into a dataset, politely.

Each line is ``wnid<TAB>url`` (ImageNet's ``n02769748_1234<TAB>url`` form works too: the image id
names the file). Lines of classes outside the catalog are skipped. A photo is kept only if:
HTTP 200 (after redirects), an ``image/*`` Content-Type, not a known placeholder (sha256, final
URL marker, or width x height: see ``placeholders.json``), at least ``min_bytes`` long, fully
decodable (``bundle.images.decode_image``), and not a byte-for-byte duplicate of a photo on an
earlier line. Everything else is counted by reason in ``ROOT/download_report.json``.

Crash safety: photos are written under a temporary name and renamed; the outcome of every URL goes
to ``ROOT/.download_state.json`` (also written atomically), so a re-run, even after ``kill -9``,
skips the URLs already done and ends with the same tree. Duplicates are settled by line order
after all downloads, never by which response came first.

    from training.data.download import DownloadConfig, download
    ds = download(DownloadConfig(urls="urls.tsv", out="data/office20", workers=8, per_host=2))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.flags import REQUIRED, positive, setting
from bundle.images import ImageError, decode_image
from training.data.catalog import WNID, ClassInfo, classes_setting, load_catalog
from training.data.dataset import Dataset, build_dataset
from training.data.errors import SourceError
from training.data.web import FetchFailure, RetryPolicy, get_bytes

REASONS = ("ok", "dead_link", "timeout", "placeholder", "too_small", "not_an_image", "undecodable", "duplicate")
STATE_FILE = ".download_state.json"
REPORT_FILE = "download_report.json"
DEFAULT_PLACEHOLDERS = Path(__file__).with_name("placeholders.json")
STATE_SAVE_EVERY_S = 2.0
EXAMPLES_PER_REASON = 5
# The file suffix comes from the bytes, not the URL: build_dataset only scans these suffixes.
MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"))


@dataclass
class DownloadConfig:
    urls: str = setting(REQUIRED, "the wnid<TAB>url list", metavar="FILE")
    out: str = setting(REQUIRED, "dataset folder to write", metavar="ROOT")
    classes: str = classes_setting()
    seed: int = setting(0, "seed of the train/val/test split")
    workers: int = setting(8, "concurrent downloads in all", type=positive, section="network")
    per_host: int = setting(
        2, "concurrent downloads per host (politeness)", type=positive, metavar="N", section="network"
    )
    timeout: float = setting(
        10.0, "limit for one attempt, from connecting to the last byte", metavar="SECONDS", section="network"
    )
    retries: int = setting(
        3, "extra attempts after a transient failure (5xx, 429, timeout, reset)", metavar="N", section="network"
    )
    backoff: float = setting(
        0.5,
        "wait before the first retry, doubled for each next one (or the server's Retry-After)",
        metavar="SECONDS",
        section="network",
    )
    min_bytes: int = setting(
        5000, "smaller files are rejected as too_small", type=positive, metavar="N", section="what is kept"
    )
    max_bytes: int = setting(
        30_000_000, "larger responses are abandoned", type=positive, metavar="N", section="what is kept"
    )
    placeholders: str = setting(
        str(DEFAULT_PLACEHOLDERS),
        "JSON with sha256, url_markers and sizes ([w, h]) of 'photo unavailable' images",
        metavar="FILE",
        section="what is kept",
    )


@dataclass(frozen=True)
class Placeholders:
    sha256: frozenset[str]
    url_markers: tuple[str, ...]
    sizes: frozenset[tuple[int, int]]

    @classmethod
    def load(cls, path: str | Path) -> Placeholders:
        try:
            raw = json.loads(Path(path).read_text())
            return cls(
                frozenset(s.lower() for s in raw.get("sha256", [])),
                tuple(raw.get("url_markers", [])),
                frozenset((int(w), int(h)) for w, h in raw.get("sizes", [])),
            )
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise SourceError(
                f"--placeholders {path}: expected a JSON object with lists "
                f"sha256, url_markers, sizes ([w, h] pairs): {e}"
            ) from e


@dataclass(frozen=True)
class Job:
    line: int
    wnid: str
    url: str
    stem: str  # file name without suffix


@dataclass
class Outcome:
    reason: str
    detail: str = ""
    file: str | None = None  # relative to ROOT, for kept photos
    sha256: str | None = None


def read_url_list(path: Path, classes: list[ClassInfo]) -> tuple[list[Job], Counter]:
    """Jobs for the catalog's classes, in file order, and counts of the lines skipped."""
    if not path.is_file():
        raise SourceError(f"--urls {path}: no such file (expected lines 'wnid<TAB>url')")
    wanted = {c.wnid for c in classes}
    jobs: list[Job] = []
    skipped: Counter = Counter()
    seen_urls, seen_stems = set(), set()
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not WNID.match(parts[0][:9]) or parts[0][9:10] not in ("", "_") or "://" not in parts[1]:
            skipped["malformed"] += 1
            continue
        ident, url = parts[0], parts[1].strip()
        wnid = ident[:9]
        if wnid not in wanted:
            skipped["other_class"] += 1
            continue
        if url in seen_urls:
            skipped["repeated_url"] += 1
            continue
        seen_urls.add(url)
        stem = (
            ident
            if ident != wnid and ident not in seen_stems and ident.replace("_", "").isalnum()
            else f"{wnid}_{hashlib.sha1(url.encode()).hexdigest()[:12]}"
        )
        seen_stems.add(stem)
        jobs.append(Job(n, wnid, url, stem))
    if not jobs:
        raise SourceError(
            f"--urls {path}: no usable lines for the {len(classes)} catalog classes "
            f"(skipped: {dict(skipped) or 'none'}); lines must be 'wnid<TAB>url'"
        )
    return jobs, skipped


class HostGate:
    """At most ``limit`` requests in flight per host, however many workers there are."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lock = threading.Lock()
        self.hosts: dict[str, threading.BoundedSemaphore] = {}

    def __call__(self, url: str):
        host = urlsplit(url).netloc.lower()
        with self.lock:
            sem = self.hosts.setdefault(host, threading.BoundedSemaphore(self.limit))
        return sem


def _suffix(data: bytes) -> str | None:
    for magic, suffix in MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def fetch_one(
    job: Job, root: Path, cfg: DownloadConfig, policy: RetryPolicy, gate: HostGate, placeholders: Placeholders
) -> Outcome:
    """Download, check and (if kept) atomically write one photo."""
    try:
        page = get_bytes(job.url, policy, cfg.max_bytes, gate=lambda: gate(job.url))
    except FetchFailure as e:
        return Outcome(e.reason, e.detail)
    if page.status != 200:
        return Outcome("dead_link", f"HTTP {page.status} (expected 200)")
    if not page.content_type.startswith("image/"):
        return Outcome("not_an_image", f"Content-Type {page.content_type}")
    sha = hashlib.sha256(page.body).hexdigest()
    if sha in placeholders.sha256 or any(m in page.final_url for m in placeholders.url_markers):
        return Outcome("placeholder", f"placeholder served from {page.final_url}", sha256=sha)
    if len(page.body) < cfg.min_bytes:
        return Outcome("too_small", f"{len(page.body)} bytes < {cfg.min_bytes}", sha256=sha)
    try:
        img = decode_image(page.body)
    except ImageError as e:
        return Outcome("not_an_image" if e.code == "unsupported_format" else "undecodable", str(e), sha256=sha)
    if img.size in placeholders.sizes:
        return Outcome("placeholder", f"{img.size[0]}x{img.size[1]} is a listed placeholder size", sha256=sha)
    suffix = _suffix(page.body)
    if suffix is None:  # e.g. TIFF: decodable, but not a format the dataset scans
        return Outcome("not_an_image", "not a JPEG, PNG, GIF, BMP or WebP file", sha256=sha)
    rel = f"{job.wnid}/{job.stem}{suffix}"
    write_bytes_atomic(root / rel, page.body)
    return Outcome("ok", f"{img.size[0]}x{img.size[1]}", rel, sha)


class State:
    """URL -> outcome, saved atomically at most every few seconds and at the end."""

    def __init__(self, root: Path):
        self.path = root / STATE_FILE
        self.saved_at = 0.0
        self.done: dict[str, Outcome] = {}
        if self.path.is_file():
            with contextlib.suppress(ValueError, KeyError, TypeError):  # unreadable state = start over
                self.done = {u: Outcome(**o) for u, o in json.loads(self.path.read_text())["urls"].items()}

    def record(self, url: str, outcome: Outcome) -> None:
        self.done[url] = outcome
        if time.monotonic() - self.saved_at > STATE_SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        write_json_atomic(self.path, {"version": 1, "urls": {u: asdict(o) for u, o in self.done.items()}})
        self.saved_at = time.monotonic()


def settle(jobs: list[Job], state: State, root: Path) -> None:
    """Mark later copies of a kept photo as duplicates and make the class folders hold exactly the kept files."""
    first_of: dict[str, str] = {}
    for job in jobs:  # file order, so the result never depends on response timing
        o = state.done[job.url]
        if o.reason != "ok":
            continue
        if o.sha256 in first_of:
            state.done[job.url] = Outcome("duplicate", f"same bytes as {first_of[o.sha256]}", None, o.sha256)
        else:
            first_of[o.sha256] = job.url
    keep = {state.done[j.url].file for j in jobs if state.done[j.url].reason == "ok"}
    for wnid in {j.wnid for j in jobs}:
        for path in (root / wnid).iterdir():  # duplicates, stale files, temp files of killed runs
            if f"{wnid}/{path.name}" not in keep and path.is_file():
                path.unlink()


def write_report(
    root: Path, cfg: DownloadConfig, jobs: list[Job], skipped: Counter, state: State, classes: list[ClassInfo]
) -> dict:
    counts = Counter({r: 0 for r in REASONS})
    per_class = {c.wnid: dict.fromkeys(REASONS, 0) for c in classes}
    examples: dict[str, list] = {}
    for job in jobs:
        o = state.done[job.url]
        counts[o.reason] += 1
        per_class[job.wnid][o.reason] += 1
        if o.reason != "ok" and len(examples.setdefault(o.reason, [])) < EXAMPLES_PER_REASON:
            examples[o.reason].append({"line": job.line, "url": job.url, "detail": o.detail})
    report = {
        "urls": str(Path(cfg.urls).resolve()),
        "requested": len(jobs),
        "skipped_lines": dict(skipped),
        "counts": dict(counts),
        "per_class": per_class,
        "examples": examples,
        "config": asdict(cfg),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(root / REPORT_FILE, report)
    return report


def download(cfg: DownloadConfig) -> Dataset:
    """Run (or resume) a download, write the report, then dataset.json."""
    for name in ("workers", "per_host", "min_bytes"):
        if getattr(cfg, name) < 1:
            raise SourceError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.timeout <= 0 or cfg.retries < 0 or cfg.backoff < 0:
        raise SourceError("--timeout must be > 0, --retries and --backoff >= 0")
    try:
        classes = load_catalog(cfg.classes)
    except ValueError as e:
        raise SourceError(str(e)) from e
    placeholders = Placeholders.load(cfg.placeholders)
    root = Path(cfg.out).expanduser()
    jobs, skipped = read_url_list(Path(cfg.urls).expanduser(), classes)
    for wnid in {c.wnid for c in classes}:
        (root / wnid).mkdir(parents=True, exist_ok=True)
    for temp in root.glob(".*.part"):  # a state file being written when a run was killed
        temp.unlink()
    state = State(root)
    # Done = any recorded outcome, except a kept photo whose file has since gone.
    todo = [
        j
        for j in jobs
        if j.url not in state.done or state.done[j.url].reason == "ok" and not (root / state.done[j.url].file).is_file()
    ]
    policy = RetryPolicy(cfg.timeout, cfg.retries, cfg.backoff)
    gate = HostGate(cfg.per_host)
    print(
        f"downloading {len(todo)} of {len(jobs)} URLs ({len(jobs) - len(todo)} already done) into {root}",
        file=sys.stderr,
    )
    with (
        ThreadPoolExecutor(cfg.workers) as pool,
        tqdm(total=len(todo), unit="url", disable=not sys.stderr.isatty()) as bar,
    ):
        futures = {pool.submit(fetch_one, j, root, cfg, policy, gate, placeholders): j for j in todo}
        try:
            kept = 0
            for future in as_completed(futures):
                outcome = future.result()
                state.record(futures[future].url, outcome)
                kept += outcome.reason == "ok"
                bar.update()
                bar.set_postfix(kept=kept, refresh=False)
        except BaseException:
            for f in futures:
                f.cancel()
            state.save()  # keep what is done: Ctrl-C then re-run resumes
            raise
    settle(jobs, state, root)
    state.save()
    report = write_report(root, cfg, jobs, skipped, state, classes)
    empty = [c for c in classes if report["per_class"][c.wnid]["ok"] == 0]
    if empty:
        raise SourceError(
            f"no photo was kept for {len(empty)} classes: "
            f"{', '.join(f'{c.wnid} ({c.label})' for c in empty)}; see {root / REPORT_FILE}"
        )
    source = {
        "kind": "download",
        "urls": report["urls"],
        "report": REPORT_FILE,
        "counts": report["counts"],
        "config": asdict(cfg),
    }
    catalog = Path(cfg.classes).stem if Path(cfg.classes).is_file() else cfg.classes
    return build_dataset(root, classes, source, catalog=catalog, seed=cfg.seed)
