"""The real officenet server for the page tests, on loopback or inside a network namespace.

from servers import real_server
with real_server(bundle) as url: ...                                  # 127.0.0.1, free port
with real_server(bundle, ns.address, ns.prefix, port=8000) as url: ...  # in lan_netns
with page_site(apk, ns.prefix) as base: ...          # the APK's page, in the same namespace
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def real_server(bundle: Path, host: str = "127.0.0.1", prefix: tuple[str, ...] = (), port: int | None = None):
    """The real officenet server (``python -m server``) on host:port (a free one by default),
    run under ``prefix`` (e.g. ``ip netns exec NAME``) and ready; yields its base URL."""
    if port is None:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    base = f"http://{host}:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "server",
            "--bundle",
            str(bundle),
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    with _running(proc, base + "/readyz", prefix):
        yield base


@contextlib.contextmanager
def page_site(apk: Path, prefix: tuple[str, ...] = (), port: int = 8080):
    """``python -m android_demo.page`` (the APK's page with its headers) on 127.0.0.1:port, run
    under ``prefix``; yields the base URL."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "android_demo.page", "--apk", str(apk), "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    with _running(proc, base + "index.html", prefix):
        yield base


@contextlib.contextmanager
def _running(proc: subprocess.Popen, ready_url: str, prefix: tuple[str, ...]):
    """Wait until ready_url answers, asked from where the browser will be (through prefix)."""
    probe = [
        *prefix,
        sys.executable,
        "-c",
        "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)",
        ready_url,
    ]
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert proc.poll() is None, f"{proc.args} exited during startup"
            assert time.monotonic() < deadline, f"{ready_url} did not answer in 90 s"
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class Netns:
    name: str
    address: str  # the private, non-loopback address of its "LAN" interface
    prefix: tuple[str, ...]  # runs a command inside it
