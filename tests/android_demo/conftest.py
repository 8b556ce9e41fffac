"""Android demo fixtures: the APK built from the session's tiny bundle, its page served locally.

    def test_x(apk, apk_site, run_page, desktop_model): ...

- ``apk``: ``python -m android_demo.build`` run in-process on ``tiny_bundle`` -> (path, info).
- ``apk_site``: assets/web/ unzipped FROM THE BUILT APK, served on 127.0.0.1 -> base URL.
- ``run_page(job)``: android_demo.page.drive (headless Chromium, page_driver.mjs) -> its JSON.
- ``desktop_model(uint8 input) -> raw uint8 output``: the same model.tflite in desktop LiteRT.
- ``lan_netns``: a network namespace of the test's own with a private LAN address (10.77.0.1).
Tests here need the tools android_demo/setup.sh installs (`make test` runs it first).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from android_api import TYPES_D_TS
from servers import Netns

from android_demo.page import PageError, drive, site
from bundle.manifest import load_bundle

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


@pytest.fixture(scope="session")
def apk_site(apk):
    """The page exactly as the APK carries it (assets/web/), over HTTP on a free loopback port."""
    with site(apk[0]) as url:
        yield url


@pytest.fixture(scope="session")
def run_page(android_tools):
    def run(job: dict) -> dict:
        try:
            return drive(job)
        except PageError as e:
            pytest.fail(f"page driver: {e}")

    return run


@pytest.fixture(scope="session")
def desktop_model(tiny_bundle):
    """uint8 input (S, S, 3) -> the model's raw output (N,), with desktop LiteRT."""
    from bundle.litert import LiteRTModel

    model = LiteRTModel(load_bundle(tiny_bundle).model_path, threads=1)

    def run(x: np.ndarray) -> np.ndarray:
        return model.run(x[None].astype(model.input["dtype"]))

    return run


@pytest.fixture(scope="session")
def lan_netns():
    """A network namespace made for this test session: loopback plus a "LAN" (a veth pair,
    10.77.0.1/24 and .2), so a server there listens on a private non-loopback address (what a
    phone reaches over Wi-Fi) without touching this machine's own network. Needs root and ``ip``."""
    name = f"officenet-test-{os.getpid()}"
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        pytest.skip("a network namespace needs root and iproute2's ip")
    if subprocess.run([ip, "netns", "add", name], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (ip netns add failed)")
    try:
        for cmd in (
            ["link", "set", "lo", "up"],
            ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
            ["addr", "add", "10.77.0.1/24", "dev", "lan0"],
            ["addr", "add", "10.77.0.2/24", "dev", "lan1"],
            ["link", "set", "lan0", "up"],
            ["link", "set", "lan1", "up"],
        ):
            subprocess.run([ip, "-n", name, *cmd], check=True, capture_output=True)
        yield Netns(name, "10.77.0.1", (ip, "netns", "exec", name))
    finally:
        subprocess.run([ip, "netns", "del", name], capture_output=True)
