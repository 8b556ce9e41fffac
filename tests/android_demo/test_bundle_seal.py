"""The bundle's SEAL on the phone side: the APK build refuses an edited manifest, the APK carries
the SEAL, and the page (web/seal.js, headless Chromium) refuses a manifest edited inside the APK."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest

from android_demo.build import main
from android_demo.page import extract, serve

pytestmark = pytest.mark.slow  # needs the trained + exported tiny bundle


def test_build_refuses_a_manifest_edited_after_export(tiny_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["input"]["preprocess"]["crop_fraction"] = 0.5
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert main(["--bundle", str(bundle), "--out", str(tmp_path / "x.apk")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "manifest.json was modified after export" in err
    assert not (tmp_path / "x.apk").exists()


def test_apk_carries_the_seal(apk, tiny_bundle):
    with zipfile.ZipFile(apk[0]) as z:
        assert z.read("assets/web/bundle/SEAL") == (tiny_bundle / "SEAL").read_bytes()


STATUS = "document.getElementById('status').textContent"


@pytest.mark.parametrize("edit", ["none", "threshold"])
def test_page_refuses_a_manifest_edited_in_the_apk(apk, run_page, edit):
    with tempfile.TemporaryDirectory(prefix="officenet-seal-") as tmp:
        root = extract(apk[0], Path(tmp))
        if edit == "threshold":  # valid JSON, the page would happily use it without the seal
            path = root / "bundle" / "manifest.json"
            manifest = json.loads(path.read_text())
            manifest["abstain"] = {"method": "max_softmax", "threshold": 0.99}
            path.write_text(json.dumps(manifest))
        with serve(root) as base:
            out = run_page(
                {
                    "url": base + "index.html?camera=0&ondevice=0&server=http://127.0.0.1:9",
                    "wait_ready": False,
                    "steps": [{"op": "wait", "js": f"!{STATUS}.startsWith('loading')"}, {"op": "eval", "js": STATUS}],
                }
            )
    status = out["results"][1]
    if edit == "none":
        assert not status.startswith("error"), status
    else:
        assert status.startswith("error: bundle manifest.json does not match its SEAL"), status
        assert "modified after export" in status
