"""The APK's page on a desktop: serve it from a built APK on loopback, or drive it headless.

    python -m android_demo.page --apk artifacts/officenet-demo.apk      # open the printed URL
    # (http://127.0.0.1 counts as a secure origin, so the desktop's camera works there too)

    from android_demo.page import site, drive
    with site("artifacts/officenet-demo.apk") as base_url:
        out = drive({"url": base_url + "index.html?camera=0", "steps": [...]})

The page is taken from the APK itself (assets/web/), so what runs is what the phone gets.
``drive`` runs ``page_driver.mjs`` (headless Chromium through playwright-core; its header lists
the steps) and returns its JSON; the tests and ``bench/android.py`` use it. ``write_y4m`` makes
the video Chromium's fake camera plays (``"y4m"`` in a job).
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bundle.flags import add_group, given, setting

DRIVER = Path(__file__).resolve().with_name("page_driver.mjs")
WEB_PREFIX = "assets/web/"


class PageError(Exception):
    """The page or the browser failed; the message carries the page's console."""


# What MainActivity adds to every asset it serves: cross-origin isolation (COOP + COEP), which
# wasm threads need (SharedArrayBuffer); the page still runs, on one thread, where it is ignored.
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    # WebAssembly.instantiateStreaming and module scripts insist on these types.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
    }
    extra_headers: dict = {}

    def end_headers(self):
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        super().end_headers()

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
def serve(root: Path, port: int = 0, headers: dict | None = None):
    """Serve ``root`` on 127.0.0.1 (a free port by default) while the block runs; yields the base URL.

    ``headers`` go on every response (default: ISOLATION_HEADERS, as the APK serves; {} for none).
    """
    handler = type("Handler", (_Handler,), {"extra_headers": ISOLATION_HEADERS if headers is None else headers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def site(apk: str | Path, port: int = 0, headers: dict | None = None):
    """The APK's page, unzipped into a temporary folder and served; yields the base URL."""
    with tempfile.TemporaryDirectory(prefix="officenet-page-") as tmp:
        with serve(extract(apk, Path(tmp)), port, headers) as url:
            yield url


def write_y4m(img: Image.Image, path: Path) -> np.ndarray:
    """One 4:2:0 frame for Chromium's fake camera; returns the RGB it encodes (BT.601, video range)."""
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    u, v = (p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) for p in (u, v))  # 4:2:0 chroma
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v)]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420\n".encode())
        f.write(b"FRAME\n" + b"".join(p.tobytes() for p in planes))
    return np.asarray(img.convert("RGB"))


def drive(job: dict, timeout: float = 300, prefix: tuple[str, ...] = ()) -> dict:
    """Run one page_driver.mjs job; raises PageError (with the page's console) when it failed.

    ``prefix`` runs the browser under another command (``("ip", "netns", "exec", NAME)``: in a
    network namespace).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="officenet-job-") as f:
        json.dump(job, f)
        f.flush()
        proc = subprocess.run([*prefix, "node", str(DRIVER), f.name], capture_output=True, text=True, timeout=timeout)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise PageError(f"the page driver printed no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from None
    if out.get("error"):
        console = "\n".join(line for line in out["console"] if "INFO:" not in line)
        raise PageError(f"{out['error']}\npage console:\n{console[-3000:]}")
    return out


@dataclass
class PageConfig:
    apk: Path = setting(Path("artifacts/officenet-demo.apk"), "built APK", metavar="APK")
    port: int = setting(8080, "port on 127.0.0.1", metavar="PORT")
    isolation: bool = setting(
        True, "leave out the cross-origin isolation headers the APK sends (COOP/COEP)", flag="--no-isolation"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m android_demo.page", description="Serve the demo APK's page on 127.0.0.1 for a desktop browser."
    )
    add_group(p, "page", PageConfig, title="the page")
    cfg = PageConfig(**given(p.parse_args(argv), "page"))
    if not cfg.apk.is_file():
        print(f"error: no APK at {cfg.apk}; build one with: make apk", file=sys.stderr)
        return 2
    try:
        with site(cfg.apk, cfg.port, None if cfg.isolation else {}) as url:
            print(f"serving the page of {cfg.apk} at {url}index.html  (Ctrl-C stops)")
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
