"""Server test fixtures: the session's real tiny bundle served in-process, and awkward real photos.

    def test_x(client, bundle_dir, photo_bytes): client.post("/classify", ...)

``client`` is a Starlette TestClient around ``create_app(tiny_bundle)`` (lifespan run, model
warmed up); ``classify_all`` posts a photo and returns every class's score; ``reference`` is the
export stage's desktop LiteRT run of the same bundle on the reference image path, what every
server answer is compared with; ``live_server`` starts the real thing (uvicorn in a subprocess).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bundle.images import decode_image
from bundle.manifest import load_bundle
from bundle.preprocess import preprocess
from server.app import create_app
from server.settings import ServerSettings

# A small limit keeps the over-limit tests cheap; real photos here are far below it.
TEST_MAX_BYTES = 2 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle_dir(tiny_bundle) -> Path:
    return tiny_bundle


@pytest.fixture(scope="session")
def client(bundle_dir):
    # two interpreters, so the concurrency tests share a real pool between threads
    settings = ServerSettings(max_bytes=TEST_MAX_BYTES, interpreters=2)
    with TestClient(create_app(bundle_dir, settings)) as c:
        yield c


@pytest.fixture(scope="session")
def photo(sample_photos) -> Image.Image:
    """A real landscape photo (not square, so a wrong rotation changes the centre crop)."""
    for path in sample_photos:
        img = Image.open(path)
        if img.width > 1.2 * img.height:
            return img.convert("RGB")
    pytest.skip("no landscape photo among the samples")


@pytest.fixture(scope="session")
def photo_bytes(photo) -> bytes:
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="session")
def reference(bundle_dir):
    """image bytes -> (pixels, probabilities) on the reference path with export's LiteRT runner."""
    from bundle.litert import LiteRTModel

    bundle = load_bundle(bundle_dir)
    model = LiteRTModel(bundle.model_path.read_bytes(), threads=1)
    spec = bundle.preprocess

    def run(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        pixels = preprocess(decode_image(data), spec)
        return pixels, model.probabilities(pixels[None])[0]

    return run


@pytest.fixture(scope="session")
def classify_all(client, bundle_dir):
    """image bytes -> (answer JSON, probabilities in class order) from /classify with top_k=N."""
    wnids = load_bundle(bundle_dir, verify_hashes=False).wnids

    def run(data: bytes) -> tuple[dict, np.ndarray]:
        r = client.post(f"/classify?top_k={len(wnids)}", files={"file": ("photo", data)})
        assert r.status_code == 200, r.text
        answer = r.json()
        by_wnid = {p["wnid"]: p["score"] for p in answer["predictions"]}
        return answer, np.array([by_wnid[w] for w in wnids], dtype=np.float32)

    return run


@dataclass
class LiveServer:
    url: str
    port: int
    proc: subprocess.Popen
    log: str = ""


@contextlib.contextmanager
def _live_server(bundle_dir: Path, *args: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--bundle",
            str(bundle_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(server.url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 60 s"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        server.log = proc.communicate(timeout=30)[0]


@pytest.fixture(scope="session")
def live_server():
    """``with live_server(bundle_dir, *cli_args) as s:`` real ``python -m server`` on a free
    127.0.0.1 port, ready; ``s.url``, ``s.proc``; ``s.log`` (its output) once the block ends."""
    return _live_server
