"""`python -m training.data download` against a real HTTP server on 127.0.0.1 serving real photos.

The server misbehaves in every way the downloader must survive: 404s, a permanent 500, a
transient 503, redirects to placeholders, HTML labelled as an image, tiny files, a truncated JPEG,
a response too slow for --timeout, a connection reset, and a duplicate photo.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from bundle.images import decode_image
from training.data.cli import main
from training.data.dataset import load_dataset

REPO = Path(__file__).resolve().parents[3]
KEYBOARD, REMOTE = "n03085013", "n04074963"
CATALOG = f"{KEYBOARD}\tcomputer keyboard\n{REMOTE}\tremote control\n"


def _jpeg(photo: Path, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.open(photo).convert("RGB").resize(size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


class PhotoServer(ThreadingHTTPServer):
    """Routes path -> behaviour; counts hits per path."""

    daemon_threads = True

    def __init__(self, routes: dict):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = routes
        self.hits: Counter = Counter()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address):
        pass  # the client hung up on a slow or reset response: expected here

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.hits[self.path] += 1
            hit = self.server.hits[self.path]
        route = self.server.routes.get(self.path, ("status", 404))
        kind = route[0]
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if kind == "status":
            self.send_error(route[1])
            return
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", route[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "flaky" and hit <= route[1]:
            self.send_response(route[2])
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ctype, body = route[-2], route[-1]
        if kind == "delay":
            time.sleep(route[1])
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "drip":  # every gap is shorter than the client's timeout, the whole is longer
            for i in range(0, len(body), len(body) // 10 + 1):
                self.wfile.write(body[i : i + len(body) // 10 + 1])
                self.wfile.flush()
                time.sleep(route[1])
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def photos(shared_datasets) -> list[Path]:
    return sorted((shared_datasets / "imagenet-samples" / "images").glob("*.JPEG"))


@pytest.fixture
def catalog(tmp_path) -> str:
    path = tmp_path / "office2.tsv"
    path.write_text(CATALOG)
    return str(path)


def _tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every photo in the class folders."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.glob("n*/*"))}


def test_download_keeps_exactly_the_good_photos(photos, catalog, tmp_path, capsys):
    good_a = [_jpeg(p, (320, 240)) for p in photos[:5]]
    good_b = [_jpeg(p, (300, 220)) for p in photos[5:10]]
    flaky = _jpeg(photos[10], (320, 240))
    busy = _jpeg(photos[16], (320, 240))
    blank = _png((500, 300), (200, 200, 200))
    full = _jpeg(photos[11], (320, 240))
    routes = {f"/a{i}.jpg": ("ok", "image/jpeg", b) for i, b in enumerate(good_a)}
    routes |= {f"/b{i}.jpg": ("ok", "image/jpeg", b) for i, b in enumerate(good_b)}
    routes |= {
        "/moved.jpg": ("redirect", "/images/photo_unavailable.png"),
        "/images/photo_unavailable.png": ("ok", "image/png", _png((500, 300), (250, 250, 250))),
        "/gone.jpg": ("redirect", "/static/blank.png"),
        "/static/blank.png": ("ok", "image/png", blank),
        "/sized.jpg": ("ok", "image/jpeg", _jpeg(photos[12], (500, 374))),
        "/html.jpg": ("ok", "image/jpeg", b"<!doctype html><html><body>" + b"x" * 8000 + b"</body></html>"),
        "/page": ("ok", "text/html", b"<html>" + b"y" * 8000 + b"</html>"),
        "/tiny.jpg": ("ok", "image/jpeg", _jpeg(photos[13], (16, 16))),
        "/truncated.jpg": ("ok", "image/jpeg", full[: len(full) * 2 // 3]),
        "/slow.jpg": ("delay", 2.0, "image/jpeg", _jpeg(photos[14], (320, 240))),
        "/reset.jpg": ("reset",),
        "/broken.jpg": ("status", 500),
        "/flaky.jpg": ("flaky", 1, 503, "image/jpeg", flaky),
        "/busy.jpg": ("flaky", 2, 429, "image/jpeg", busy),
        "/drip.jpg": ("drip", 0.12, "image/jpeg", _jpeg(photos[15], (320, 240))),
        "/dup.jpg": ("ok", "image/jpeg", good_a[0]),
    }
    placeholders = tmp_path / "placeholders.json"
    placeholders.write_text(
        json.dumps(
            {"sha256": [hashlib.sha256(blank).hexdigest()], "url_markers": ["photo_unavailable"], "sizes": [[500, 374]]}
        )
    )
    with PhotoServer(routes) as server:
        lines = [f"{KEYBOARD}_{i}\t{server.url(f'/a{i}.jpg')}" for i in range(5)]
        lines += [f"{REMOTE}\t{server.url(f'/b{i}.jpg')}" for i in range(5)]
        bad_a = [
            "/missing.jpg",
            "/moved.jpg",
            "/gone.jpg",
            "/sized.jpg",
            "/html.jpg",
            "/page",
            "/tiny.jpg",
            "/truncated.jpg",
        ]
        bad_b = ["/slow.jpg", "/drip.jpg", "/reset.jpg", "/broken.jpg", "/flaky.jpg", "/busy.jpg", "/dup.jpg"]
        lines += [f"{KEYBOARD}\t{server.url(p)}" for p in bad_a] + [f"{REMOTE}\t{server.url(p)}" for p in bad_b]
        lines += [
            "# comments and blank lines are fine",
            "",
            "not a line",
            f"n99999999\t{server.url('/a0.jpg')}",
            f"{REMOTE}\t{server.url('/b0.jpg')}",
        ]
        urls = tmp_path / "urls.tsv"
        urls.write_text("\n".join(lines) + "\n")
        out = tmp_path / "ds"
        argv = [
            "download",
            "--urls",
            str(urls),
            "--out",
            str(out),
            "--classes",
            catalog,
            "--timeout",
            "0.5",
            "--retries",
            "2",
            "--backoff",
            "0.05",
            "--workers",
            "6",
            "--per-host",
            "3",
            "--placeholders",
            str(placeholders),
        ]
        start = time.monotonic()
        assert main(argv) == 0
        elapsed = time.monotonic() - start
        hits = dict(server.hits)

        report = json.loads((out / "download_report.json").read_text())
        assert report["counts"] == {
            "ok": 12,
            "dead_link": 3,
            "timeout": 2,
            "placeholder": 3,
            "too_small": 1,
            "not_an_image": 2,
            "undecodable": 1,
            "duplicate": 1,
        }
        assert report["per_class"][KEYBOARD] == {
            "ok": 5,
            "dead_link": 1,
            "timeout": 0,
            "placeholder": 3,
            "too_small": 1,
            "not_an_image": 2,
            "undecodable": 1,
            "duplicate": 0,
        }
        assert report["per_class"][REMOTE] == {
            "ok": 7,
            "dead_link": 2,
            "timeout": 2,
            "placeholder": 0,
            "too_small": 0,
            "not_an_image": 0,
            "undecodable": 0,
            "duplicate": 1,
        }
        details = {e["url"].rsplit("/", 1)[1]: e["detail"] for es in report["examples"].values() for e in es}
        assert "body not complete within 0.5 s" in details["drip.jpg"] and "timed out" in details["slow.jpg"]
        assert details["missing.jpg"].startswith("HTTP 404") and "connection lost" in details["reset.jpg"]
        assert report["skipped_lines"] == {"malformed": 1, "other_class": 1, "repeated_url": 1}
        kept = _tree(out)
        want = {hashlib.sha256(b).hexdigest() for b in good_a + good_b + [flaky, busy]}
        assert sorted(kept.values()) == sorted(want)  # exactly the good photos, once each
        assert {f"{KEYBOARD}/{KEYBOARD}_{i}.jpg" for i in range(5)} <= set(kept)  # ImageNet ids name files
        assert not list(out.rglob("*.part"))
        # retries: transient failures (5xx, 429, timeouts, resets) retried up to twice, permanent ones never
        assert hits["/flaky.jpg"] == 2 and hits["/busy.jpg"] == 3
        assert hits["/broken.jpg"] == 3 and hits["/reset.jpg"] == 3 and hits["/slow.jpg"] == 3
        assert hits["/drip.jpg"] == 3 and hits["/missing.jpg"] == 1 and hits["/a0.jpg"] == 1
        assert elapsed < 15  # the 2 s response was cut at 0.5 s per attempt

        ds = load_dataset(out)
        assert ds.meta["source"]["kind"] == "download" and ds.meta["source"]["counts"]["ok"] == 12
        assert len(ds.files) == 12
        assert "download: ok 12" in capsys.readouterr().out

        # a re-run is resumable and idempotent: nothing is fetched again, the tree is unchanged
        assert main(argv) == 0
        assert dict(server.hits) == hits
        assert _tree(out) == kept
        assert json.loads((out / "download_report.json").read_text())["counts"] == report["counts"]

        # a kept photo deleted by hand is fetched again
        (out / f"{KEYBOARD}/{KEYBOARD}_2.jpg").unlink()
        assert main(argv) == 0
        assert server.hits["/a2.jpg"] == 2 and _tree(out) == kept


def _kill_test_server(photos: list[Path]) -> tuple[dict, list[str]]:
    routes, paths = {}, []
    for i, photo in enumerate(photos[:24]):
        routes[f"/p{i}.jpg"] = ("delay", 0.6 if i == 0 else 0.12, "image/jpeg", _jpeg(photo, (256, 192)))
        paths.append(f"/p{i}.jpg")
    # a fast copy of the slow first photo: it finishes first, yet the earlier line must win
    routes["/copy.jpg"] = ("delay", 0.0, "image/jpeg", routes["/p0.jpg"][-1])
    paths.insert(3, "/copy.jpg")
    return routes, paths


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_same_tree(photos, catalog, tmp_path):
    routes, paths = _kill_test_server(photos)
    with PhotoServer(routes) as server:
        urls = tmp_path / "urls.tsv"
        urls.write_text("".join(f"{(KEYBOARD, REMOTE)[i % 2]}\t{server.url(p)}\n" for i, p in enumerate(paths)))

        def argv(out: Path) -> list[str]:
            return [
                "download",
                "--urls",
                str(urls),
                "--out",
                str(out),
                "--classes",
                catalog,
                "--workers",
                "4",
                "--per-host",
                "2",
                "--timeout",
                "5",
                "--retries",
                "0",
            ]

        clean = tmp_path / "clean"
        assert main(argv(clean)) == 0
        reference = _tree(clean)
        assert len(reference) == 24  # the copy is a duplicate

        killed = tmp_path / "killed"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for wait_for in (4, 12):  # kill twice, at different points
            proc = subprocess.Popen(
                [sys.executable, "-m", "training.data", *argv(killed)],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while len(list(killed.glob("n*/*.jpg"))) < wait_for and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL  # killed mid-run, not after it finished
            for photo in killed.glob("n*/*.jpg"):  # whatever is under a final name is a whole photo
                decode_image(photo.read_bytes())
        assert main(argv(killed)) == 0
        assert _tree(killed) == reference
        assert not [p for p in killed.rglob("*") if p.name.endswith(".part")]
        report = json.loads((killed / "download_report.json").read_text())
        assert report["counts"]["ok"] == 24 and report["counts"]["duplicate"] == 1
        assert load_dataset(killed).meta["files"] == load_dataset(clean).meta["files"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--urls", "/nonexistent/urls.tsv"], "no such file"),
        (["--timeout", "0"], "--timeout must be > 0"),
        (["--placeholders", "/nonexistent.json"], "--placeholders /nonexistent.json"),
    ],
)
def test_bad_download_input_exits_2(extra, message, tmp_path, capsys):
    urls = tmp_path / "urls.tsv"
    urls.write_text(f"{KEYBOARD}\thttp://127.0.0.1:9/x.jpg\n")
    argv = ["download", "--urls", str(urls), "--out", str(tmp_path / "out"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_url_list_without_catalog_classes_is_an_error(tmp_path, capsys):
    urls = tmp_path / "urls.tsv"
    urls.write_text("n99999999\thttp://127.0.0.1:9/x.jpg\n")
    assert main(["download", "--urls", str(urls), "--out", str(tmp_path / "out")]) == 2
    assert "no usable lines" in capsys.readouterr().err
