"""Android demo fixtures: the APK built from the session's tiny bundle, its page served locally.

    def test_x(apk, apk_site, run_page, desktop_model): ...

- ``apk``: ``python -m android_demo.build`` run in-process on ``tiny_bundle`` -> (path, info).
- ``apk_site``: assets/web/ unzipped FROM THE BUILT APK, served on 127.0.0.1 -> base URL.
- ``run_page(job)``: headless Chromium (playwright-core) via page_driver.mjs -> its JSON.
- ``desktop_model(uint8 input) -> raw uint8 output``: the same model.tflite in desktop LiteRT.
Tests here need the tools android_demo/setup.sh installs (`make test` runs it first).
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from android_api import TYPES_D_TS
from bundle.manifest import load_bundle

DRIVER = Path(__file__).with_name("page_driver.mjs")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def android_tools() -> None:
    missing = [t for t in ("javac", "aapt", "zipalign", "apksigner", "dexdump", "node") if not shutil.which(t)]
    missing += [str(p) for p in (CHROMIUM, TYPES_D_TS) if not p.exists()]
    if missing:
        pytest.skip(f"Android build/browser tools missing ({', '.join(missing)}): run bash android_demo/setup.sh")


@pytest.fixture(scope="session")
def apk(tiny_bundle, android_tools, tmp_path_factory) -> tuple[Path, dict]:
    from android_demo.build import main

    out = tmp_path_factory.mktemp("apk") / "officenet-demo.apk"
    assert main(["--bundle", str(tiny_bundle), "--out", str(out)]) == 0
    return out, json.loads(out.with_name(out.name + ".json").read_text())


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def apk_site(apk, tmp_path_factory):
    """The page exactly as the APK carries it (assets/web/), over HTTP on a free loopback port."""
    root = tmp_path_factory.mktemp("apk-site")
    with zipfile.ZipFile(apk[0]) as z:
        z.extractall(root, [n for n in z.namelist() if n.startswith("assets/web/")])
    handler = functools.partial(QuietHandler, directory=str(root / "assets" / "web"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def run_page(android_tools, tmp_path_factory):
    jobs = tmp_path_factory.mktemp("page-jobs")

    def run(job: dict, timeout: float = 300) -> dict:
        path = jobs / f"job{len(list(jobs.iterdir()))}.json"
        path.write_text(json.dumps(job))
        proc = subprocess.run(["node", str(DRIVER), str(path)], capture_output=True, text=True, timeout=timeout)
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"page driver printed no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        if out.get("error"):
            console = "\n".join(line for line in out["console"] if "INFO" not in line)
            pytest.fail(f"page driver: {out['error']}\npage console:\n{console[-3000:]}")
        return out

    return run


@pytest.fixture(scope="session")
def desktop_model(tiny_bundle):
    """uint8 input (S, S, 3) -> the model's raw output (N,), with desktop LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(load_bundle(tiny_bundle).model_path), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        it.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
        it.invoke()
        return it.get_tensor(out["index"])[0].copy()

    return run
