"""The APK's page on a desktop: serve it from a built APK on loopback, or drive it headless.

    python -m android_demo.page --apk artifacts/officenet-demo.apk      # open the printed URL
    # (http://127.0.0.1 counts as a secure origin, so the desktop's camera works there too)

    from android_demo.page import site, drive
    with site("artifacts/officenet-demo.apk") as base_url:
        out = drive({"url": base_url + "index.html?camera=0", "steps": [...]})

The page is taken from the APK itself (assets/web/), so what runs is what the phone gets.
``drive`` runs ``page_driver.mjs`` (headless Chromium through playwright-core; its header lists
the steps) and returns its JSON; the tests and ``bench/android.py`` use it.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

DRIVER = Path(__file__).resolve().with_name("page_driver.mjs")
WEB_PREFIX = "assets/web/"


class PageError(Exception):
    """The page or the browser failed; the message carries the page's console."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    # WebAssembly.instantiateStreaming and module scripts insist on these types.
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, *args):
        pass


def extract(apk: str | Path, dest: Path) -> Path:
    """assets/web/ of the APK -> dest; returns the page's root folder."""
    with zipfile.ZipFile(apk) as z:
        names = [n for n in z.namelist() if n.startswith(WEB_PREFIX)]
        if not names:
            raise PageError(f"{apk} holds no {WEB_PREFIX}: not an officenet demo APK")
        z.extractall(dest, names)
    return dest / WEB_PREFIX


@contextlib.contextmanager
def serve(root: Path, port: int = 0):
    """Serve ``root`` on 127.0.0.1 (a free port by default) while the block runs; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             functools.partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def site(apk: str | Path, port: int = 0):
    """The APK's page, unzipped into a temporary folder and served; yields the base URL."""
    with tempfile.TemporaryDirectory(prefix="officenet-page-") as tmp:
        with serve(extract(apk, Path(tmp)), port) as url:
            yield url


def drive(job: dict, timeout: float = 300) -> dict:
    """Run one page_driver.mjs job; raises PageError (with the page's console) when it failed."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="officenet-job-") as f:
        json.dump(job, f)
        f.flush()
        proc = subprocess.run(["node", str(DRIVER), f.name], capture_output=True, text=True, timeout=timeout)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise PageError(f"the page driver printed no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    if out.get("error"):
        console = "\n".join(line for line in out["console"] if "INFO:" not in line)
        raise PageError(f"{out['error']}\npage console:\n{console[-3000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m android_demo.page",
                                description="Serve the demo APK's page on 127.0.0.1 for a desktop browser.")
    p.add_argument("--apk", type=Path, default=Path("artifacts/officenet-demo.apk"),
                   help="built APK (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default: %(default)s)")
    args = p.parse_args(argv)
    if not args.apk.is_file():
        print(f"error: no APK at {args.apk}; build one with: make apk", file=sys.stderr)
        return 2
    try:
        with site(args.apk, args.port) as url:
            print(f"serving the page of {args.apk} at {url}index.html  (Ctrl-C stops)")
            print(f"  fallback to a server: {url}index.html?ondevice=0&server=http://127.0.0.1:8000")
            threading.Event().wait()
    except (PageError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
